import Foundation
import HTTPServer
import Postgres

/// One of a council's complaint categories (a tenant vocabulary, migration 0020): every tenant
/// starts with the default set (communication, delay, decision, staff_conduct,
/// quality_of_service, placement, contact, financial, other) and its admins add their own and
/// retire them. A retired category is refused on new complaints; the complaints and figures that
/// have it keep it.
struct ComplaintCategory: StoredRecord {
    var code = ""
    var label = ""
    var active = true
    var version = 1
    var createdAt = Date(timeIntervalSince1970: 0)
    var updatedAt = Date(timeIntervalSince1970: 0)

    var etag: String { ETag.of(version: version) }

    static let table = Table<ComplaintCategory>("complaint_categories k", [
        .column("code", "k.code", \.code), .column("label", "k.label", \.label), .column("active", "k.active", \.active),
        .column("version", "k.version", \.version), .column("created_at", "k.created_at", \.createdAt),
        .column("updated_at", "k.updated_at", \.updatedAt),
    ])

    /// A code: 2-50 characters of a-z, 0-9 and _, starting with a letter (as the table checks).
    static let codeRule = "must be 2-50 characters of a-z, 0-9 and _, starting with a letter"

    static func isCode(_ text: String) -> Bool {
        guard let first = text.utf8.first, (97...122).contains(first), (2...50).contains(text.utf8.count) else { return false }
        return text.utf8.allSatisfy { (97...122).contains($0) || (48...57).contains($0) || $0 == 95 }
    }

    /// The category `code` of the caller's tenant, or nil.
    static func find(_ code: String, on tx: TenantTransaction) async throws -> ComplaintCategory? {
        try await tx.query("""
            \(unsafeRaw: table.select(includeFreeText: false)) WHERE k.tenant_id = \(tx.principal.tenantID) AND k.code = \(code)
            """).first.map { try table.decode($0, includeFreeText: false) }
    }

    /// Every category code of the caller's tenant, retired ones too, in the order they were added.
    static func codes(on tx: TenantTransaction) async throws -> [String] {
        try await tx.query("SELECT code FROM complaint_categories WHERE tenant_id = \(tx.principal.tenantID) ORDER BY seq")
            .map { try $0.decode(String.self, column: "code") }
    }

    /// Refuses (422, naming `categories[i]`) each of `codes` that is not an active category of
    /// the caller's tenant.
    static func check(_ codes: [String], on tx: TenantTransaction) async throws {
        let active = Set(try await tx.query("""
            SELECT code FROM complaint_categories WHERE tenant_id = \(tx.principal.tenantID) AND active AND code = ANY(\(codes)::text[])
            """).map { try $0.decode(String.self, column: "code") })
        let faults = codes.enumerated().filter { !active.contains($0.element) }.map { index, _ in
            FieldError(field: "categories[\(index)]", message: "is not one of this council's complaint categories in use (GET /v1/complaint-categories)")
        }
        if !faults.isEmpty { throw HTTPError.validation(faults) }
    }
}

/// `/v1/complaint-categories`: any complaints or admin key reads the council's categories; an
/// admin with a council-wide key adds one (`POST`) or changes its label or retires it (`PATCH`
/// with `If-Match`).
struct ComplaintCategoryRoutes {
    let access: AccessControl

    static let notFound = HTTPError(.notFound, detail: "There is no complaint category with this code.")

    static let list = ListEndpoint<ComplaintCategory, Void>(
        resource: .complaintCategory,
        filters: [.bool("active", "k.active")],
        order: ListOrder(ascending: [("k.seq", .bigint)]))

    func add(to router: inout RouterBuilder) {
        router.get("/v1/complaint-categories", access.secure(anyOf: [.complaintsRead, .complaintsWrite, .reportsRead, .admin],
                                                             resource: .complaintCategory, Self.list.respond))
        router.get("/v1/complaint-categories/{code}", access.secure(anyOf: [.complaintsRead, .complaintsWrite, .reportsRead, .admin],
                                                                    resource: .complaintCategory) { request, context in
            let code = request.parameter("code")
            guard ComplaintCategory.isCode(code) else { throw Self.notFound }
            let category = try await context.transaction { tx in
                let category = try await ComplaintCategory.find(code, on: tx)
                if category != nil { tx.audit(.read, .complaintCategory, id: code) }
                return category
            }
            guard let category else { throw Self.notFound }
            return IfNoneMatch.notModified(request, etag: category.etag) ?? Self.answer(category, status: .ok)
        })
        router.post("/v1/complaint-categories", access.secure(.admin, resource: .complaintCategory, Idempotency.wrap(Self.create)))
        router.patch("/v1/complaint-categories/{code}", access.secure(.admin, resource: .complaintCategory, Self.change))
    }

    static func answer(_ category: ComplaintCategory, status: HTTPStatus) -> Response {
        .json(category, status: status, headers: ["ETag": category.etag, "Location": "/v1/complaint-categories/\(category.code)"])
    }

    private static func create(_ request: Request, _ context: AccessContext) async throws -> Response {
        try context.principal.requireCouncilWide(toChange: "the council's complaint categories")
        var fields = try FieldReader(body: request.body)
        let code = fields.string("code", maxLength: 50)
        if let code, !ComplaintCategory.isCode(code) { fields.reject("code", ComplaintCategory.codeRule) }
        let label = fields.string("label", maxLength: 200)
        try fields.finish()
        guard let code, let label else { throw HTTPError.validation([]) }
        let created = try await context.transaction { tx -> ComplaintCategory? in
            let inserted = try await tx.execute("""
                INSERT INTO complaint_categories (tenant_id, code, label) VALUES (\(tx.principal.tenantID), \(code), \(label))
                ON CONFLICT (tenant_id, code) DO NOTHING
                """)
            guard inserted == 1 else { return nil }
            tx.audit(.create, .complaintCategory, id: code)
            return try await ComplaintCategory.find(code, on: tx)
        }
        guard let created else {
            throw HTTPError(.categoryExists, detail: "This council already has a complaint category \(code); change it with PATCH.")
        }
        return answer(created, status: .created)
    }

    /// `label` and `active` (retiring or restoring it), with `If-Match`.
    private static func change(_ request: Request, _ context: AccessContext) async throws -> Response {
        try context.principal.requireCouncilWide(toChange: "the council's complaint categories")
        let code = request.parameter("code")
        guard ComplaintCategory.isCode(code) else { throw Self.notFound }
        let ifMatch = try IfMatch.required(request)
        var fields = try FieldReader(body: request.body)
        let label = fields.string("label", maxLength: 200, required: false)
        let active = fields.bool("active", required: false)
        if label == nil && active == nil && fields.errors.isEmpty { fields.reject("(body)", "must change label or active") }
        try fields.finish()
        let changed = try await context.transaction { tx -> ComplaintCategory in
            guard let current = try await ComplaintCategory.find(code, on: tx) else { throw Self.notFound }
            try ifMatch.check(current: current.etag)
            let updated = try await tx.execute("""
                UPDATE complaint_categories
                   SET label = \(label ?? current.label), active = \(active ?? current.active), version = version + 1, updated_at = now()
                 WHERE tenant_id = \(tx.principal.tenantID) AND code = \(code) AND version = \(current.version)
                """)
            guard updated == 1 else { throw IfMatch.changedMeanwhile }
            tx.audit(.update, .complaintCategory, id: code)
            guard let changed = try await ComplaintCategory.find(code, on: tx) else { throw Self.notFound }
            return changed
        }
        return answer(changed, status: .ok)
    }
}

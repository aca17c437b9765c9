import Foundation
import HTTPServer
import Postgres

enum LearningActionStatus: String, CaseIterable, Sendable {
    case planned, inProgress = "in_progress", done
}

/// What a council does about what a complaint taught it. `action` is narrative: present only
/// for a key with `free_text:read`.
struct LearningAction: AnsweredRecord {
    var id = UUID.zero
    var complaintId = UUID.zero
    var action: String?
    var ownerTeam: String?
    var dueOn: CalendarDate?
    var status = ""
    var version = 1
    var createdAt = Date(timeIntervalSince1970: 0)
    var updatedAt = Date(timeIntervalSince1970: 0)
    var includesFreeText = false

    var location: String { "/v1/complaints/\(complaintId.lowercased)/learning-actions/\(id.lowercased)" }

    static let table = Table<LearningAction>("complaint_learning_actions l", [
        .column("id", "l.id", \.id), .column("complaint_id", "l.complaint_id", \.complaintId), .freeText("action", "l.action", \.action),
        .column("owner_team", "l.owner_team", \.ownerTeam), .column("due_on", "l.due_on", \.dueOn), .column("status", "l.status", \.status),
        .column("version", "l.version", \.version), .column("created_at", "l.created_at", \.createdAt),
        .column("updated_at", "l.updated_at", \.updatedAt),
    ])

    /// The fields a create or a change carries: all of them on create (`owner_team` and
    /// `due_on` optional, `status` planned unless given), only those that change on a PATCH.
    struct Fields {
        var action: String?
        var ownerTeam: String??
        var dueOn: CalendarDate??
        var status: LearningActionStatus?

        static func read(_ body: [UInt8], creating: Bool) throws(HTTPError) -> Fields {
            var reader = try FieldReader(body: body)
            var fields = Fields()
            func present(_ name: String) -> Bool { creating || reader.has(name) }
            if present("action") { fields.action = reader.string("action", maxLength: 2000) }
            if present("owner_team") { fields.ownerTeam = .some(reader.optionalString("owner_team", maxLength: 100)) }
            if present("due_on") { fields.dueOn = .some(reader.date("due_on", required: false)) }
            if creating || reader.has("status") { fields.status = reader.vocabulary("status", LearningActionStatus.self, required: !creating) }
            try reader.finish()
            if creating, fields.status == nil { fields.status = .planned }
            return fields
        }
    }
}

/// `/v1/complaints/{id}/learning-actions`: list and add (the complaint's), and change one with `If-Match`.
struct LearningActionRoutes {
    let access: AccessControl

    static let notFound = HTTPError(.notFound, detail: "There is no learning action with this id on this complaint.")

    func add(to router: inout RouterBuilder) {
        router.get("/v1/complaints/{id}/learning-actions", access.secure(.complaintsRead, resource: .learningAction) { request, context in
            let complaintID = try ComplaintRoutes.complaintID(request)
            try QueryReader(request.query, allowed: [], paged: false).finish()
            let includeFreeText = context.principal.has(.freeTextRead)
            let actions = try await context.transaction { tx -> [LearningAction]? in
                guard try await Self.complaintExists(complaintID, on: tx) else { return nil }
                let actions = try await tx.query("""
                    \(unsafeRaw: LearningAction.table.select(includeFreeText: includeFreeText))
                     WHERE l.tenant_id = \(tx.principal.tenantID) AND l.complaint_id = \(complaintID) ORDER BY l.seq
                    """).map { try LearningAction.table.decode($0, includeFreeText: includeFreeText) }
                tx.audit(.list, .learningAction, rowsExported: actions.count)
                return actions
            }
            guard let actions else { throw ComplaintRoutes.notFound }
            return Page(items: actions, nextCursor: nil).response(for: request)
        })
        router.post("/v1/complaints/{id}/learning-actions", access.secure(.complaintsWrite, resource: .learningAction) { request, context in
            let complaintID = try ComplaintRoutes.complaintID(request)
            let fields = try LearningAction.Fields.read(request.body, creating: true)
            let includeFreeText = context.principal.has(.freeTextRead)
            let created = try await context.transaction { tx -> LearningAction? in
                let principal = tx.principal
                guard let row = try await tx.query("""
                    INSERT INTO complaint_learning_actions (tenant_id, complaint_id, complaint_received_on, organisation_id, action, owner_team,
                                                            due_on, status, created_by)
                    SELECT c.tenant_id, c.id, c.received_on, c.organisation_id, \(fields.action), \(fields.ownerTeam ?? nil), \(fields.dueOn ?? nil),
                           \(fields.status?.rawValue), \(principal.keyID)
                      FROM complaints c WHERE c.tenant_id = \(principal.tenantID) AND c.id = \(complaintID)
                    RETURNING id
                    """).first else { return nil }
                let id = try row.decode(UUID.self, column: "id")
                tx.audit(.create, .learningAction, id: id.lowercased)
                return try await LearningAction.table.find(id, on: tx, includeFreeText: includeFreeText)
            }
            guard let created else { throw ComplaintRoutes.notFound }
            return created.response(status: .created)
        })
        router.get("/v1/complaints/{id}/learning-actions/{action_id}", access.secure(.complaintsRead, resource: .learningAction) { request, context in
            let complaintID = try ComplaintRoutes.complaintID(request)
            guard let id = UUID(uuidString: request.parameter("action_id")) else { throw Self.notFound }
            try QueryReader(request.query, allowed: [], paged: false).finish()
            return try await LearningAction.read(id, below: ParentKey("complaint_id", complaintID), request, context,
                                                 resource: .learningAction, notFound: Self.notFound)
        })
        router.patch("/v1/complaints/{id}/learning-actions/{action_id}", access.secure(.complaintsWrite, resource: .learningAction) { request, context in
            let complaintID = try ComplaintRoutes.complaintID(request)
            guard let id = UUID(uuidString: request.parameter("action_id")) else { throw Self.notFound }
            let ifMatch = IfMatch(request)
            let fields = try LearningAction.Fields.read(request.body, creating: false)
            let includeFreeText = context.principal.has(.freeTextRead)
            let changed = try await context.transaction { tx -> LearningAction in
                guard let current = try await LearningAction.table.find(id, on: tx), current.complaintId == complaintID else { throw Self.notFound }
                // Only once it is known to be the caller's: a stranger hears 404, as for a read.
                try (ifMatch ?? IfMatch.required(request)).check(current: current.etag)
                var assignments: [SQLFragment] = ["version = version + 1", "updated_at = now()"]
                if let action = fields.action { assignments.append("action = \(action)") }
                if let team = fields.ownerTeam { assignments.append("owner_team = \(team)") }
                if let due = fields.dueOn { assignments.append("due_on = \(due)") }
                if let status = fields.status { assignments.append("status = \(status.rawValue)") }
                let updated = try await tx.execute("""
                    UPDATE complaint_learning_actions SET \(SQLFragment.joined(assignments, separator: ", "))
                     WHERE tenant_id = \(tx.principal.tenantID) AND id = \(id) AND version = \(current.version)
                    """)
                guard updated == 1 else { throw IfMatch.changedMeanwhile }
                tx.audit(.update, .learningAction, id: id.lowercased)
                guard let changed = try await LearningAction.table.find(id, on: tx, includeFreeText: includeFreeText) else { throw Self.notFound }
                return changed
            }
            return changed.response(status: .ok)
        })
    }

    static func complaintExists(_ id: UUID, on tx: TenantTransaction) async throws -> Bool {
        try await !tx.query("SELECT 1 FROM complaints WHERE tenant_id = \(tx.principal.tenantID) AND id = \(id)").isEmpty
    }

}

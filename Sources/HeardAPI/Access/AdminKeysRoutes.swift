import Foundation
import HTTPServer
import Postgres

/// `/v1/admin/keys`: create, list, read and revoke a tenant's API keys without shell access
/// (scope `admin`). A partner organisation's admin key manages only its organisation's keys.
struct AdminKeysRoutes {
    let access: AccessControl

    func add(to router: inout RouterBuilder) {
        // No Idempotency-Key here: replaying the answer would mean keeping the secret.
        router.post("/v1/admin/keys", access.secure(.admin, resource: .apiKey) { request, context in
            try await create(request, context)
        })
        router.get("/v1/admin/keys", access.secure(.admin, resource: .apiKey, KeyStore.list.respond))
        router.get("/v1/admin/keys/{id}", access.secure(.admin, resource: .apiKey) { request, context in
            try await oneKey(request, context, audited: .read) { tx, tenant, id in
                try await KeyStore.find(on: tx, tenantID: tenant, id: id)
            }
        })
        // Revoking keeps the record (the audit trail names it), so it is not a DELETE.
        router.post("/v1/admin/keys/{id}/revoke", access.secure(.admin, resource: .apiKey) { request, context in
            // Every instance hears of it (KeyCache); this one forgets at once, once committed.
            defer { access.keys.forgetAll() }
            return try await oneKey(request, context, audited: .update) { tx, tenant, id in
                try await KeyStore.revoke(on: tx, tenantID: tenant, id: id)
            }
        })
    }

    /// Runs `operation` on the key named in the path, audits it, and answers it, or 404.
    private func oneKey(
        _ request: Request, _ context: AccessContext, audited action: AuditAction,
        _ operation: @escaping @Sendable (PostgresTransaction, UUID, UUID) async throws -> APIKeyRecord?
    ) async throws -> Response {
        let id = try Self.keyID(request)
        let record = try await context.transaction { tx in
            let record = try await operation(tx.base, context.principal.tenantID, id)
            if record != nil { tx.audit(action, .apiKey, id: id.lowercased) }
            return record
        }
        guard let record else { throw HTTPError(.notFound, detail: "There is no API key with this id.") }
        return .json(record)
    }

    /// The new key's record, with `key`: the secret, shown this once.
    struct CreatedKey: Encodable {
        var record: APIKeyRecord
        var key: String

        func encode(to encoder: any Encoder) throws {
            try record.encode(to: encoder)
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(key, forKey: .key)
        }

        enum Keys: String, CodingKey { case key }
    }

    private func create(_ request: Request, _ context: AccessContext) async throws -> Response {
        var body = try FieldReader(body: request.body)
        let name = body.string("name", maxLength: 100)
        let scopes = body.vocabularyList("scopes", Scope.self)
        let organisationSlug = body.optionalString("organisation", maxLength: 63)
        let expiresOn = body.date("expires_on", required: false)
        let principal = context.principal
        if let scopes, scopes.isEmpty { body.reject("scopes", "must name at least one scope") }
        // A key mints keys no stronger than itself: its own scopes at most, ending by its own expiry.
        if let scopes {
            let beyond = scopes.filter { !principal.has($0) }.map(\.rawValue)
            if !beyond.isEmpty {
                body.reject("scopes", "can hold only scopes of the key that creates it, which lacks \(beyond.joined(separator: ", "))")
            }
        }
        if let expiresOn, expiresOn <= CalendarDate(utcDayOf: Date()) { body.reject("expires_on", "must be after today") }
        if let expiresOn, let ceiling = principal.expiresOn, expiresOn > ceiling {
            body.reject("expires_on", "must be no later than \(ceiling), when the key that creates it expires")
        }
        try body.finish()

        let (record, key) = try await context.transaction { tx -> (APIKeyRecord, String) in
            var organisationID = principal.organisationID
            if let organisationSlug {
                let rows = try await tx.query("SELECT id FROM organisations WHERE tenant_id = \(principal.tenantID) AND slug = \(organisationSlug)")
                guard let found = try rows.first?.decode(UUID.self, column: "id") else {
                    throw HTTPError.validation([FieldError(field: "organisation", message: "is not an organisation of this tenant")])
                }
                if let own = principal.organisationID, own != found {
                    throw HTTPError.validation([FieldError(field: "organisation", message: "an organisation's key can create keys only for its own organisation")])
                }
                organisationID = found
            }
            let created = try await KeyStore.create(
                on: tx.base, tenantID: principal.tenantID, organisationID: organisationID, name: name ?? "",
                scopes: scopes ?? [], expiresOn: expiresOn ?? principal.expiresOn, createdBy: principal.keyID)
            tx.audit(.create, .apiKey, id: created.0.id.lowercased)
            return created
        }
        return .json(CreatedKey(record: record, key: key), status: .created,
                     headers: ["Location": "/v1/admin/keys/\(record.id.lowercased)"])
    }

    static func keyID(_ request: Request) throws(HTTPError) -> UUID {
        guard let id = UUID(uuidString: request.parameter("id")) else {
            throw HTTPError(.notFound, detail: "There is no API key with this id.")
        }
        return id
    }

}

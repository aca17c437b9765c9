import Foundation
import HTTPServer
import Postgres

/// An API key as the admin API and the CLI show it: never its secret, except once at creation.
public struct APIKeyRecord: StoredRecord {
    public var id = UUID.zero
    public var name = ""
    public var scopes: [String] = []
    /// The partner organisation's slug, for a key bound to one.
    public var organisation: String?
    public var expiresOn: CalendarDate?
    public var createdAt = Date(timeIntervalSince1970: 0)
    public var revokedAt: Date?

    public init() {}

    static let table = Table<APIKeyRecord>("api_keys k LEFT JOIN organisations o ON o.tenant_id = k.tenant_id AND o.id = k.organisation_id", [
        .column("id", "k.id", \.id), .column("name", "k.name", \.name), .column("scopes", "k.scopes", \.scopes),
        .column("organisation", "o.slug", \.organisation), .column("expires_on", "k.expires_on", \.expiresOn),
        .column("created_at", "k.created_at", \.createdAt), .column("revoked_at", "k.revoked_at", \.revokedAt),
    ])

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: FieldKey.self)
        try Self.table.encode(self, into: &container)
    }
}

/// The SQL for API keys, shared by `/v1/admin/keys` (as the service, inside one tenant) and
/// `heard keys` (as the owner).
public enum KeyStore {
    /// Makes a key; returns its record and the full key text, which is shown once and not kept.
    public static func create(
        on transaction: PostgresTransaction, tenantID: UUID, organisationID: UUID?, name: String,
        scopes: [Scope], expiresOn: CalendarDate?, createdBy: UUID?
    ) async throws -> (APIKeyRecord, String) {
        let key = APIKeySecret.generate()
        try await transaction.execute("""
            INSERT INTO api_keys (id, tenant_id, organisation_id, name, scopes, secret_hash, expires_on, created_by)
            VALUES (\(key.id), \(tenantID), \(organisationID), \(name), \(scopes.map(\.rawValue)), \(key.secretHash),
                    \(expiresOn), \(createdBy))
            """)
        guard let record = try await find(on: transaction, tenantID: tenantID, id: key.id) else {
            throw PostgresError(kind: .query, message: "the new key was not found after insert")
        }
        return (record, key.text)
    }

    public static func find(on transaction: PostgresTransaction, tenantID: UUID, id: UUID) async throws -> APIKeyRecord? {
        let table = APIKeyRecord.table
        return try await transaction.query("\(unsafeRaw: table.select(includeFreeText: false)) WHERE k.tenant_id = \(tenantID) AND k.id = \(id)")
            .first.map { try table.decode($0, includeFreeText: false) }
    }

    /// `GET /v1/admin/keys`: the tenant's keys (a partner's key: its organisation's), newest first.
    static let list = ListEndpoint<APIKeyRecord, Void>(resource: .apiKey, order: ListOrder(descending: [("k.created_at", .timestamptz), ("k.id", .uuid)]))

    /// Every key of a tenant (for `heard keys list`).
    public static func all(on transaction: PostgresTransaction, tenantID: UUID) async throws -> [APIKeyRecord] {
        let table = APIKeyRecord.table
        return try await transaction.query("\(unsafeRaw: table.select(includeFreeText: false)) WHERE k.tenant_id = \(tenantID) ORDER BY k.created_at, k.id")
            .map { try table.decode($0, includeFreeText: false) }
    }

    /// Revokes a key and every key minted from it, down the chain (idempotent); nil when there
    /// is no such key in the tenant.
    public static func revoke(on transaction: PostgresTransaction, tenantID: UUID, id: UUID) async throws -> APIKeyRecord? {
        try await transaction.execute("""
            WITH RECURSIVE minted (id) AS (
                SELECT \(id)::uuid
                UNION
                SELECT k.id FROM api_keys k JOIN minted m ON k.tenant_id = \(tenantID) AND k.created_by = m.id
            )
            UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
             WHERE tenant_id = \(tenantID) AND id IN (SELECT id FROM minted)
            """)
        return try await find(on: transaction, tenantID: tenantID, id: id)
    }
}

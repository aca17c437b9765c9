import Foundation
import HTTPServer
import Postgres

/// An API key as the admin API and the CLI show it: never its secret, except once at creation.
public struct APIKeyRecord: Encodable, Sendable {
    public var id: UUID
    public var name: String
    public var scopes: [String]
    /// The partner organisation's slug, for a key bound to one.
    public var organisation: String?
    public var expiresOn: CalendarDate?
    public var createdAt: Date
    public var revokedAt: Date?

    enum CodingKeys: String, CodingKey {
        case id, name, scopes, organisation, expiresOn = "expires_on", createdAt = "created_at", revokedAt = "revoked_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id.lowercased, forKey: .id)
        try container.encode(name, forKey: .name)
        try container.encode(scopes, forKey: .scopes)
        try container.encodeOrNull(organisation, forKey: .organisation)
        try container.encodeOrNull(expiresOn, forKey: .expiresOn)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encodeOrNull(revokedAt, forKey: .revokedAt)
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

    static let selectColumns: PostgresQuery = """
        SELECT k.id, k.name, k.scopes, o.slug AS organisation, k.expires_on, k.created_at, k.revoked_at
          FROM api_keys k
          LEFT JOIN organisations o ON o.tenant_id = k.tenant_id AND o.id = k.organisation_id
        """

    public static func find(on transaction: PostgresTransaction, tenantID: UUID, id: UUID) async throws -> APIKeyRecord? {
        try await transaction.query("\(unsafeRaw: selectColumns.sql) WHERE k.tenant_id = \(tenantID) AND k.id = \(id)")
            .first.map(record(from:))
    }

    /// Where a page of keys ended: PostgreSQL's own text of `created_at` (microseconds intact)
    /// and the id.
    struct Position: Codable {
        var createdAt: String
        var id: UUID

        enum CodingKeys: String, CodingKey { case createdAt = "created_at", id }
    }

    /// A page of a tenant's keys, newest first, each with the position it ends at.
    static func list(on transaction: PostgresTransaction, tenantID: UUID, after: Position?, limit: Int) async throws -> [(APIKeyRecord, Position)] {
        try await transaction.query("""
            \(unsafeRaw: selectColumns.sql.replacingOccurrences(of: "SELECT ", with: "SELECT k.created_at::text AS position_time, "))
             WHERE k.tenant_id = \(tenantID)
               AND (\(after?.createdAt)::timestamptz IS NULL OR (k.created_at, k.id) < (\(after?.createdAt)::timestamptz, \(after?.id)::uuid))
             ORDER BY k.created_at DESC, k.id DESC
             LIMIT \(limit)
            """).map { row in
                let record = try record(from: row)
                return (record, Position(createdAt: try row.decode(String.self, column: "position_time"), id: record.id))
            }
    }

    /// Every key of a tenant (for `heard keys list`).
    public static func all(on transaction: PostgresTransaction, tenantID: UUID) async throws -> [APIKeyRecord] {
        try await transaction.query("\(unsafeRaw: selectColumns.sql) WHERE k.tenant_id = \(tenantID) ORDER BY k.created_at, k.id")
            .map(record(from:))
    }

    /// Revokes a key (idempotent); nil when there is no such key in the tenant.
    public static func revoke(on transaction: PostgresTransaction, tenantID: UUID, id: UUID) async throws -> APIKeyRecord? {
        try await transaction.execute("""
            UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE tenant_id = \(tenantID) AND id = \(id)
            """)
        return try await find(on: transaction, tenantID: tenantID, id: id)
    }

    static func record(from row: PostgresRow) throws -> APIKeyRecord {
        APIKeyRecord(
            id: try row.decode(UUID.self, column: "id"), name: try row.decode(String.self, column: "name"),
            scopes: try row.decode([String].self, column: "scopes"),
            organisation: try row.decode(String?.self, column: "organisation"),
            expiresOn: try row.decode(CalendarDate?.self, column: "expires_on"),
            createdAt: try row.decode(Date.self, column: "created_at"),
            revokedAt: try row.decode(Date?.self, column: "revoked_at"))
    }
}

import Foundation
import Postgres

/// Tenants (local authorities) and their partner organisations, as the owner's admin commands
/// manage them (`heard tenants`, `heard organisations`).
public enum Registry {
    public struct Tenant: Sendable {
        public var id: UUID
        public var slug: String
        public var name: String
    }

    public struct Organisation: Sendable {
        public var id: UUID
        public var tenantID: UUID
        public var slug: String
        public var name: String
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    static let slugRule = "a slug is 2-63 characters of a-z, 0-9 and -, starting with a letter or digit"

    static func validSlug(_ slug: String) -> Bool {
        slug.utf8.count >= 2 && slug.utf8.count <= 63 && slug.first != "-"
            && slug.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 }
    }

    public static func createTenant(on pool: PostgresPool, slug: String, name: String) async throws -> Tenant {
        guard validSlug(slug) else { throw Failure(description: "\(slug.debugDescription) is not a valid tenant slug: \(slugRule)") }
        guard !name.isEmpty, name.count <= 200 else { throw Failure(description: "--name must be 1 to 200 characters") }
        let id = UUID()
        do {
            try await pool.transaction(settings: [("heard.tenant_id", id.lowercased)]) { tx in
                try await tx.execute("INSERT INTO tenants (id, slug, name) VALUES (\(id), \(slug), \(name))")
                // A new tenant starts with its defaults: Dudley's six principles as its measures,
                // the default complaint categories (heard_seed_tenant, in the migrations).
                try await tx.execute("SELECT heard_seed_tenant(\(id))")
            }
        } catch let error as PostgresError where error.isUniqueViolation {
            throw Failure(description: "a tenant called \(slug) already exists")
        }
        return Tenant(id: id, slug: slug, name: name)
    }

    public static func tenants(on pool: PostgresPool) async throws -> [Tenant] {
        try await pool.query("SELECT id, slug, name FROM tenants ORDER BY slug").map {
            Tenant(id: try $0.decode(UUID.self, column: "id"), slug: try $0.decode(String.self, column: "slug"), name: try $0.decode(String.self, column: "name"))
        }
    }

    public static func tenant(on pool: PostgresPool, slug: String) async throws -> Tenant {
        guard let tenant = try await tenants(on: pool).first(where: { $0.slug == slug }) else {
            throw Failure(description: "there is no tenant called \(slug) (see `heard tenants list`)")
        }
        return tenant
    }

    public static func createOrganisation(on pool: PostgresPool, tenant: Tenant, slug: String, name: String) async throws -> Organisation {
        guard validSlug(slug) else { throw Failure(description: "\(slug.debugDescription) is not a valid organisation slug: \(slugRule)") }
        guard !name.isEmpty, name.count <= 200 else { throw Failure(description: "--name must be 1 to 200 characters") }
        let id = UUID()
        do {
            try await pool.transaction(settings: [("heard.tenant_id", tenant.id.lowercased)]) { tx in
                try await tx.execute("INSERT INTO organisations (id, tenant_id, slug, name) VALUES (\(id), \(tenant.id), \(slug), \(name))")
            }
        } catch let error as PostgresError where error.isUniqueViolation {
            throw Failure(description: "\(tenant.slug) already has an organisation called \(slug)")
        }
        return Organisation(id: id, tenantID: tenant.id, slug: slug, name: name)
    }

    public static func organisations(on pool: PostgresPool, tenant: Tenant) async throws -> [Organisation] {
        try await pool.query("SELECT id, slug, name FROM organisations WHERE tenant_id = \(tenant.id) ORDER BY slug").map {
            Organisation(id: try $0.decode(UUID.self, column: "id"), tenantID: tenant.id,
                         slug: try $0.decode(String.self, column: "slug"), name: try $0.decode(String.self, column: "name"))
        }
    }

    /// The tenant a key belongs to, for `heard keys revoke <key-id>`.
    public static func tenantOfKey(on pool: PostgresPool, keyID: UUID) async throws -> UUID? {
        try await pool.query("SELECT tenant_id FROM api_keys WHERE id = \(keyID)").first?.decode(UUID.self, column: "tenant_id")
    }
}

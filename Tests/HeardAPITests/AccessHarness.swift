import Foundation
import HTTPServer
import HeardAPI
import HeardTesting
import Postgres
import XCTest

/// A migrated scratch database, Heard serving it as the runtime role, and helpers to make
/// tenants, organisations and keys the way `heard tenants|organisations|keys` do (as the owner).
final class AccessHarness: Sendable {
    let database: ScratchDatabase
    let app: AppHarness
    /// As the owner: the registry's administrator.
    let ownerPool: PostgresPool
    var port: Int { app.port }

    static func start(access: AccessControl.Configuration = .init()) async throws -> AccessHarness {
        try await start(on: try await ScratchDatabase.create(), access: access)
    }

    /// Brings `database` up to date (whatever migrations it already has) and serves it.
    static func start(on database: ScratchDatabase, access: AccessControl.Configuration = .init()) async throws -> AccessHarness {
        let migrator = try Migrator(directory: AppHarness.migrationsDirectory)
        _ = try migrator.migrate(configuration: database.owner)
        let app = try AppHarness.start(database: database.runtime, migrator: migrator, access: access)
        return AccessHarness(database: database, app: app, ownerPool: PostgresPool(configuration: database.owner, size: 2))
    }

    private init(database: ScratchDatabase, app: AppHarness, ownerPool: PostgresPool) {
        self.database = database
        self.app = app
        self.ownerPool = ownerPool
    }

    func stop() async {
        await app.stop()
        ownerPool.shutdown()
        await database.drop()
    }

    func tenant(_ slug: String) async throws -> Registry.Tenant {
        try await Registry.createTenant(on: ownerPool, slug: slug, name: "Council \(slug)")
    }

    func organisation(_ slug: String, in tenant: Registry.Tenant) async throws -> Registry.Organisation {
        try await Registry.createOrganisation(on: ownerPool, tenant: tenant, slug: slug, name: "Partner \(slug)")
    }

    /// A new key's full text.
    func key(_ tenant: Registry.Tenant, scopes: [Scope], organisation: Registry.Organisation? = nil, name: String = "test") async throws -> String {
        try await ownerPool.transaction(settings: [("heard.tenant_id", tenant.id.lowercased)]) { tx in
            try await KeyStore.create(on: tx, tenantID: tenant.id, organisationID: organisation?.id, name: name,
                                      scopes: scopes, expiresOn: nil, createdBy: nil)
        }.1
    }

    /// Sends one request with `key` on a fresh connection.
    func send(_ method: String, _ target: String, key: String?, body: String? = nil, headers: [String: String] = [:]) throws -> RawResponse {
        var raw = "\(method) \(target) HTTP/1.1\r\nHost: heard.test\r\n"
        if let key { raw += "Authorization: Bearer \(key)\r\n" }
        for (name, value) in headers { raw += "\(name): \(value)\r\n" }
        if let body {
            if !headers.keys.contains(where: { $0.lowercased() == "content-type" }) { raw += "Content-Type: application/json\r\n" }
            raw += "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
        } else {
            raw += "\r\n"
        }
        let client = try RawClient(port: port)
        client.send(raw)
        return try XCTUnwrap(client.readResponse(), "no response to \(method) \(target)")
    }

    /// A count as a superuser sees it (every tenant).
    func superuserCount(_ query: PostgresQuery) async throws -> Int {
        let pool = PostgresPool(configuration: database.configuration, size: 1)
        defer { pool.shutdown() }
        return try await pool.query(PostgresQuery(unsafeSQL: "SELECT (\(query.sql))::int", binds: query.binds))
            .first?.decode(Int.self, at: 0) ?? -1
    }

    /// Audit rows as a superuser sees them (every tenant, and unattributed ones).
    func auditRows(requestID: String) async throws -> [(tenant: UUID?, action: String, outcome: String, status: Int, resourceID: String?)] {
        let pool = PostgresPool(configuration: database.configuration, size: 1)
        defer { pool.shutdown() }
        return try await pool.query("""
            SELECT tenant_id, action, outcome, status, resource_id FROM audit_events WHERE request_id = \(requestID) ORDER BY id
            """).map {
            (try $0.decode(UUID?.self, column: "tenant_id"), try $0.decode(String.self, column: "action"),
             try $0.decode(String.self, column: "outcome"), try $0.decode(Int.self, column: "status"),
             try $0.decode(String?.self, column: "resource_id"))
        }
    }
}

extension RawResponse {
    var items: [[String: Any]] { json["items"] as? [[String: Any]] ?? [] }
}

import Foundation
import HTTPServer
@testable import HeardAPI
import HeardTesting
import Postgres
import Synchronization
import XCTest

/// A migrated scratch database (a copy of the migrated template), Heard serving it as the
/// runtime role, and helpers to make tenants, organisations and keys the way
/// `heard tenants|organisations|keys` do (as the owner). Requests go straight to the router,
/// or over a real socket once a test calls `serveOverSockets()`.
final class AccessHarness: Sendable {
    let database: ScratchDatabase
    let app: AppHarness
    /// As the owner: the registry's administrator.
    let ownerPool: PostgresPool
    /// The time the service reads (`AccessContext.now`): the real time until a test holds it.
    let clock: HeldClock
    private let sockets = Mutex<(server: Server, log: CapturedLog)?>(nil)

    static func start(access: AccessControl.Configuration = .init(), poolSize: Int = 2) async throws -> AccessHarness {
        let migrator = try Migrator(directory: AppHarness.migrationsDirectory)
        return try serve(try await ScratchDatabase.createMigrated(migrations: migrator), migrator: migrator, access: access, poolSize: poolSize)
    }

    /// Brings `database` up to date (whatever migrations it already has) and serves it.
    static func start(on database: ScratchDatabase, access: AccessControl.Configuration = .init(),
                      poolSize: Int = 2) async throws -> AccessHarness {
        let migrator = try Migrator(directory: AppHarness.migrationsDirectory)
        _ = try migrator.migrate(configuration: database.owner)
        return try serve(database, migrator: migrator, access: access, poolSize: poolSize)
    }

    private static func serve(_ database: ScratchDatabase, migrator: Migrator, access: AccessControl.Configuration,
                              poolSize: Int = 2) throws -> AccessHarness {
        let clock = HeldClock()
        let app = try AppHarness.start(database: database.runtime, migrator: migrator, poolSize: poolSize, access: access, clock: { clock.now },
                                       overSockets: false)
        return AccessHarness(database: database, app: app, ownerPool: PostgresPool(configuration: database.owner, size: 2), clock: clock)
    }

    private init(database: ScratchDatabase, app: AppHarness, ownerPool: PostgresPool, clock: HeldClock) {
        self.database = database
        self.app = app
        self.ownerPool = ownerPool
        self.clock = clock
    }

    /// From now on, `send` goes over a real socket to a server in front of the same router: for
    /// an area's end-to-end test, and what only a server shows (its request log, returned).
    @discardableResult
    func serveOverSockets() throws -> CapturedLog {
        let (server, log) = try AppHarness.serve(app.client, metrics: app.metrics)
        sockets.withLock { $0 = (server, log) }
        return log
    }

    func stop() async {
        if let server = sockets.withLock({ $0?.server }) { await server.shutdown() }
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

    /// Changes keys as the owner (as `heard keys revoke` or an administrator's SQL does), and
    /// returns once the service has heard of it: the notification from the changing transaction
    /// reaches it a moment after the commit (see `KeyCache`).
    func changeKeysAsOwner(_ query: PostgresQuery) async throws {
        try await app.access.keys.waitForChange { try await self.ownerPool.execute(query) }
    }

    /// Sends one request with `key` (on a fresh connection once `serveOverSockets()` was called).
    func send(_ method: String, _ target: String, key: String?, body: String? = nil, headers: [String: String] = [:]) throws -> RawResponse {
        var fields: [(String, String)] = []
        if let key { fields.append(("Authorization", "Bearer \(key)")) }
        for (name, value) in headers { fields.append((name, value)) }
        if body != nil, !headers.keys.contains(where: { $0.lowercased() == "content-type" }) {
            fields.append(("Content-Type", "application/json"))
        }
        guard let port = sockets.withLock({ $0?.server.port }) else {
            return app.client.send(method, target, headers: fields, body: body.map { Array($0.utf8) })
        }
        var raw = "\(method) \(target) HTTP/1.1\r\nHost: heard.test\r\n"
        for (name, value) in fields { raw += "\(name): \(value)\r\n" }
        raw += body.map { "Content-Length: \($0.utf8.count)\r\n\r\n\($0)" } ?? "\r\n"
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
    /// The fields a problem document names (`errors[].field`), in order.
    var fieldErrors: [String] { (json["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String } }
}

/// A clock a test can hold at an instant; it reads the real time until then.
final class HeldClock: Sendable {
    private let held = Mutex<Date?>(nil)

    var now: Date { held.withLock { $0 } ?? Date() }

    /// Holds the clock at `instant` (nil: the real time again).
    func hold(at instant: Date?) { held.withLock { $0 = instant } }
}

/// A test case with Heard on a fresh scratch database and one council, "redcar".
class CouncilTestCase: XCTestCase {
    var harness: AccessHarness!
    var council: Registry.Tenant!

    override func setUp() async throws {
        harness = try await AccessHarness.start()
        council = try await harness.tenant("redcar")
    }

    override func tearDown() async throws {
        await harness?.stop()
    }
}

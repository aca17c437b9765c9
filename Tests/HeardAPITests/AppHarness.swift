import Dispatch
import Foundation
import HTTPServer
@testable import HeardAPI
import HeardTesting
import Postgres

/// Heard's router against a database of the test's choosing: called directly (`client`), and
/// on a real socket too when asked (`port`), for tests of what only a connection shows.
struct AppHarness {
    let client: RouterClient
    let pool: PostgresPool
    let access: AccessControl
    let metrics: Metrics
    /// Nil unless started `overSockets`.
    let server: Server?
    let log: CapturedLog?
    var port: Int { server?.port ?? 0 }

    static let acquireTimeout = Duration.seconds(2)

    static func start(database: PostgresConfiguration, migrator: Migrator, poolSize: Int = 2,
                      access: AccessControl.Configuration = .init(), clock: @escaping @Sendable () -> Date = { Date() },
                      overSockets: Bool = true) throws -> AppHarness {
        // Wired as `heard serve` wires them: the event loops are the pool's lanes.
        let loopQueues = Server.makeLoopQueues(count: ServerConfiguration().loopCount)
        let pool = PostgresPool(configuration: database, size: poolSize, acquireTimeout: acquireTimeout, lanes: loopQueues)
        let metrics = Metrics()
        let app = HeardApp(database: pool, migrator: migrator, metrics: metrics, access: access, clock: clock)
        let client = RouterClient(app.router(), loops: loopQueues)
        guard overSockets else { return AppHarness(client: client, pool: pool, access: app.access, metrics: metrics, server: nil, log: nil) }
        let (server, log) = try serve(client, metrics: metrics)
        return AppHarness(client: client, pool: pool, access: app.access, metrics: metrics, server: server, log: log)
    }

    /// A server on a free loopback port for the router `client` calls, on the same event loops.
    static func serve(_ client: RouterClient, metrics: Metrics) throws -> (Server, CapturedLog) {
        var configuration = ServerConfiguration()
        configuration.port = 0
        let log = try CapturedLog()
        let server = Server(configuration: configuration, responder: client.responder, metrics: metrics, log: log.requestLog,
                            loopQueues: client.loops)
        try server.start()
        return (server, log)
    }

    func stop() async {
        await server?.shutdown()
        pool.shutdown()
    }

    static var migrationsDirectory: URL {
        HeardBinary.packageRoot.appendingPathComponent("Migrations")
    }

    /// A copy of the real migrations plus `extra` files, in a temporary folder.
    static func migrations(adding extra: [String: String]) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("heard-migrations-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: migrationsDirectory, to: directory)
        for (name, sql) in extra {
            try sql.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        return directory
    }
}

extension KeyCache {
    /// Runs `change` (a change to `api_keys`) and returns once the cache has been emptied after
    /// it: by the notification, when it listens. Fails after 10 seconds without one.
    func waitForChange(_ change: () async throws -> Void) async throws {
        let before = currentGeneration
        let listening = generation() != nil
        try await change()
        guard listening else { return }
        let deadline = Date().addingTimeInterval(10)
        while currentGeneration == before {
            guard Date() < deadline else { throw KeyCacheWaitError.noNotification }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Returns once the cache's listener listens (it starts with the first lookup of a key).
    func waitUntilListening() async throws {
        let deadline = Date().addingTimeInterval(10)
        while generation() == nil {
            guard Date() < deadline else { throw KeyCacheWaitError.notListening }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

enum KeyCacheWaitError: Error {
    case notListening
    case noNotification
}

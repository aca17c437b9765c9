import Foundation
import HTTPServer
import HeardAPI
import HeardTesting
import Postgres

/// Heard's router on a real socket, against a database of the test's choosing.
struct AppHarness {
    let server: Server
    let pool: PostgresPool
    let log: CapturedLog
    var port: Int { server.port }

    static func start(database: PostgresConfiguration, migrator: Migrator, poolSize: Int = 2,
                      access: AccessControl.Configuration = .init()) throws -> AppHarness {
        var configuration = ServerConfiguration()
        configuration.port = 0
        // Wired as `heard serve` wires them: the event loops are the pool's lanes.
        let loopQueues = Server.makeLoopQueues(count: configuration.loopCount)
        let pool = PostgresPool(configuration: database, size: poolSize, acquireTimeout: .seconds(2), lanes: loopQueues)
        let metrics = Metrics()
        let app = HeardApp(database: pool, migrator: migrator, metrics: metrics, access: access)
        let log = try CapturedLog()
        let server = Server(configuration: configuration, responder: app.router(), metrics: metrics, log: log.requestLog,
                            loopQueues: loopQueues)
        try server.start()
        return AppHarness(server: server, pool: pool, log: log)
    }

    func stop() async {
        await server.shutdown()
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

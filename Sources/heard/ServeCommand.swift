import Foundation
import HTTPServer
import HeardAPI
import Postgres

enum ServeCommand {
    static let flags: [String: Options.Kind] = ["host": .value, "port": .value, "no-migrate": .flag]

    static let help = """
        Usage: heard serve [--host ADDRESS] [--port PORT] [--no-migrate]

        Runs the HTTP API until SIGTERM or SIGINT, then stops accepting, lets in-flight requests
        finish (SHUTDOWN_TIMEOUT_SECONDS) and exits 0.

        Options:
          --host ADDRESS   Address to listen on (overrides HOST; default 127.0.0.1).
          --port PORT      Port to listen on (overrides PORT; default 8080; 0 picks a free one).
          --no-migrate     Do not apply pending migrations first (/readyz answers 503 until they are).

        The service connects as DATABASE_URL's role, which must not be a superuser, have
        BYPASSRLS or own the tables, nor be a member of a role that is or does (start-up
        refuses otherwise); migrations run as
        MIGRATION_DATABASE_URL's role, the owner. With no DATABASE_URL, a private PostgreSQL
        cluster with both roles is started in HEARD_DATA_DIR and stopped again on exit.

        Environment:
        \(CommandLineInterface.environmentHelp)
        """

    static func run(_ options: Options) async throws -> Int32 {
        guard options.positional.isEmpty else { throw UsageError(description: "unexpected argument \(options.positional[0].debugDescription)") }
        let environment = Environment()
        var server = try environment.serverConfiguration()
        if let host = options.value("host") { server.host = host }
        if let port = options.value("port") {
            guard let number = Int(port), (0...65535).contains(number) else { throw UsageError(description: "--port must be 0-65535") }
            server.port = number
        }
        let log = RequestLog(fd: 1, level: try environment.logLevel())
        let cors = CORSPolicy(allowedOrigins: try environment.corsOrigins())
        let poolSize = try environment.integer("POOL_SIZE", default: 10, range: 1...500)
        let acquireTimeout = try environment.integer("POOL_ACQUIRE_TIMEOUT_MS", default: 2000, range: 1...600_000)
        let migrator = try Migrator(directory: environment.migrationsDirectory)

        let access = try environment.accessConfiguration(log: log)
        let database = try await DatabaseTarget.resolve(environment, log: log)
        defer { database.release() }
        if !options.isSet("no-migrate") {
            let applied = try migrator.migrate(configuration: database.owner)
            log.event("migrations applied", fields: ["count": String(applied.count)])
        }
        // The server's event loops are also the pool's lanes: a handler's round trips to
        // PostgreSQL then start and end on its own loop's thread.
        let loopQueues = Server.makeLoopQueues(count: server.loopCount)
        let pool = PostgresPool(configuration: database.runtime, size: poolSize,
                                acquireTimeout: .milliseconds(acquireTimeout), maxWaiters: max(64, poolSize * 16),
                                lanes: loopQueues)
        defer { pool.shutdown() }
        try await DatabaseRoles.checkRuntimeRole(pool)
        let metrics = Metrics()
        let app = HeardApp(database: pool, migrator: migrator, metrics: metrics, access: access)
        let listener = Server(configuration: server, responder: app.router(cors: cors), metrics: metrics, log: log,
                              loopQueues: loopQueues)
        try listener.start()
        let housekeeping = app.startHousekeeping(log: log)
        defer { housekeeping.cancel() }
        log.event("listening", fields: ["host": server.host, "port": String(listener.port), "database": database.runtime.description])

        let signal = await Server.waitForTerminationSignal()
        log.event("shutting down", fields: ["signal": signal == SIGTERM ? "SIGTERM" : "SIGINT"])
        await listener.shutdown()
        log.event("stopped")
        return 0
    }
}

import EmbeddedPostgres
import Foundation
import HTTPServer
import HeardAPI
import Postgres

/// The database a command works on, as two connections: the runtime role the service uses
/// (`DATABASE_URL`) and the owner that migrates and administers (`MIGRATION_DATABASE_URL`,
/// defaulting to `DATABASE_URL`). With no `DATABASE_URL`, the private cluster in
/// `HEARD_DATA_DIR`, set up with both roles (started if it is not running, and stopped again by
/// whoever started it). Every command uses the same one, so `heard keys create` works against
/// the cluster `heard serve` runs on.
struct DatabaseTarget {
    let runtime: PostgresConfiguration
    let owner: PostgresConfiguration
    private let embedded: EmbeddedPostgres?

    static func resolve(_ environment: Environment, log: RequestLog) async throws -> DatabaseTarget {
        if let url = environment.string("DATABASE_URL") {
            let runtime = try PostgresConfiguration(url: url)
            let owner = try environment.string("MIGRATION_DATABASE_URL").map(PostgresConfiguration.init(url:)) ?? runtime
            return DatabaseTarget(runtime: runtime, owner: owner, embedded: nil)
        }
        let directory = URL(fileURLWithPath: environment.string("HEARD_DATA_DIR", default: ".heard/postgres"))
        log.event("DATABASE_URL is unset: using the private PostgreSQL cluster", fields: ["data_dir": directory.path])
        let embedded = EmbeddedPostgres(dataDirectory: directory)
        let superuser = try embedded.start()
        do {
            try await DatabaseRoles.setUp(database: embedded.database, asSuperuser: superuser)
        } catch {
            embedded.stop()
            throw error
        }
        return DatabaseTarget(runtime: DatabaseRoles.connecting(superuser, as: DatabaseRoles.runtimeLogin),
                              owner: DatabaseRoles.connecting(superuser, as: DatabaseRoles.owner),
                              embedded: embedded)
    }

    /// Stops the private cluster if this process started it.
    func release() {
        embedded?.stop()
    }
}

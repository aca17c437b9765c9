import Foundation
import HTTPServer
import Postgres

/// The database a command works on: `DATABASE_URL`, or else the private cluster in
/// `HEARD_DATA_DIR` (started if it is not running, and stopped again by whoever started it).
struct DatabaseTarget {
    let configuration: PostgresConfiguration
    private let embedded: EmbeddedPostgres?

    static func resolve(_ environment: Environment, log: RequestLog) throws -> DatabaseTarget {
        if let url = environment.string("DATABASE_URL") {
            return DatabaseTarget(configuration: try PostgresConfiguration(url: url), embedded: nil)
        }
        let directory = URL(fileURLWithPath: environment.string("HEARD_DATA_DIR", default: ".heard/postgres"))
        log.event("DATABASE_URL is unset: using the private PostgreSQL cluster", fields: ["data_dir": directory.path])
        let embedded = EmbeddedPostgres(dataDirectory: directory)
        let configuration = try embedded.start()
        return DatabaseTarget(configuration: configuration, embedded: embedded)
    }

    /// Stops the private cluster if this process started it.
    func release() {
        embedded?.stop()
    }
}

import Foundation
import HTTPServer
import Postgres

enum MigrateCommand {
    static let flags: [String: Options.Kind] = ["status": .flag]

    static let help = """
        Usage: heard migrate [--status]

        Applies the pending migrations in MIGRATIONS_DIR, in order, each in its own transaction,
        under an advisory lock (two instances never migrate at once). Refuses to go on when an
        applied migration file was changed or removed.

        Options:
          --status   List applied and pending migrations; change nothing.
        """

    static func run(_ options: Options) async throws -> Int32 {
        let environment = Environment()
        let log = RequestLog(fd: 2, level: try environment.logLevel())
        let migrator = try Migrator(directory: environment.migrationsDirectory)
        let database = try DatabaseTarget.resolve(environment, log: log)
        defer { database.release() }
        if options.isSet("status") {
            let status = try migrator.status(configuration: database.configuration)
            for migration in status.applied { print("applied  \(migration.fileName)") }
            for migration in status.pending { print("pending  \(migration.fileName)") }
            if status.applied.isEmpty && status.pending.isEmpty { print("no migrations") }
            return 0
        }
        let applied = try migrator.migrate(configuration: database.configuration)
        for migration in applied { print("applied  \(migration.fileName)") }
        if applied.isEmpty { print("nothing to apply: the database is up to date") }
        return 0
    }
}

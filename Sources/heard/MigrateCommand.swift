import Foundation
import HTTPServer
import Postgres

enum MigrateCommand {
    static let flags: [String: Options.Kind] = ["status": .flag]

    static let help = """
        Usage: heard migrate [--status]

        Applies, as the owner (MIGRATION_DATABASE_URL, else DATABASE_URL), the pending migrations in MIGRATIONS_DIR, in order, each in its own transaction,
        under an advisory lock (two instances never migrate at once). Refuses to go on when an
        applied migration file was changed or removed.

        Options:
          --status   List applied and pending migrations; change nothing.
        """

    static func run(_ options: Options) async throws -> Int32 {
        let environment = Environment()
        let log = RequestLog(fd: 2, level: try environment.logLevel())
        let migrator = try Migrator(directory: environment.migrationsDirectory)
        let database = try await DatabaseTarget.resolve(environment, log: log)
        defer { database.release() }
        if options.isSet("status") {
            let status = try migrator.status(configuration: database.owner)
            for migration in status.applied { print("applied  \(migration.fileName)") }
            for migration in status.pending { print("pending  \(migration.fileName)") }
            for problem in status.problems { print("problem  \(problem)") }
            if status.applied.isEmpty && status.pending.isEmpty { print("no migrations") }
            return status.problems.isEmpty ? 0 : 1
        }
        let applied = try migrator.migrate(configuration: database.owner)
        for migration in applied { print("applied  \(migration.fileName)") }
        if applied.isEmpty { print("nothing to apply: the database is up to date") }
        return 0
    }
}

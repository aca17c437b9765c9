import Foundation
import HeardCore

/// One migration file, `NNNN_short_name.sql`.
public struct Migration: Sendable, Hashable {
    /// The number before the underscore (at least four digits in the file name).
    public let version: Int
    /// The part after the underscore, without `.sql`.
    public let name: String
    /// The file's name, such as `0001_foundation.sql`.
    public let fileName: String
    /// SHA-256 of the file's bytes, as hex.
    public let checksum: String
    /// The file's SQL.
    public let sql: String
}

/// A migration recorded in `schema_migrations`.
public struct AppliedMigration: Sendable, Hashable {
    public let version: Int
    public let name: String
    public let checksum: String
    public let appliedAt: Date

    /// The file name it was applied from (`0001_foundation.sql`).
    public var fileName: String { Migrator.fileName(version: version, name: name) }
}

/// What `Migrator.status` found.
public struct MigrationStatus: Sendable {
    /// Recorded in the database, in version order.
    public var applied: [AppliedMigration]
    /// Files not yet applied, in version order.
    public var pending: [Migration]
    /// Why `migrate` would refuse to run (changed or missing files); empty when all is well.
    public var problems: [MigrationError]
}

/// A migration problem, with a message meant for the person running `heard migrate`.
public struct MigrationError: Error, Sendable, CustomStringConvertible {
    public let message: String
    /// The database error behind it, when there is one.
    public let underlying: PostgresError?

    public init(_ message: String, underlying: PostgresError? = nil) {
        self.message = message
        self.underlying = underlying
    }

    public var description: String { message }
}

/// Applies `Migrations/NNNN_name.sql` files in version order, each in its own transaction,
/// recording each in `schema_migrations` with the SHA-256 of its bytes.
///
/// Applied files are append-only: `migrate` refuses to run when an applied file was changed or
/// removed, or a new file is numbered before an applied one. A session advisory lock makes
/// concurrent `migrate` calls (several instances starting at once) take turns; the later ones
/// then find nothing pending.
public struct Migrator: Sendable {
    public let directory: URL
    /// The files found in `directory`, in version order.
    public let migrations: [Migration]

    /// The advisory lock key: "Heard" in ASCII.
    static let lockKey: Int64 = 0x48_65_61_72_64

    /// Reads the migration files in `directory` (files not ending in `.sql` are ignored).
    /// - Throws: `MigrationError` for an unreadable directory or file, a malformed file name,
    ///   or two files with the same version.
    public init(directory: URL) throws {
        self.directory = directory
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw MigrationError("cannot read the migrations directory \(directory.path)")
        }
        var byVersion: [Int: Migration] = [:]
        for fileName in names where fileName.hasSuffix(".sql") {
            guard let (version, name) = Self.parse(fileName: fileName) else {
                throw MigrationError(
                    "migration file name \(fileName) is malformed: expected NNNN_short_name.sql "
                        + "(a version of at least four digits, then lowercase letters, digits and underscores)")
            }
            if let other = byVersion[version] {
                throw MigrationError("migrations \(other.fileName) and \(fileName) have the same version \(version)")
            }
            let url = directory.appendingPathComponent(fileName)
            guard let bytes = FileManager.default.contents(atPath: url.path) else {
                throw MigrationError("cannot read migration \(fileName)")
            }
            guard let sql = String(data: bytes, encoding: .utf8) else {
                throw MigrationError("migration \(fileName) is not valid UTF-8")
            }
            byVersion[version] = Migration(
                version: version, name: name, fileName: fileName,
                checksum: SHA256.hexDigest(bytes), sql: sql)
        }
        self.migrations = byVersion.values.sorted { $0.version < $1.version }
    }

    // MARK: Applying

    /// Applies every pending migration, in order, and returns the ones it applied.
    ///
    /// Blocks the calling thread (for start-up and the `migrate` command), including while
    /// another process holds the migration lock.
    /// - Throws: `MigrationError` when an applied file was changed or removed or a migration
    ///   fails (nothing of the failing migration is kept); `PostgresError` when the database
    ///   cannot be reached.
    public func migrate(configuration: PostgresConfiguration) throws -> [Migration] {
        let connection = try PostgresConnection.connectBlocking(configuration: configuration)
        defer { connection.closeBlocking() }
        _ = try connection.queryBlocking("SELECT pg_advisory_lock(\(Self.lockKey))")
        defer { _ = try? connection.queryBlocking("SELECT pg_advisory_unlock(\(Self.lockKey))") }

        try connection.simpleExecuteBlocking("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version bigint PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """)
        let (pending, problems) = plan(applied: try Self.appliedMigrations(connection))
        if let problem = problems.first { throw problem }

        for migration in pending {
            do {
                try connection.simpleExecuteBlocking("BEGIN")
                try connection.simpleExecuteBlocking(migration.sql)
                _ = try connection.queryBlocking("""
                    INSERT INTO schema_migrations (version, name, checksum)
                    VALUES (\(migration.version), \(migration.name), \(migration.checksum))
                    """)
                try connection.simpleExecuteBlocking("COMMIT")
            } catch let error as PostgresError {
                try? connection.simpleExecuteBlocking("ROLLBACK")
                throw MigrationError(
                    "migration \(migration.fileName) failed and was rolled back: \(error.message)", underlying: error)
            }
        }
        return pending
    }

    // MARK: Inspecting

    /// What is applied and what is pending, changing nothing.
    public func status(configuration: PostgresConfiguration) throws -> MigrationStatus {
        let connection = try PostgresConnection.connectBlocking(configuration: configuration)
        defer { connection.closeBlocking() }
        let exists = try connection.queryBlocking("SELECT to_regclass('schema_migrations') IS NOT NULL AS exists")
        let applied = try exists.first?.decode(Bool.self, column: "exists") == true
            ? Self.appliedMigrations(connection) : []
        let (pending, problems) = plan(applied: applied)
        return MigrationStatus(applied: applied, pending: pending, problems: problems)
    }

    /// The migrations not yet applied, with one cheap query (for readiness checks).
    public func pending(using pool: PostgresPool) async throws -> [Migration] {
        let rows: [PostgresRow]
        do {
            rows = try await pool.query("SELECT version FROM schema_migrations")
        } catch let error as PostgresError where error.sqlState == "42P01" {  // undefined_table
            return migrations
        }
        let applied = Set(try rows.map { try $0.decode(Int.self, column: "version") })
        return migrations.filter { !applied.contains($0.version) }
    }

    // MARK: Helpers

    private static func appliedMigrations(_ connection: PostgresConnection) throws -> [AppliedMigration] {
        try connection.queryBlocking("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version")
            .map { row in
                AppliedMigration(
                    version: try row.decode(Int.self, column: "version"),
                    name: try row.decode(String.self, column: "name"),
                    checksum: try row.decode(String.self, column: "checksum"),
                    appliedAt: try row.decode(Date.self, column: "applied_at"))
            }
    }

    /// Compares the files with what was applied.
    private func plan(applied: [AppliedMigration]) -> (pending: [Migration], problems: [MigrationError]) {
        let files = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        let folder = directory.lastPathComponent + "/"
        var problems: [MigrationError] = []
        for record in applied {
            guard let file = files[record.version] else {
                problems.append(MigrationError("applied migration \(record.fileName) is missing from \(folder)"))
                continue
            }
            if file.name != record.name {
                problems.append(MigrationError(
                    "migration \(record.version) was applied as \(record.fileName) but the file is now \(file.fileName)"))
            } else if file.checksum != record.checksum {
                problems.append(MigrationError(
                    "migration \(file.fileName) was changed after it was applied (checksum \(record.checksum) "
                        + "when applied, \(file.checksum) now): applied migrations are append-only, "
                        + "put the change in a new migration"))
            }
        }
        let appliedVersions = Set(applied.map(\.version))
        let pending = migrations.filter { !appliedVersions.contains($0.version) }
        if let latest = applied.last {
            for migration in pending where migration.version < latest.version {
                problems.append(MigrationError(
                    "migration \(migration.fileName) is numbered before the applied migration \(latest.fileName): "
                        + "give it a version after \(latest.version)"))
            }
        }
        return (pending, problems)
    }

    static func parse(fileName: String) -> (version: Int, name: String)? {
        guard fileName.hasSuffix(".sql") else { return nil }
        let stem = fileName.dropLast(4)
        guard let underscore = stem.firstIndex(of: "_") else { return nil }
        let digits = stem[..<underscore]
        let name = stem[stem.index(after: underscore)...]
        let nameCharacters = Set("abcdefghijklmnopqrstuvwxyz0123456789_")
        guard digits.count >= 4, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let version = Int(digits),
              !name.isEmpty, name.allSatisfy(nameCharacters.contains) else { return nil }
        return (version, String(name))
    }

    static func fileName(version: Int, name: String) -> String {
        let digits = String(version)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits + "_" + name + ".sql"
    }
}

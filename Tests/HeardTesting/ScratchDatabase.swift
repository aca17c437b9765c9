import Foundation
import HeardAPI
import Postgres
import Synchronization
import XCTest

/// A fresh, empty database for one test on the server named by `DATABASE_URL` (a superuser on a
/// throw-away cluster), owned by `heard_owner`, dropped by `drop()`. Tests fail (never skip)
/// without `DATABASE_URL`: run them with `scripts/test`.
public struct ScratchDatabase: Sendable {
    public let name: String
    /// As the superuser that created it.
    public let configuration: PostgresConfiguration
    private let admin: PostgresConfiguration

    /// As the owner, who migrates and administers.
    public var owner: PostgresConfiguration { DatabaseRoles.connecting(configuration, as: DatabaseRoles.owner) }
    /// As the service's runtime role, which row-level security holds.
    public var runtime: PostgresConfiguration { DatabaseRoles.connecting(configuration, as: DatabaseRoles.runtimeLogin) }

    public struct MissingDatabaseURL: Error, CustomStringConvertible {
        public var description: String {
            "DATABASE_URL is not set: run the tests with scripts/test, which starts a throw-away PostgreSQL"
        }
    }

    public static var serverURL: String {
        get throws {
            guard let url = ProcessInfo.processInfo.environment["DATABASE_URL"], !url.isEmpty else {
                throw MissingDatabaseURL()
            }
            return url
        }
    }

    /// An empty database, for tests of migrations themselves.
    public static func create() async throws -> ScratchDatabase {
        let admin = try PostgresConfiguration(url: try serverURL)
        let name = newName()
        try await Self.run(on: admin, "CREATE DATABASE \(unsafeRaw: name)")
        var configuration = admin
        configuration.database = name
        try await DatabaseRoles.setUp(database: name, asSuperuser: configuration)
        return ScratchDatabase(name: name, configuration: configuration, admin: admin)
    }

    /// A database with every migration applied: a copy of a template migrated once per set of
    /// migrations, made while the previous test ran (see `MigratedTemplate.copy`).
    public static func createMigrated(migrations: Migrator) async throws -> ScratchDatabase {
        let admin = try PostgresConfiguration(url: try serverURL)
        let template = try await MigratedTemplate.name(for: migrations, admin: admin)
        let name = try await MigratedTemplate.copy(of: template, admin: admin)
        var configuration = admin
        configuration.database = name
        return ScratchDatabase(name: name, configuration: configuration, admin: admin)
    }

    static func newName() -> String {
        "heard_s_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
    }

    /// A libpq URL for this database as `user` (default: the superuser), for child processes.
    public func url(as user: String? = nil) throws -> String {
        let url = try superuserURL
        guard let user else { return url }
        return url.replacingOccurrences(of: "user=postgres", with: "user=\(user)")
    }

    private var superuserURL: String {
        get throws {
            let server = try Self.serverURL
            guard let schemeEnd = server.range(of: "://") else { return server }
            let rest = server[schemeEnd.upperBound...]
            let pathStart = rest.firstIndex(of: "/") ?? rest.endIndex
            let queryStart = rest[pathStart...].firstIndex(of: "?") ?? rest.endIndex
            return String(server[..<schemeEnd.upperBound]) + rest[..<pathStart] + "/" + name + rest[queryStart...]
        }
    }

    public func drop() async {
        try? await Self.run(on: admin, "DROP DATABASE IF EXISTS \(unsafeRaw: name) WITH (FORCE)")
    }

    static func run(on configuration: PostgresConfiguration, _ statement: PostgresQuery) async throws {
        let pool = PostgresPool(configuration: configuration, size: 1)
        defer { pool.shutdown() }
        try await pool.withConnection { try await $0.simpleExecute(statement.sql) }
    }
}

/// The migrated template a test process copies: `heard_template_<digest of the migrations>`,
/// built by whichever test process needs it first. Test processes run at once (`swift test
/// --parallel`, several test targets), so building is serialised by an advisory lock and the
/// template appears under its name only when complete.
enum MigratedTemplate {
    private static let built = Mutex<[String: Task<Void, any Error>]>([:])

    static func name(for migrator: Migrator, admin: PostgresConfiguration) async throws -> String {
        var digest: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a over each migration's file name and checksum
        for migration in migrator.migrations {
            for byte in (migration.fileName + migration.checksum).utf8 { digest = (digest ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        }
        let name = "heard_template_" + String(digest, radix: 16)
        let task = built.withLock { tasks in
            if let task = tasks[name] { return task }
            let task = Task { try await build(name, migrator: migrator, admin: admin) }
            tasks[name] = task
            return task
        }
        try await task.value
        return name
    }

    /// Copies made ahead, one per template: a test takes the one made while the test before it
    /// ran, and the next is started at once. CREATE DATABASE is most of what starting a test
    /// costs, and a test mostly waits on the database, so the copy is made in that time.
    private static let spares = Mutex<[String: Task<String, any Error>]>([:])

    /// A new database copied from `template`, owned by the owner role.
    static func copy(of template: String, admin: PostgresConfiguration) async throws -> String {
        let made = spares.withLock { spares in
            let ready = spares[template] ?? makeCopy(of: template, admin: admin)
            spares[template] = makeCopy(of: template, admin: admin)
            return ready
        }
        SpareCopies.dropAtTheEnd(admin: admin)
        return try await made.value
    }

    private static func makeCopy(of template: String, admin: PostgresConfiguration) -> Task<String, any Error> {
        Task {
            let name = ScratchDatabase.newName()
            try await ScratchDatabase.run(
                on: admin, "CREATE DATABASE \(unsafeRaw: name) TEMPLATE \(unsafeRaw: template) OWNER \(unsafeRaw: DatabaseRoles.owner)")
            return name
        }
    }

    /// Drops the copies made ahead and never taken.
    static func dropSpares(admin: PostgresConfiguration) async {
        let left = spares.withLock { spares in
            defer { spares = [:] }
            return Array(spares.values)
        }
        for task in left {
            guard let name = try? await task.value else { continue }
            try? await ScratchDatabase.run(on: admin, "DROP DATABASE IF EXISTS \(unsafeRaw: name) WITH (FORCE)")
        }
    }

    private static func build(_ name: String, migrator: Migrator, admin: PostgresConfiguration) async throws {
        let pool = PostgresPool(configuration: admin, size: 1)
        defer { pool.shutdown() }
        try await pool.withConnection { connection in
            // Session-level: held until unlocked, whatever the statements in between do.
            try await connection.simpleExecute("SELECT pg_advisory_lock(7296632, 1)")
            do {
                let exists = try await connection.query("SELECT 1 FROM pg_database WHERE datname = \(name)")
                if exists.isEmpty {
                    let building = name + "_building"
                    try await connection.simpleExecute("DROP DATABASE IF EXISTS \(building) WITH (FORCE)")
                    try await connection.simpleExecute("CREATE DATABASE \(building)")
                    var configuration = admin
                    configuration.database = building
                    try await DatabaseRoles.setUp(database: building, asSuperuser: configuration)
                    _ = try migrator.migrate(configuration: DatabaseRoles.connecting(configuration, as: DatabaseRoles.owner))
                    try await connection.simpleExecute("ALTER DATABASE \(building) RENAME TO \(name)")
                }
            } catch {
                try? await connection.simpleExecute("SELECT pg_advisory_unlock(7296632, 1)")
                throw error
            }
            try await connection.simpleExecute("SELECT pg_advisory_unlock(7296632, 1)")
        }
    }
}

/// Drops the spare copies when the test bundle finishes, so a run leaves behind no database it
/// made.
final class SpareCopies: NSObject, XCTestObservation, Sendable {
    private static let registered = Mutex<SpareCopies?>(nil)
    private let admin: PostgresConfiguration

    private init(admin: PostgresConfiguration) {
        self.admin = admin
    }

    static func dropAtTheEnd(admin: PostgresConfiguration) {
        let observer = registered.withLock { registered -> SpareCopies? in
            guard registered == nil else { return nil }
            registered = SpareCopies(admin: admin)
            return registered
        }
        guard let observer else { return }
        DispatchQueue.main.async { XCTestObservationCenter.shared.addTestObserver(observer) }
    }

    func testBundleDidFinish(_ testBundle: Bundle) {
        let done = DispatchSemaphore(value: 0)
        Task { [admin] in
            await MigratedTemplate.dropSpares(admin: admin)
            done.signal()
        }
        done.wait()
    }
}

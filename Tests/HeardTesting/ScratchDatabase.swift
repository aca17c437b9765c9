import Foundation
import HeardAPI
import Postgres

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

    public static func create() async throws -> ScratchDatabase {
        let admin = try PostgresConfiguration(url: try serverURL)
        let name = "heard_s_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        try await Self.run(on: admin, "CREATE DATABASE \(unsafeRaw: String(name))")
        var configuration = admin
        configuration.database = String(name)
        try await DatabaseRoles.setUp(database: String(name), asSuperuser: configuration)
        return ScratchDatabase(name: String(name), configuration: configuration, admin: admin)
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

    private static func run(on configuration: PostgresConfiguration, _ statement: PostgresQuery) async throws {
        let pool = PostgresPool(configuration: configuration, size: 1)
        defer { pool.shutdown() }
        try await pool.withConnection { try await $0.simpleExecute(statement.sql) }
    }
}

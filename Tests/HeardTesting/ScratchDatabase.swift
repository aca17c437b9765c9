import Foundation
import Postgres

/// A fresh, empty database for one test on the server named by `DATABASE_URL`, dropped by
/// `drop()`. Tests fail (never skip) without `DATABASE_URL`: run them with `scripts/test`.
public struct ScratchDatabase: Sendable {
    public let name: String
    public let configuration: PostgresConfiguration
    private let admin: PostgresConfiguration

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
        return ScratchDatabase(name: String(name), configuration: configuration, admin: admin)
    }

    /// A libpq URL for this database, for child processes (`heard migrate`).
    public var url: String {
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

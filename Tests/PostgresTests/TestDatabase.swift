import Foundation
import XCTest
@testable import Postgres

/// A fresh database for one test (`heard_t_<random>`), created on the server named by
/// `DATABASE_URL` and dropped by `drop()`.
struct TestDatabase {
    let name: String
    let configuration: PostgresConfiguration
    private let admin: PostgresConfiguration

    struct MissingDatabaseURL: Error, CustomStringConvertible {
        var description: String {
            "DATABASE_URL is not set: run the tests with scripts/test, which starts a throw-away PostgreSQL"
        }
    }

    /// The server the tests run against; fails (not skips) the test when unset.
    static func serverConfiguration() throws -> PostgresConfiguration {
        guard let url = ProcessInfo.processInfo.environment["DATABASE_URL"], !url.isEmpty else {
            throw MissingDatabaseURL()
        }
        return try PostgresConfiguration(url: url)
    }

    static func create() throws -> TestDatabase {
        let admin = try serverConfiguration()
        let name = "heard_t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        let connection = try PostgresConnection.connectBlocking(configuration: admin)
        defer { connection.closeBlocking() }
        try connection.simpleExecuteBlocking("CREATE DATABASE \"\(name)\"")
        var configuration = admin
        configuration.database = String(name)
        return TestDatabase(name: String(name), configuration: configuration, admin: admin)
    }

    func drop() {
        guard let connection = try? PostgresConnection.connectBlocking(configuration: admin) else { return }
        defer { connection.closeBlocking() }
        try? connection.simpleExecuteBlocking("DROP DATABASE IF EXISTS \"\(name)\" WITH (FORCE)")
    }
}

/// Runs `body` with a pool on a fresh database, then shuts the pool down and drops the database.
func withTestPool<T>(
    size: Int = 4,
    acquireTimeout: Duration = .seconds(5),
    maxWaiters: Int = 100,
    pipelineDepth: Int = 8,
    _ body: (PostgresPool, TestDatabase) async throws -> T
) async throws -> T {
    let database = try TestDatabase.create()
    let pool = PostgresPool(configuration: database.configuration, size: size,
                            acquireTimeout: acquireTimeout, maxWaiters: maxWaiters, pipelineDepth: pipelineDepth)
    do {
        let result = try await body(pool, database)
        pool.shutdown()
        database.drop()
        return result
    } catch {
        pool.shutdown()
        database.drop()
        throw error
    }
}

/// Runs `body`, which must throw a `PostgresError`, and returns that error.
func expectPostgresError<T>(_ body: () async throws -> T) async throws -> PostgresError {
    do {
        _ = try await body()
    } catch let error as PostgresError {
        return error
    }
    throw ExpectationFailure(description: "expected a PostgresError, but nothing was thrown")
}

struct ExpectationFailure: Error, CustomStringConvertible {
    let description: String
}

extension PostgresPool {
    /// The first row of `query`'s result; throws if there is none.
    func firstRow(_ query: PostgresQuery) async throws -> PostgresRow {
        guard let row = try await self.query(query).first else {
            throw ExpectationFailure(description: "no row returned by \(query)")
        }
        return row
    }
}

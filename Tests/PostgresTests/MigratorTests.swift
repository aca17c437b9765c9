import Foundation
import Synchronization
import XCTest
@testable import Postgres

final class MigratorTests: XCTestCase {
    private var database: TestDatabase!
    private var directory: URL!

    override func setUpWithError() throws {
        database = try TestDatabase.create()
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("heard-migrations-\(UUID().uuidString)")
            .appendingPathComponent("Migrations")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        database?.drop()
        if let directory { try? FileManager.default.removeItem(at: directory.deletingLastPathComponent()) }
    }

    private func write(_ fileName: String, _ sql: String) throws {
        try Data(sql.utf8).write(to: directory.appendingPathComponent(fileName))
    }

    private func count(_ sql: String) throws -> Int {
        let connection = try PostgresConnection.connectBlocking(configuration: database.configuration)
        defer { connection.closeBlocking() }
        return try connection.queryBlocking(PostgresQuery(unsafeSQL: sql)).first?.decode(Int.self, at: 0) ?? -1
    }

    func testFreshApplyThenRerunIsANoOp() throws {
        try write("0001_people.sql", "CREATE TABLE people (id int PRIMARY KEY);")
        try write("0002_more_people.sql", "INSERT INTO people VALUES (1); INSERT INTO people VALUES (2);")
        try write("README.md", "not a migration")
        let migrator = try Migrator(directory: directory)
        XCTAssertEqual(migrator.migrations.map(\.fileName), ["0001_people.sql", "0002_more_people.sql"])

        let applied = try migrator.migrate(configuration: database.configuration)
        XCTAssertEqual(applied.map(\.version), [1, 2])
        XCTAssertEqual(try count("SELECT count(*) FROM people"), 2)
        XCTAssertEqual(try count("SELECT count(*) FROM schema_migrations"), 2)

        XCTAssertEqual(try migrator.migrate(configuration: database.configuration), [])
        XCTAssertEqual(try count("SELECT count(*) FROM people"), 2)
    }

    func testStatusListsAppliedAndPending() async throws {
        try write("0001_a.sql", "CREATE TABLE a (x int);")
        let before = try Migrator(directory: directory).status(configuration: database.configuration)
        XCTAssertEqual(before.applied, [])
        XCTAssertEqual(before.pending.map(\.fileName), ["0001_a.sql"])

        _ = try Migrator(directory: directory).migrate(configuration: database.configuration)
        try write("0002_b.sql", "CREATE TABLE b (x int);")
        let migrator = try Migrator(directory: directory)
        let status = try migrator.status(configuration: database.configuration)
        XCTAssertEqual(status.applied.map(\.fileName), ["0001_a.sql"])
        XCTAssertEqual(status.applied.first?.checksum, migrator.migrations.first?.checksum)
        XCTAssertEqual(status.pending.map(\.fileName), ["0002_b.sql"])
        XCTAssertTrue(status.problems.isEmpty)

        let pool = PostgresPool(configuration: database.configuration, size: 1)
        defer { pool.shutdown() }
        let pending = try await migrator.pending(using: pool)
        XCTAssertEqual(pending.map(\.fileName), ["0002_b.sql"])
    }

    func testPendingBeforeAnyMigrationListsEverything() async throws {
        try write("0001_a.sql", "SELECT 1;")
        let pool = PostgresPool(configuration: database.configuration, size: 1)
        defer { pool.shutdown() }
        let pending = try await Migrator(directory: directory).pending(using: pool)
        XCTAssertEqual(pending.map(\.fileName), ["0001_a.sql"])
    }

    func testChangedAppliedFileIsRefused() throws {
        try write("0001_foundation.sql", "CREATE TABLE a (x int);")
        _ = try Migrator(directory: directory).migrate(configuration: database.configuration)
        try write("0001_foundation.sql", "CREATE TABLE a (x bigint);")
        try write("0002_next.sql", "CREATE TABLE b (x int);")
        XCTAssertThrowsError(try Migrator(directory: directory).migrate(configuration: database.configuration)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("migration 0001_foundation.sql was changed after it was applied (checksum"), message)
        }
        // Nothing after the refusal was applied.
        XCTAssertEqual(try count("SELECT count(*) FROM schema_migrations"), 1)
        XCTAssertEqual(try count("SELECT count(*) FROM pg_tables WHERE tablename = 'b'"), 0)
        let status = try Migrator(directory: directory).status(configuration: database.configuration)
        XCTAssertEqual(status.problems.count, 1)
    }

    func testMissingAppliedFileIsRefused() throws {
        try write("0001_a.sql", "CREATE TABLE a (x int);")
        try write("0002_x.sql", "CREATE TABLE x (x int);")
        _ = try Migrator(directory: directory).migrate(configuration: database.configuration)
        try FileManager.default.removeItem(at: directory.appendingPathComponent("0002_x.sql"))
        XCTAssertThrowsError(try Migrator(directory: directory).migrate(configuration: database.configuration)) { error in
            XCTAssertEqual("\(error)", "applied migration 0002_x.sql is missing from Migrations/")
        }
    }

    func testMigrationNumberedBeforeAnAppliedOneIsRefused() throws {
        try write("0002_b.sql", "SELECT 1;")
        _ = try Migrator(directory: directory).migrate(configuration: database.configuration)
        try write("0001_a.sql", "SELECT 1;")
        XCTAssertThrowsError(try Migrator(directory: directory).migrate(configuration: database.configuration)) { error in
            XCTAssertTrue("\(error)".contains("0001_a.sql is numbered before the applied migration 0002_b.sql"), "\(error)")
        }
    }

    func testFailingMigrationIsRolledBackAndNotRecorded() throws {
        try write("0001_ok.sql", "CREATE TABLE ok (x int);")
        try write("0002_broken.sql", "CREATE TABLE half (x int); SELECT * FROM no_such_table;")
        XCTAssertThrowsError(try Migrator(directory: directory).migrate(configuration: database.configuration)) { error in
            XCTAssertTrue("\(error)".hasPrefix("migration 0002_broken.sql failed and was rolled back"), "\(error)")
            XCTAssertEqual((error as? MigrationError)?.underlying?.sqlState, "42P01")
        }
        XCTAssertEqual(try count("SELECT count(*) FROM schema_migrations"), 1)
        XCTAssertEqual(try count("SELECT count(*) FROM pg_tables WHERE tablename = 'half'"), 0)
    }

    func testMalformedAndDuplicateFileNamesAreRejected() throws {
        try write("001_short.sql", "SELECT 1;")
        XCTAssertThrowsError(try Migrator(directory: directory)) { error in
            XCTAssertTrue("\(error)".contains("001_short.sql is malformed"), "\(error)")
        }
        try FileManager.default.removeItem(at: directory.appendingPathComponent("001_short.sql"))
        try write("0003_Upper.sql", "SELECT 1;")
        XCTAssertThrowsError(try Migrator(directory: directory))
        try FileManager.default.removeItem(at: directory.appendingPathComponent("0003_Upper.sql"))
        try write("0003_a.sql", "SELECT 1;")
        try write("0003_b.sql", "SELECT 1;")
        XCTAssertThrowsError(try Migrator(directory: directory)) { error in
            XCTAssertTrue("\(error)".contains("have the same version 3"), "\(error)")
        }
        XCTAssertThrowsError(try Migrator(directory: directory.appendingPathComponent("nope")))
    }

    /// Two migrators racing on one database (separate sessions, separate threads): the advisory
    /// lock makes them take turns, so each migration runs exactly once.
    func testConcurrentMigratorsApplyEachMigrationOnce() throws {
        try write("0001_counter.sql", "CREATE TABLE counter (n int); INSERT INTO counter VALUES (1); SELECT pg_sleep(0.2);")
        try write("0002_again.sql", "INSERT INTO counter VALUES (2); SELECT pg_sleep(0.2);")
        let migrator = try Migrator(directory: directory)
        let configuration = database.configuration
        let outcomes = Outcomes()
        let group = DispatchGroup()
        for _ in 0..<2 {
            group.enter()
            Thread.detachNewThread {
                let outcome = Result { try migrator.migrate(configuration: configuration).count }
                outcomes.results.withLock { $0.append(outcome) }
                group.leave()
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success)
        let counts = try outcomes.results.withLock { try $0.map { try $0.get() } }
        XCTAssertEqual(counts.sorted(), [0, 2])
        XCTAssertEqual(try count("SELECT count(*) FROM counter"), 2)
        XCTAssertEqual(try count("SELECT count(*) FROM schema_migrations"), 2)
    }

    private final class Outcomes: Sendable {
        let results = Mutex<[Result<Int, any Error>]>([])
    }

    func testTheProjectMigrationsApply() throws {
        let projectMigrations = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Migrations")
        let migrator = try Migrator(directory: projectMigrations)
        XCTAssertEqual(migrator.migrations.first?.fileName, "0001_foundation.sql")
        let applied = try migrator.migrate(configuration: database.configuration)
        XCTAssertEqual(applied.count, migrator.migrations.count)
        XCTAssertEqual(try migrator.migrate(configuration: database.configuration), [])
    }
}

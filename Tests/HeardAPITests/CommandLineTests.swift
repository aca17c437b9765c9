import Foundation
import HeardAPI
import HeardTesting
import Postgres
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The `heard` executable as an operator or CI uses it.
final class CommandLineTests: XCTestCase {
    func testHelpExplainsCommandsOptionsAndEveryEnvironmentVariable() throws {
        let help = try HeardBinary.run(["--help"])
        XCTAssertEqual(help.status, 0)
        for word in ["serve", "migrate", "DATABASE_URL", "PORT", "POOL_SIZE", "MAX_BODY_BYTES", "CORS_ALLOWED_ORIGINS"] {
            XCTAssertTrue(help.output.contains(word), "heard --help does not mention \(word)")
        }
        let serve = try HeardBinary.run(["serve", "--help"])
        XCTAssertEqual(serve.status, 0)
        XCTAssertTrue(serve.output.contains("--no-migrate"))
        XCTAssertTrue(serve.output.contains("--port"))
        let unknown = try HeardBinary.run(["serve", "--bogus"])
        XCTAssertEqual(unknown.status, 2)
        XCTAssertTrue(unknown.error.contains("unknown option --bogus"))
        XCTAssertEqual(try HeardBinary.run(["frobnicate"]).status, 2)
    }

    func testABadSettingStopsStartUpWithAClearMessage() throws {
        let result = try HeardBinary.run(["serve"], environment: ["PORT": "eighty", "DATABASE_URL": "postgresql:///x?host=/nonexistent"])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.error.contains("PORT must be a whole number"), result.error)
    }

    func testMigrateAppliesOnceThenIsANoOpAndStatusLists() async throws {
        let database = try await ScratchDatabase.create()
        let environment: [String: String?] = ["DATABASE_URL": try database.url()]
        let first = try HeardBinary.run(["migrate"], environment: environment)
        XCTAssertEqual(first.status, 0, first.error)
        XCTAssertTrue(first.output.contains("applied  0001_foundation.sql"), first.output)
        let second = try HeardBinary.run(["migrate"], environment: environment)
        XCTAssertEqual(second.status, 0, second.error)
        XCTAssertTrue(second.output.contains("nothing to apply"), second.output)
        let status = try HeardBinary.run(["migrate", "--status"], environment: environment)
        XCTAssertTrue(status.output.contains("applied  0001_foundation.sql"), status.output)
        await database.drop()
    }

    func testTwoMigrateProcessesAtOnceApplyEachMigrationExactlyOnce() async throws {
        let database = try await ScratchDatabase.create()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("heard-race-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try "CREATE TABLE runs (migration int); INSERT INTO runs VALUES (1); SELECT pg_sleep(0.5);"
            .write(to: directory.appendingPathComponent("0001_slow.sql"), atomically: true, encoding: .utf8)
        try "INSERT INTO runs VALUES (2);".write(to: directory.appendingPathComponent("0002_next.sql"), atomically: true, encoding: .utf8)
        let environment: [String: String?] = ["DATABASE_URL": try database.url(), "MIGRATIONS_DIR": directory.path]

        let processes = try (0..<2).map { _ in try HeardBinary.start(["migrate"], environment: environment) }
        var outputs: [String] = []
        for (process, output, _) in processes {
            outputs.append(String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0)
        }
        XCTAssertEqual(outputs.joined().components(separatedBy: "applied  0001_slow.sql").count - 1, 1, outputs.joined())

        let pool = PostgresPool(configuration: database.configuration, size: 1)
        let runs = try await pool.query("SELECT migration FROM runs ORDER BY migration").map { try $0.decode(Int.self, at: 0) }
        XCTAssertEqual(runs, [1, 2])
        let recorded = try await pool.query("SELECT count(*)::int FROM schema_migrations").first?.decode(Int.self, at: 0)
        XCTAssertEqual(recorded, 2)
        pool.shutdown()
        await database.drop()
        try? FileManager.default.removeItem(at: directory)
    }

    func testServeMigratesServesAndExitsZeroOnSIGTERM() async throws {
        let database = try await ScratchDatabase.create()
        let port = try freePort()
        let (process, output, _) = try HeardBinary.start(["serve", "--port", String(port)], environment: [
            "DATABASE_URL": try database.url(as: DatabaseRoles.runtimeLogin),
            "MIGRATION_DATABASE_URL": try database.url(as: DatabaseRoles.owner),
        ])
        let ready = try waitForStatus(port: port, path: "/readyz", status: 200)
        XCTAssertTrue(ready, "heard serve never became ready")
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        let log = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(log.contains("\"message\":\"listening\""), log)
        XCTAssertTrue(log.contains("\"route\":\"/readyz\""), log)
        XCTAssertTrue(log.contains("\"message\":\"stopped\""), log)
        await database.drop()
    }
}

/// Polls `path` until it answers `status` (true) or 30 seconds pass (false).
func waitForStatus(port: Int, path: String, status: Int, timeout: TimeInterval = 30) throws -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if let client = try? RawClient(port: port, receiveTimeout: 2) {
            client.send("GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if client.readResponse()?.status == status { return true }
        }
        usleep(100_000)
    }
    return false
}

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

    func testAdminCommandsManageTenantsOrganisationsAndKeys() async throws {
        let database = try await ScratchDatabase.create()
        let environment: [String: String?] = ["DATABASE_URL": try database.url(as: DatabaseRoles.owner)]
        let early = try HeardBinary.run(["tenants", "create", "dudley", "--name", "Dudley"], environment: environment)
        XCTAssertEqual(early.status, 1)
        XCTAssertTrue(early.error.contains("run `heard migrate` first"), early.error)
        XCTAssertEqual(try HeardBinary.run(["migrate"], environment: environment).status, 0)

        let tenant = try HeardBinary.run(["tenants", "create", "dudley", "--name", "Dudley Metropolitan Borough Council"], environment: environment)
        XCTAssertEqual(tenant.status, 0, tenant.error)
        let again = try HeardBinary.run(["tenants", "create", "dudley", "--name", "Dudley"], environment: environment)
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.error.contains("already exists"), again.error)
        XCTAssertEqual(try HeardBinary.run(["tenants", "create", "Bad Slug!", "--name", "x"], environment: environment).status, 1)
        let organisation = try HeardBinary.run(["organisations", "create", "--tenant", "dudley", "advocacy", "--name", "Advocacy Service"], environment: environment)
        XCTAssertEqual(organisation.status, 0, organisation.error)

        let created = try HeardBinary.run(["keys", "create", "--tenant", "dudley", "--name", "portal", "--scopes", "feedback:read,free_text:read",
                                           "--organisation", "advocacy", "--expires", "2099-01-01"], environment: environment)
        XCTAssertEqual(created.status, 0, created.error)
        let lines = created.output.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "the key alone, on one line of stdout: \(created.output)")
        let key = try XCTUnwrap(APIKeySecret(text: String(lines[0])))

        let listed = try HeardBinary.run(["keys", "list", "--tenant", "dudley"], environment: environment)
        XCTAssertTrue(listed.output.contains(key.id.lowercased))
        XCTAssertTrue(listed.output.contains("advocacy"))
        XCTAssertTrue(listed.output.contains("expires 2099-01-01"))
        XCTAssertFalse(listed.output.contains(key.secret), "the secret is never shown again")

        XCTAssertEqual(try HeardBinary.run(["keys", "revoke", key.id.lowercased], environment: environment).status, 0)
        XCTAssertTrue(try HeardBinary.run(["keys", "list", "--tenant", "dudley"], environment: environment).output.contains("revoked"))
        XCTAssertEqual(try HeardBinary.run(["keys", "create", "--tenant", "dudley", "--name", "x", "--scopes", "sudo"], environment: environment).status, 2)
        XCTAssertEqual(try HeardBinary.run(["keys", "revoke", UUID().lowercased], environment: environment).status, 1)
        await database.drop()
    }

    func testServeRefusesARoleThatBypassesRowLevelSecurity() async throws {
        let database = try await ScratchDatabase.create()
        let result = try HeardBinary.run(["serve", "--port", String(try freePort())], environment: ["DATABASE_URL": try database.url()])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.error.contains("is or inherits a superuser"), result.error)
        await database.drop()
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

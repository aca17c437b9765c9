import EmbeddedPostgres
import Foundation
import HTTPServer
import HeardAPI
import HeardTesting
import Postgres
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Heard outlives its database: answers 503 while PostgreSQL is down and recovers by itself.
final class DatabaseOutageTests: XCTestCase {
    func testPostgresStoppedAndStartedWhileHeardRuns() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("heard-outage-\(UUID().uuidString.prefix(8))")
        let cluster = EmbeddedPostgres(dataDirectory: directory)
        let configuration = try cluster.start()
        defer {
            cluster.stop()
            try? FileManager.default.removeItem(at: directory)
        }
        let migrator = try Migrator(directory: AppHarness.migrationsDirectory)
        _ = try migrator.migrate(configuration: configuration)
        let app = try AppHarness.start(database: configuration, migrator: migrator)

        XCTAssertEqual(try roundTrip(app.port, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n").status, 200)

        cluster.stop()
        let during = try roundTrip(app.port, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(during.status, 503)
        XCTAssertEqual(during.header("Retry-After"), "2")
        XCTAssertEqual(during.json["detail"] as? String, "The database is not reachable.")
        XCTAssertEqual(try roundTrip(app.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").status, 200, "the process stays up")

        _ = try cluster.start()
        let after = try roundTrip(app.port, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(after.status, 200, "same server, same pool, no restart: \(after.text)")
        await app.stop()
    }

    /// Every database connection busy: a request waits the pool's acquire timeout, then hears
    /// 503 with Retry-After; it is never left waiting for the connection to come back.
    func testAnExhaustedPoolAnswers503WithRetryAfterWhileItsOnlyConnectionIsStillHeld() async throws {
        let harness = try await AccessHarness.start(poolSize: 1)
        let council = try await harness.tenant("dudley")
        let key = try await harness.key(council, scopes: [.feedbackWrite])
        let body = FeedbackSamples.body(externalID: "while-busy")
        XCTAssertEqual(try harness.send("POST", "/v1/feedback", key: key, body: FeedbackSamples.body(externalID: "before")).status, 201)

        let (busy, waited, health) = try await harness.app.pool.withConnection { _ in
            // The only connection is lent out until this closure returns, so an answer that
            // arrives in here cannot have waited for it.
            let started = Date()
            let busy = try harness.send("POST", "/v1/feedback", key: key, body: body)
            let waited = Date().timeIntervalSince(started)
            return (busy, waited, try harness.send("GET", "/healthz", key: nil))
        }
        XCTAssertEqual(busy.status, 503, busy.text)
        XCTAssertEqual(busy.header("Retry-After"), "2")
        XCTAssertEqual(busy.json["type"] as? String, "urn:heard:problem:database-unavailable")
        XCTAssertGreaterThanOrEqual(waited, AppHarness.acquireTimeout / .seconds(1) - 0.1, "it waited for the acquire timeout first")
        XCTAssertEqual(health.status, 200, "/healthz never needs the pool")
        XCTAssertEqual(try harness.send("POST", "/v1/feedback", key: key, body: body).status, 201,
                       "the retry is served once a connection is free; the refused request stored nothing")
        await harness.stop()
    }

    func testServeWithoutDatabaseURLRunsAPrivateClusterAndStopsIt() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("heard-embedded-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let port = try freePort()
        let (process, output, error) = try HeardBinary.start(
            ["serve", "--port", String(port)],
            environment: ["DATABASE_URL": nil, "HEARD_DATA_DIR": directory.path])
        let ready = try waitForStatus(port: port, path: "/readyz", status: 200, timeout: 60)
        XCTAssertTrue(ready, "heard serve with the embedded default never became ready")
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory.appendingPathComponent("postmaster.pid").path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory.appendingPathComponent(".s.PGSQL.5432").path),
                      "the private cluster listens on a Unix socket in its data directory")
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        let log = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(process.terminationStatus, 0, log + String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
        XCTAssertTrue(log.contains("using the private PostgreSQL cluster"), log)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.appendingPathComponent("postmaster.pid").path),
                       "the cluster it started is stopped on exit")
    }
}

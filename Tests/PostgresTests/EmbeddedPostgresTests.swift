@testable import EmbeddedPostgres
import Foundation
import XCTest
@testable import Postgres

/// These tests run their own cluster in a temporary directory, so they can stop and start it.
final class EmbeddedPostgresTests: XCTestCase {
    private var root: URL!

    override func setUp() {
        // Short: the Unix socket path must fit in 108 bytes.
        root = URL(fileURLWithPath: "/tmp/heard-e-\(UUID().uuidString.prefix(8))")
    }

    override func tearDown() {
        if let root { try? FileManager.default.removeItem(at: root) }
    }

    func testPoolSurvivesAServerRestart() async throws {
        let embedded = EmbeddedPostgres(dataDirectory: root.appendingPathComponent("pg"))
        defer { embedded.stop() }
        let configuration = try embedded.start()
        XCTAssertTrue(embedded.isRunning)
        XCTAssertTrue(embedded.didStartServer)
        XCTAssertEqual(configuration.database, "heard")

        let pool = PostgresPool(configuration: configuration, size: 2, acquireTimeout: .seconds(5))
        defer { pool.shutdown() }
        try await runTwoQueriesAtOnce(pool)  // two connections now idle in the pool
        XCTAssertEqual(pool.stats.idle, 2)

        embedded.stop()
        XCTAssertFalse(embedded.isRunning)
        for _ in 0..<3 {
            let error = try await expectPostgresError { try await pool.query("SELECT 1") }
            XCTAssertEqual(error.kind, .connection, "\(error)")
            XCTAssertTrue(error.isConnectionFailure)
        }

        try embedded.start()
        // The same pool works again at once: stale connections are replaced, not handed out.
        let row = try await pool.firstRow("SELECT 41 + 1 AS answer")
        XCTAssertEqual(try row.decode(Int.self, column: "answer"), 42)
        try await runTwoQueriesAtOnce(pool)
        XCTAssertLessThanOrEqual(pool.stats.open, 2)
    }

    func testRunningClusterIsReusedAndLeftRunning() throws {
        let directory = root.appendingPathComponent("pg")
        let first = EmbeddedPostgres(dataDirectory: directory)
        defer { first.stop() }
        try first.start()

        let second = EmbeddedPostgres(dataDirectory: directory)
        let configuration = try second.start()
        XCTAssertFalse(second.didStartServer)
        second.stop()  // not ours: must stay up
        XCTAssertTrue(first.isRunning)

        let connection = try PostgresConnection.connectBlocking(configuration: configuration)
        defer { connection.closeBlocking() }
        let rows = try connection.queryBlocking("SELECT current_setting('listen_addresses') AS listen")
        XCTAssertEqual(try rows.first?.decode(String.self, column: "listen"), "")  // Unix socket only
    }

    func testUnsuitableDataDirectoryIsExplained() {
        let long = EmbeddedPostgres(dataDirectory: URL(fileURLWithPath: "/tmp/" + String(repeating: "x", count: 100)))
        XCTAssertThrowsError(try long.start()) { error in
            XCTAssertTrue("\(error)".contains("too long for a Unix socket"), "\(error)")
        }
        let quoted = EmbeddedPostgres(dataDirectory: URL(fileURLWithPath: "/tmp/it's"))
        XCTAssertThrowsError(try quoted.start())
    }

    func testMissingBinariesSayInstallPostgresql() {
        setenv("PG_BINDIR", "/nonexistent-heard-bin", 1)
        defer { unsetenv("PG_BINDIR") }
        XCTAssertThrowsError(try EmbeddedPostgres.binaryDirectory()) { error in
            XCTAssertTrue("\(error)".contains("no initdb"), "\(error)")
        }
        unsetenv("PG_BINDIR")
        XCTAssertNoThrow(try EmbeddedPostgres.binaryDirectory())
    }

    private func runTwoQueriesAtOnce(_ pool: PostgresPool) async throws {
        async let first = pool.query("SELECT pg_sleep(0.05)")
        async let second = pool.query("SELECT pg_sleep(0.05)")
        _ = try await (first, second)
    }
}

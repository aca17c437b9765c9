@testable import EmbeddedPostgres
import Foundation
import Synchronization
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

    /// A backend told to quit at once (SIGQUIT: `pg_ctl stop -m immediate`, or PostgreSQL
    /// resetting after another backend crashed) sends a warning and exits, so its last words
    /// and the end of the stream often arrive together, and Dispatch reports such a socket's
    /// end once only. The statement in flight on it must fail with a connection error then,
    /// not wait for an answer that never comes.
    func testAStatementInFlightFailsWhenItsBackendQuitsWithAWarning() async throws {
        let embedded = EmbeddedPostgres(dataDirectory: root.appendingPathComponent("pg"))
        defer { embedded.stop() }
        let configuration = try embedded.start()
        let lane = DispatchQueue(label: "test.lane")
        let pool = PostgresPool(configuration: configuration, size: 1, acquireTimeout: .seconds(5), lanes: [lane])
        defer { pool.shutdown() }
        let executor = LaneExecutor(lane)
        let pid = try await Task(executorPreference: executor) {
            try await pool.firstRow("SELECT pg_backend_pid() AS pid").decode(Int.self, column: "pid")
        }.value
        let outcome = Mutex<String?>(nil)
        Task(executorPreference: executor) {
            do {
                _ = try await pool.query("SELECT pg_sleep(30)")
                outcome.withLock { $0 = "answered" }
            } catch let error as PostgresError {
                outcome.withLock { $0 = error.kind == .connection ? "connection error" : "\(error)" }
            }
        }
        try await Task.sleep(for: .milliseconds(300))  // the statement is running
        // The connection's lane is kept busy while the backend quits, so the warning and the
        // end of the stream are both waiting when the connection next reads, as they often are.
        lane.async { usleep(500_000) }
        XCTAssertEqual(kill(pid_t(pid), SIGQUIT), 0)
        let deadline = Date().addingTimeInterval(10)
        while outcome.withLock({ $0 }) == nil, Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        XCTAssertEqual(outcome.withLock { $0 }, "connection error", "the statement was left waiting")
        guard outcome.withLock({ $0 }) != nil else { return }  // (the pool's one connection is stuck)
        // PostgreSQL resets after a backend quits that way; the pool works again once it is back
        // (and the cluster is not told to stop while it resets, which pg_ctl would wait out).
        var back = false
        for _ in 0..<300 where !back {
            back = (try? await pool.firstRow("SELECT 1 AS one")) != nil
            if !back { try await Task.sleep(for: .milliseconds(100)) }
        }
        XCTAssertTrue(back, "the pool did not work again after PostgreSQL's reset")
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

import Foundation
import XCTest
@testable import Postgres

final class PoolTests: XCTestCase {
    func testStatementsArePreparedOncePerConnection() async throws {
        try await withTestPool(size: 1) { pool, _ in
            for value in 1...3 {
                let rows = try await pool.query("SELECT \(value) + 1 AS n")
                XCTAssertEqual(try rows.first?.decode(Int.self, column: "n"), value + 1)
            }
            let prepared = try await pool.query(
                "SELECT name, statement FROM pg_prepared_statements WHERE statement LIKE 'SELECT $1 + 1%'")
            XCTAssertEqual(prepared.count, 1)
            XCTAssertEqual(try prepared.first?.decode(String.self, column: "name"), "s1")
        }
    }

    func testPreparedStatementCacheIsBounded() async throws {
        try await withTestPool(size: 1) { pool, _ in
            let limit = PostgresConnection.preparedStatementLimit
            for number in 0..<(limit + 5) {
                _ = try await pool.query("SELECT \(unsafeRaw: String(number)) AS n")
            }
            let row = try await pool.firstRow("SELECT count(*) AS n FROM pg_prepared_statements")
            XCTAssertEqual(try row.decode(Int.self, column: "n"), limit)
        }
    }

    func testTransactionCommitsOnReturn() async throws {
        try await withTestPool { pool, _ in
            try await pool.execute("CREATE TABLE items (name text PRIMARY KEY)")
            let inserted = try await pool.transaction { transaction in
                try await transaction.execute("INSERT INTO items VALUES (\("a")), (\("b"))")
            }
            XCTAssertEqual(inserted, 2)
            let rows = try await pool.query("SELECT count(*) AS n FROM items")
            XCTAssertEqual(try rows.first?.decode(Int.self, column: "n"), 2)
        }
    }

    func testTransactionRollsBackOnThrow() async throws {
        struct Oops: Error {}
        try await withTestPool(size: 1) { pool, _ in
            try await pool.execute("CREATE TABLE items (name text PRIMARY KEY)")
            do {
                try await pool.transaction { transaction in
                    try await transaction.execute("INSERT INTO items VALUES (\("doomed"))")
                    throw Oops()
                }
                XCTFail("the transaction should have thrown")
            } catch is Oops {}
            let rows = try await pool.query("SELECT count(*) AS n FROM items")
            XCTAssertEqual(try rows.first?.decode(Int.self, column: "n"), 0)
            XCTAssertEqual(pool.stats.inUse, 0)
            XCTAssertEqual(pool.stats.idle, 1)  // the connection was rolled back and reused
        }
    }

    func testTransactionSettingsAreLocalToTheTransaction() async throws {
        try await withTestPool(size: 1) { pool, _ in
            let tenant = UUID().uuidString
            let seen = try await pool.transaction(settings: [("heard.tenant_id", tenant)]) { transaction in
                try await transaction.query("SELECT current_setting('heard.tenant_id') AS t")
                    .first?.decode(String.self, column: "t")
            }
            XCTAssertEqual(seen, tenant)
            let after = try await pool.query("SELECT current_setting('heard.tenant_id', true) AS t")
            XCTAssertEqual(try after.first?.decode(String?.self, column: "t") ?? "", "")
        }
    }

    func testUniqueViolationKeepsSQLStateAndConstraint() async throws {
        try await withTestPool { pool, _ in
            try await pool.execute("CREATE TABLE people (email text CONSTRAINT people_email_key UNIQUE)")
            try await pool.execute("INSERT INTO people VALUES (\("a@example.org"))")
            let error = try await expectPostgresError {
                try await pool.execute("INSERT INTO people VALUES (\("a@example.org"))")
            }
            XCTAssertTrue(error.isUniqueViolation)
            XCTAssertEqual(error.sqlState, "23505")
            XCTAssertEqual(error.constraint, "people_email_key")
            XCTAssertEqual(error.table, "people")
            XCTAssertEqual(error.kind, .query)
            XCTAssertFalse(error.isConnectionFailure)
            XCTAssertFalse(error.description.contains("a@example.org"))
            // The pool's connection is still good afterwards.
            _ = try await pool.firstRow("SELECT 1 AS one")
        }
    }

    func testSyntaxErrorIsAQueryError() async throws {
        try await withTestPool { pool, _ in
            let error = try await expectPostgresError { try await pool.query("SELEKT 1") }
            XCTAssertEqual(error.kind, .query)
            XCTAssertEqual(error.sqlState, "42601")
        }
    }

    func testExhaustedPoolTimesOutInsteadOfHanging() async throws {
        try await withTestPool(size: 1, acquireTimeout: .milliseconds(300)) { pool, _ in
            let started = Date()
            let error = try await pool.withConnection { _ in
                // The only connection is lent out: the next caller must give up, not hang.
                try await expectPostgresError { try await pool.query("SELECT 1") }
            }
            XCTAssertEqual(error.kind, .poolTimeout)
            XCTAssertEqual(error.isConnectionFailure, true)
            XCTAssertLessThan(Date().timeIntervalSince(started), 30)
            XCTAssertEqual(pool.stats.waiting, 0)
            _ = try await pool.firstRow("SELECT 1 AS one")  // usable again
        }
    }

    func testACallerOnALaneGetsTheConnectionOpenedForItsLane() async throws {
        let database = try TestDatabase.create()
        defer { database.drop() }
        let lanes = [DispatchQueue(label: "test.lane.0"), DispatchQueue(label: "test.lane.1")]
        let executors = lanes.map(LaneExecutor.init)
        let pool = PostgresPool(configuration: database.configuration, size: 2, lanes: lanes)
        defer { pool.shutdown() }
        func backend(onLane lane: Int) async throws -> Int {
            try await Task(executorPreference: executors[lane]) {
                let pid = try await pool.firstRow("SELECT pg_backend_pid() AS pid").decode(Int.self, column: "pid")
                dispatchPrecondition(condition: .onQueue(lanes[lane]))
                return pid
            }.value
        }
        let first = try await backend(onLane: 0)
        let second = try await backend(onLane: 1)  // lane 0's connection is idle, but lane 1 opens its own
        XCTAssertNotEqual(first, second)
        XCTAssertEqual(pool.stats.open, 2)
        // The last connection released was lane 1's; lane 0 still gets its own, every time.
        for lane in [0, 0, 1, 0, 1, 1] {
            let pid = try await backend(onLane: lane)
            XCTAssertEqual(pid, lane == 0 ? first : second, "lane \(lane)")
        }
        // A caller on no lane, with every slot taken, borrows an idle lane's connection at once.
        let started = Date()
        let borrowed = try await pool.firstRow("SELECT pg_backend_pid() AS pid").decode(Int.self, column: "pid")
        XCTAssertTrue([first, second].contains(borrowed))
        XCTAssertLessThan(Date().timeIntervalSince(started), 2, "it waited instead of borrowing")
        XCTAssertEqual(pool.stats, PoolStats(size: 2, open: 2, inUse: 0, idle: 2, waiting: 0))
    }

    func testAConnectionLostBeforeItsLaneNoticedIsReplacedWithoutTheCallerSeeingIt() async throws {
        let database = try TestDatabase.create()
        defer { database.drop() }
        let lane = DispatchQueue(label: "test.lane")
        let executor = LaneExecutor(lane)
        let pool = PostgresPool(configuration: database.configuration, size: 1, lanes: [lane])
        defer { pool.shutdown() }
        let admin = try PostgresConnection.connectBlocking(configuration: database.configuration)
        defer { admin.closeBlocking() }
        let (before, after) = try await Task(executorPreference: executor) {
            let before = try await pool.firstRow("SELECT pg_backend_pid() AS pid").decode(Int.self, column: "pid")
            // The backend ends while the lane is busy, so the connection's read source (which
            // runs on the lane) cannot see it before the next lease: the first statement's
            // check finds the loss, and a new connection is opened off the lane.
            _ = try admin.queryBlocking("SELECT pg_terminate_backend(\(before)::integer)")
            usleep(300_000)  // blocks the lane on purpose
            let after = try await pool.transaction { transaction in
                try await transaction.query("SELECT pg_backend_pid() AS pid").first?.decode(Int.self, column: "pid")
            }
            return (before, after)
        }.value
        XCTAssertNotNil(after)
        XCTAssertNotEqual(after, before)
        XCTAssertEqual(pool.stats, PoolStats(size: 1, open: 1, inUse: 0, idle: 1, waiting: 0))
        let again = try await Task(executorPreference: executor) {
            try await pool.firstRow("SELECT pg_backend_pid() AS pid").decode(Int.self, column: "pid")
        }.value
        XCTAssertEqual(again, after, "the replacement is kept and lent again")
    }

    func testEachWaiterGivesUpAtItsOwnDeadline() async throws {
        try await withTestPool(size: 1, acquireTimeout: .milliseconds(400)) { pool, _ in
            let waited: [(seconds: Double, kind: PostgresError.Kind?)] = try await pool.withConnection { _ in
                // Three callers join 150 ms apart while the only connection is lent out.
                try await withThrowingTaskGroup(of: (Int, Double, PostgresError.Kind?).self) { group in
                    for index in 0..<3 {
                        group.addTask {
                            try await Task.sleep(for: .milliseconds(150 * index))
                            let started = Date()
                            do {
                                _ = try await pool.query("SELECT 1")
                                return (index, Date().timeIntervalSince(started), nil)
                            } catch let error as PostgresError {
                                return (index, Date().timeIntervalSince(started), error.kind)
                            }
                        }
                    }
                    var results = Array(repeating: (seconds: 0.0, kind: PostgresError.Kind?.none), count: 3)
                    for try await (index, seconds, kind) in group { results[index] = (seconds, kind) }
                    return results
                }
            }
            for (index, result) in waited.enumerated() {
                XCTAssertEqual(result.kind, .poolTimeout, "waiter \(index)")
                XCTAssertGreaterThanOrEqual(result.seconds, 0.39, "waiter \(index) gave up before its own deadline")
                XCTAssertLessThan(result.seconds, 3, "waiter \(index) waited far past its deadline")
            }
            XCTAssertEqual(pool.stats.waiting, 0)
            // A caller who waits again later still gets a timer of its own.
            let error = try await pool.withConnection { _ in try await expectPostgresError { try await pool.query("SELECT 1") } }
            XCTAssertEqual(error.kind, .poolTimeout)
            _ = try await pool.firstRow("SELECT 1 AS one")
        }
    }

    func testTooManyWaitersFailFast() async throws {
        try await withTestPool(size: 1, acquireTimeout: .seconds(20), maxWaiters: 1) { pool, _ in
            let started = Date()
            var waiter: Task<[PostgresRow], any Error>?
            try await pool.withConnection { _ in
                waiter = Task { try await pool.query("SELECT 1 AS one") }  // waits: one waiter allowed
                while pool.stats.waiting < 1 { try await Task.sleep(for: .milliseconds(10)) }
                let error = try await expectPostgresError { try await pool.query("SELECT 2") }
                XCTAssertEqual(error.kind, .poolTimeout)
                XCTAssertLessThan(Date().timeIntervalSince(started), 10)  // failed fast, not after 20 s
            }
            // The waiter gets the connection once it is released.
            let waited = try await waiter?.value
            XCTAssertEqual(waited?.count, 1)
            XCTAssertEqual(pool.stats, PoolStats(size: 1, open: 1, inUse: 0, idle: 1, waiting: 0))
        }
    }

    func testConcurrentQueriesShareTheBoundedPool() async throws {
        try await withTestPool(size: 3) { pool, _ in
            let total = try await withThrowingTaskGroup(of: Int.self) { group in
                for value in 0..<40 {
                    group.addTask {
                        try await pool.query("SELECT \(value) AS v, pg_sleep(0.01)").first?.decode(Int.self, column: "v") ?? -1
                    }
                }
                return try await group.reduce(0, +)
            }
            XCTAssertEqual(total, (0..<40).reduce(0, +))
            let stats = pool.stats
            XCTAssertLessThanOrEqual(stats.open, 3)
            XCTAssertEqual(stats.inUse, 0)
        }
    }

    func testConnectionLeftInATransactionIsNotReused() async throws {
        try await withTestPool(size: 1) { pool, _ in
            try await pool.execute("CREATE TABLE items (name text)")
            try await pool.withConnection { connection in
                try await connection.simpleExecute("BEGIN")
                try await connection.execute("INSERT INTO items VALUES (\("uncommitted"))")
            }
            XCTAssertEqual(pool.stats.open, 0)  // discarded rather than lent out mid-transaction
            // Had the connection been reused, this would run inside the open transaction and see the row.
            let row = try await pool.firstRow("SELECT count(*) AS n FROM items")
            XCTAssertEqual(try row.decode(Int.self, column: "n"), 0)
        }
    }

    func testUnreachableServerIsAConnectionError() async throws {
        var configuration = try TestDatabase.serverConfiguration()
        configuration.host = "/nonexistent-heard-socket-dir"
        configuration.port = nil
        let pool = PostgresPool(configuration: configuration, size: 1)
        let error = try await expectPostgresError { try await pool.query("SELECT 1") }
        XCTAssertEqual(error.kind, .connection)
        XCTAssertEqual(pool.stats.open, 0)
    }
}

/// Runs a task's jobs on one serial queue, as an HTTP event loop runs its handlers.
final class LaneExecutor: TaskExecutor {
    let queue: DispatchQueue

    init(_ queue: DispatchQueue) {
        self.queue = queue
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

import Foundation
import XCTest
@testable import Postgres

/// Units (`PostgresPool.pipeline`, `query`, `execute`, one-round-trip transactions) share
/// connections: several in flight on one, each answered on its own.
final class SharingTests: XCTestCase {
    /// Waits (up to 5 s) until `pool` has `units` units in flight.
    private func waitForUnits(_ units: Int, on pool: PostgresPool) async throws {
        for _ in 0..<500 where pool.stats.units < units { try await Task.sleep(for: .milliseconds(10)) }
        XCTAssertEqual(pool.stats.units, units)
    }

    func testManyCallersShareOneConnectionAndEachGetsItsOwnAnswer() async throws {
        try await withTestPool(size: 1, maxWaiters: 0, pipelineDepth: 64) { pool, _ in
            let pid = try await pool.firstRow("SELECT pg_backend_pid() AS pid").decode(Int.self, column: "pid")
            // 40 callers at once on a pool of one connection that lets nobody wait: each unit
            // goes out while the others are in flight.
            let answers = try await withThrowingTaskGroup(of: (Int, Int, Int).self) { group in
                for n in 0..<40 {
                    group.addTask {
                        let row = try await pool.firstRow("SELECT \(n)::int AS n, pg_backend_pid() AS pid, pg_sleep(0.01)::text AS slept")
                        return (n, try row.decode(Int.self, column: "n"), try row.decode(Int.self, column: "pid"))
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            XCTAssertEqual(answers.count, 40)
            for (asked, answered, backend) in answers {
                XCTAssertEqual(answered, asked, "each caller gets its own statement's answer")
                XCTAssertEqual(backend, pid)
            }
            XCTAssertEqual(pool.stats, PoolStats(size: 1, open: 1, inUse: 0, idle: 1, waiting: 0, units: 0))
        }
    }

    func testAConnectionTakesNoMoreUnitsThanItsDepthAndInteractiveWorkWaitsForItsOwn() async throws {
        try await withTestPool(size: 1, maxWaiters: 0, pipelineDepth: 3) { pool, _ in
            try await pool.execute("SELECT 1")  // one connection, idle
            let running = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<3 { group.addTask { try await pool.execute("SELECT pg_sleep(0.5)") } }
                    try await group.waitForAll()
                }
            }
            try await waitForUnits(3, on: pool)
            XCTAssertEqual(pool.stats.open, 1)
            // A fourth unit finds the connection full, and nobody may wait: refused at once.
            let full = try await expectPostgresError { try await pool.execute("SELECT 1") }
            XCTAssertEqual(full.kind, .poolTimeout)
            // An interactive transaction needs a connection to itself: refused too.
            let interactive = try await expectPostgresError {
                try await pool.transaction { try await $0.query("SELECT 1") }
            }
            XCTAssertEqual(interactive.kind, .poolTimeout)
            try await running.value
            XCTAssertEqual(pool.stats, PoolStats(size: 1, open: 1, inUse: 0, idle: 1, waiting: 0, units: 0))
            // Once the units are answered, the connection is whole again for a transaction.
            let inTransaction = try await pool.transaction { try await $0.query("SELECT 1 AS one").first?.decode(Int.self, column: "one") }
            XCTAssertEqual(inTransaction, 1)
        }
    }

    func testOneUnitsFailureLeavesTheUnitsSentAfterItAlone() async throws {
        try await withTestPool(size: 1, maxWaiters: 0) { pool, _ in
            try await pool.execute("CREATE TABLE items (n int PRIMARY KEY)")
            // The first unit writes, then fails: it is rolled back at its sync, and the unit
            // sent behind it (before its failure was known) runs and commits as if alone.
            let failing = Task {
                try await expectPostgresError {
                    try await pool.pipeline(["SELECT pg_sleep(0.3)", "INSERT INTO items VALUES (1)", "SELECT 1 / 0"])
                }
            }
            try await waitForUnits(1, on: pool)
            let inserted = try await pool.execute("INSERT INTO items VALUES (2)")
            let error = try await failing.value
            XCTAssertEqual(error.sqlState, "22012")  // division_by_zero
            XCTAssertEqual(inserted, 1)
            let rows = try await pool.query("SELECT n FROM items ORDER BY n")
            XCTAssertEqual(try rows.map { try $0.decode(Int.self, column: "n") }, [2], "the failed unit left nothing")
            XCTAssertEqual(pool.stats, PoolStats(size: 1, open: 1, inUse: 0, idle: 1, waiting: 0, units: 0))
        }
    }

    func testUnitsInFlightShareAStatementPreparedOnce() async throws {
        try await withTestPool(size: 1, maxWaiters: 0) { pool, _ in
            try await pool.execute("SELECT 1")
            // Both units are sent before either is answered; the second must use the first's
            // preparation, not prepare the same name again (PostgreSQL would refuse that).
            let sql = "SELECT $1::int + 1 AS n, pg_sleep(0.2)::text AS slept"
            async let first = pool.firstRow(PostgresQuery(unsafeSQL: sql, binds: [PostgresBind(1)]))
            async let second = pool.firstRow(PostgresQuery(unsafeSQL: sql, binds: [PostgresBind(2)]))
            let (one, two) = try await (first, second)
            XCTAssertEqual(try one.decode(Int.self, column: "n"), 2)
            XCTAssertEqual(try two.decode(Int.self, column: "n"), 3)
            let prepared = try await pool.firstRow("SELECT count(*) AS n FROM pg_prepared_statements WHERE statement = \(sql)")
            XCTAssertEqual(try prepared.decode(Int.self, column: "n"), 1)
            // A statement that cannot be prepared fails its own unit only.
            async let broken = expectPostgresError { try await pool.query("SELEC pg_sleep(0.1)") }
            async let fine = pool.firstRow(PostgresQuery(unsafeSQL: sql, binds: [PostgresBind(3)]))
            let (error, row) = try await (broken, fine)
            XCTAssertEqual(error.sqlState, "42601")  // syntax_error
            XCTAssertEqual(try row.decode(Int.self, column: "n"), 4)
        }
    }

    func testAPreparationThatFailsNeverSpoilsAnotherStatementsName() async throws {
        try await withTestPool(size: 1, maxWaiters: 0) { pool, _ in
            try await pool.execute("SELECT 1")
            let sleeper = Task { try await pool.execute("SELECT pg_sleep(0.3)") }
            try await waitForUnits(1, on: pool)
            // Two new statements in one unit, the first refused as it is prepared; a second unit,
            // sent before the first is answered, counts on the first's preparation of the same
            // SQL. That preparation still happens (each goes in a segment of its own), so the
            // second unit, and every later use, finds it.
            let refused = Task { try await expectPostgresError { try await pool.pipeline(["SELEC 1", "SELECT 2 AS n"]) } }
            try await waitForUnits(2, on: pool)
            let two = try await pool.firstRow("SELECT 2 AS n").decode(Int.self, column: "n")
            XCTAssertEqual(two, 2)
            let error = try await refused.value
            XCTAssertEqual(error.sqlState, "42601")
            _ = try await sleeper.value
            let again = try await pool.firstRow("SELECT 2 AS n").decode(Int.self, column: "n")
            XCTAssertEqual(again, 2)
        }
    }

    func testUnitsWaitingForAConnectionAllGoOutOnItWhenItIsFree() async throws {
        try await withTestPool(size: 1) { pool, _ in
            let (heldFor, released) = AsyncStream.makeStream(of: Void.self)
            let holder = Task {
                try await pool.withConnection { _ in
                    for await _ in heldFor { break }  // holds the only connection until told
                }
            }
            while pool.stats.inUse < 1 { try await Task.sleep(for: .milliseconds(10)) }
            let units = Task {
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for n in 0..<5 {
                        group.addTask { try await pool.firstRow("SELECT \(n)::int AS n, pg_sleep(0.2)::text AS slept").decode(Int.self, column: "n") }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
            }
            while pool.stats.waiting < 5 { try await Task.sleep(for: .milliseconds(10)) }
            released.yield()
            try await holder.value
            // Freed, the connection takes all five at once, not one waiter at a time.
            try await waitForUnits(5, on: pool)
            XCTAssertEqual(pool.stats.waiting, 0)
            let answered = try await units.value
            XCTAssertEqual(answered.sorted(), [0, 1, 2, 3, 4])
            XCTAssertEqual(pool.stats, PoolStats(size: 1, open: 1, inUse: 0, idle: 1, waiting: 0, units: 0))
        }
    }

    func testUnitsQueuedBehindACallerThatWaitedForItsOwnConnectionJoinWhereThereIsRoom() async throws {
        try await withTestPool(size: 2) { pool, _ in
            let (signal, release) = AsyncStream.makeStream(of: Void.self)
            let holder = Task { try await pool.withConnection { _ in for await _ in signal { break } } }
            while pool.stats.inUse < 1 { try await Task.sleep(for: .milliseconds(10)) }
            let long = Task { try await pool.execute("SELECT pg_sleep(1.5)") }  // the other connection, with room
            try await waitForUnits(1, on: pool)
            let interactive = Task {
                try await pool.transaction { transaction in
                    try await transaction.execute("SELECT pg_sleep(0.8)")  // keeps the freed connection a while
                }
            }
            while pool.stats.waiting < 1 { try await Task.sleep(for: .milliseconds(10)) }
            // Units do not join while a caller waits for a connection of its own: this one queues.
            let unit = Task { try await pool.firstRow("SELECT 'u' AS u").decode(String.self, column: "u") }
            while pool.stats.waiting < 2 { try await Task.sleep(for: .milliseconds(10)) }
            release.yield()
            try await holder.value
            // The interactive caller gets the freed connection; the unit behind it joins the
            // connection with room at once, rather than wait for either to finish.
            for _ in 0..<30 where pool.stats.waiting > 0 { try await Task.sleep(for: .milliseconds(10)) }
            XCTAssertEqual(pool.stats.waiting, 0)
            XCTAssertEqual(pool.stats.units, 2)
            _ = try await interactive.value
            let answered = try await unit.value
            XCTAssertEqual(answered, "u")
            _ = try await long.value
        }
    }

    func testAStatementWithTooManyParametersFailsAloneNotTheConnection() async throws {
        try await withTestPool(size: 1, maxWaiters: 0) { pool, _ in
            try await pool.execute("SELECT 1")
            let sleeper = Task { try await pool.firstRow("SELECT pg_sleep(0.3)::text AS slept, 7 AS n").decode(Int.self, column: "n") }
            try await waitForUnits(1, on: pool)
            let binds = (0..<70_000).map { PostgresBind($0) }
            let placeholders = (1...70_000).map { "$\($0)::int" }.joined(separator: ", ")
            let error = try await expectPostgresError { try await pool.query(PostgresQuery(unsafeSQL: "SELECT ARRAY[\(placeholders)]", binds: binds)) }
            XCTAssertEqual(error.kind, .query)
            XCTAssertEqual(error.sqlState, "54000")
            let slept = try await sleeper.value
            XCTAssertEqual(slept, 7, "the unit in flight on the same connection is unharmed")
            XCTAssertEqual(pool.stats, PoolStats(size: 1, open: 1, inUse: 0, idle: 1, waiting: 0, units: 0))
        }
    }

    func testEveryUnitInFlightLearnsOfALostConnectionAndThePoolRecovers() async throws {
        try await withTestPool(size: 1, maxWaiters: 0) { pool, database in
            let pid = try await pool.firstRow("SELECT pg_backend_pid() AS pid").decode(Int.self, column: "pid")
            let units = Task {
                await withTaskGroup(of: PostgresError.Kind?.self) { group in
                    for _ in 0..<3 {
                        group.addTask { (try? await expectPostgresError { try await pool.execute("SELECT pg_sleep(2)") })?.kind }
                    }
                    return await group.reduce(into: []) { $0.append($1) }
                }
            }
            try await waitForUnits(3, on: pool)
            let admin = try PostgresConnection.connectBlocking(configuration: database.configuration)
            defer { admin.closeBlocking() }
            _ = try admin.queryBlocking("SELECT pg_terminate_backend(\(pid)::integer)")
            let kinds = await units.value
            XCTAssertEqual(kinds, [.connection, .connection, .connection], "each caller learns of the loss, none hangs")
            XCTAssertEqual(pool.stats.units, 0)
            let newPID = try await pool.firstRow("SELECT pg_backend_pid() AS pid").decode(Int.self, column: "pid")
            XCTAssertNotEqual(newPID, pid, "a new connection replaced the lost one")
            XCTAssertEqual(pool.stats, PoolStats(size: 1, open: 1, inUse: 0, idle: 1, waiting: 0, units: 0))
        }
    }

    func testATransactionSentInOneRoundTripIsAUnitAndCommitsAllOrNothing() async throws {
        try await withTestPool(size: 1, maxWaiters: 0) { pool, _ in
            try await pool.execute("CREATE TABLE items (n int PRIMARY KEY, tenant text)")
            let busy = Task { try await pool.execute("SELECT pg_sleep(0.3)") }
            try await waitForUnits(1, on: pool)
            // While a unit is in flight on the only connection, a transaction whose first
            // statement is its last joins it (an interactive one would be refused: see above),
            // with its settings and queued statements, and commits.
            let stored = try await pool.transaction(settings: [("heard.tenant_id", "t1")]) { transaction in
                transaction.enqueue("INSERT INTO items VALUES (1, current_setting('heard.tenant_id'))")
                return try await transaction.queryAndCommit(
                    "INSERT INTO items VALUES (2, current_setting('heard.tenant_id')) RETURNING n").map { try $0.decode(Int.self, column: "n") }
            }
            XCTAssertEqual(stored, [2])
            // When its last statement fails, its queued one is not kept either.
            let failed = try await expectPostgresError {
                try await pool.transaction(settings: [("heard.tenant_id", "t2")]) { transaction in
                    transaction.enqueue("INSERT INTO items VALUES (3, current_setting('heard.tenant_id'))")
                    return try await transaction.queryAndCommit("INSERT INTO items VALUES (1, 'again') RETURNING n")
                }
            }
            XCTAssertTrue(failed.isUniqueViolation)
            try await busy.value
            let rows = try await pool.query("SELECT n, tenant FROM items ORDER BY n")
            XCTAssertEqual(try rows.map { "\(try $0.decode(Int.self, column: "n"))@\(try $0.decode(String.self, column: "tenant"))" }, ["1@t1", "2@t1"])
            // The settings were the transaction's own: nothing is left on the shared connection.
            let after = try await pool.firstRow("SELECT coalesce(current_setting('heard.tenant_id', true), '') AS t")
            XCTAssertEqual(try after.decode(String.self, column: "t"), "")
        }
    }
}

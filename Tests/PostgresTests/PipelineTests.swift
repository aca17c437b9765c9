import Foundation
import XCTest
@testable import Postgres

/// Several statements in one round trip, transactions that send their start and their last
/// writes with other statements, and a lent connection that finds itself lost.
final class PipelineTests: XCTestCase {
    func testPipelineAnswersEachStatementInOrderAndPreparesEachOnce() async throws {
        try await withTestPool(size: 1) { pool, _ in
            try await pool.execute("CREATE TABLE items (n int PRIMARY KEY)")
            for round in 0..<2 {
                let results = try await pool.withConnection { connection in
                    try await connection.pipeline([
                        "INSERT INTO items VALUES (\(round * 10 + 1)), (\(round * 10 + 2))",
                        "SELECT n FROM items WHERE n > \(round * 10) ORDER BY n",
                        "SELECT \("same") AS a, \(2) AS b",
                        "SELECT \("same") AS a, \(2) AS b",  // the same new statement twice in one pipeline
                    ])
                }
                XCTAssertEqual(results.count, 4)
                XCTAssertEqual(results[0].rowsAffected, 2)
                XCTAssertEqual(try results[1].rows.map { try $0.decode(Int.self, column: "n") }, [round * 10 + 1, round * 10 + 2])
                XCTAssertEqual(try results[3].rows.first?.decode(String.self, column: "a"), "same")
            }
            let prepared = try await pool.firstRow("SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE 'SELECT $1 AS a%'")
            XCTAssertEqual(try prepared.decode(Int.self, column: "n"), 1)
        }
    }

    func testAStatementLargerThanTheSocketBufferIsSentWhole() async throws {
        // 8 MB does not fit the socket's buffer: libpq sends it as the socket drains.
        try await withTestPool(size: 1) { pool, _ in
            let text = String(repeating: "abcdefgh", count: 1_048_576)
            let rows = try await pool.query("SELECT length(\(text)) AS n, md5(\(text)) = md5(repeat('abcdefgh', 1048576)) AS same")
            XCTAssertEqual(try rows.first?.decode(Int.self, column: "n"), text.utf8.count)
            XCTAssertEqual(try rows.first?.decode(Bool.self, column: "same"), true)
            let after = try await pool.query("SELECT 1 AS one")
            XCTAssertEqual(try after.first?.decode(Int.self, column: "one"), 1, "the connection is usable after")
        }
    }

    func testAFailingStatementStopsThePipelineAndKeepsItsSQLState() async throws {
        try await withTestPool(size: 1) { pool, _ in
            try await pool.execute("CREATE TABLE items (n int PRIMARY KEY)")
            try await pool.execute("INSERT INTO items VALUES (1)")
            let error = try await expectPostgresError {
                try await pool.withConnection { connection in
                    try await connection.pipeline([
                        "INSERT INTO items VALUES (\(2))",
                        "INSERT INTO items VALUES (\(1))",  // a unique violation
                        "INSERT INTO items VALUES (\(3))",  // never runs
                    ])
                }
            }
            XCTAssertTrue(error.isUniqueViolation)
            // Between syncs a pipeline is one implicit transaction: the failure undid the first insert.
            let rows = try await pool.query("SELECT n FROM items ORDER BY n")
            XCTAssertEqual(try rows.map { try $0.decode(Int.self, column: "n") }, [1])
            XCTAssertEqual(pool.stats.idle, 1, "the connection is usable again after a failed pipeline")
        }
    }

    func testAStatementThatCannotBePreparedFailsThePipelineAndIsNotCached() async throws {
        try await withTestPool(size: 1) { pool, _ in
            let error = try await expectPostgresError {
                try await pool.withConnection { connection in
                    try await connection.pipeline(["SELECT 1 AS one", "SELEC 2"])
                }
            }
            XCTAssertEqual(error.sqlState, "42601")
            let rows = try await pool.query("SELECT 3 AS three")
            XCTAssertEqual(try rows.first?.decode(Int.self, column: "three"), 3)
            let prepared = try await pool.firstRow("SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE 'SELEC %'")
            XCTAssertEqual(try prepared.decode(Int.self, column: "n"), 0)
        }
    }

    func testEnqueuedStatementsCommitWithTheTransaction() async throws {
        try await withTestPool(size: 1) { pool, _ in
            try await pool.execute("CREATE TABLE items (n int PRIMARY KEY)")
            let seen = try await pool.transaction(settings: [("heard.tenant_id", "t1")]) { transaction in
                transaction.enqueue("INSERT INTO items VALUES (\(1))")
                // The queued insert travels ahead of this query, in the same transaction.
                let count = try await transaction.query("SELECT count(*) AS n, current_setting('heard.tenant_id') AS t FROM items").first
                transaction.enqueue("INSERT INTO items VALUES (\(2))")  // travels with COMMIT
                return (try count?.decode(Int.self, column: "n"), try count?.decode(String.self, column: "t"))
            }
            XCTAssertEqual(seen.0, 1)
            XCTAssertEqual(seen.1, "t1")
            let rows = try await pool.query("SELECT n FROM items ORDER BY n")
            XCTAssertEqual(try rows.map { try $0.decode(Int.self, column: "n") }, [1, 2])
        }
    }

    func testAFailingEnqueuedStatementRollsBackTheWholeTransaction() async throws {
        try await withTestPool(size: 1) { pool, _ in
            try await pool.execute("CREATE TABLE items (n int PRIMARY KEY)")
            try await pool.execute("INSERT INTO items VALUES (5)")
            let error = try await expectPostgresError {
                try await pool.transaction { transaction in
                    try await transaction.execute("INSERT INTO items VALUES (\(6))")
                    transaction.enqueue("INSERT INTO items VALUES (\(5))")  // fails at commit
                }
            }
            XCTAssertTrue(error.isUniqueViolation)
            let rows = try await pool.query("SELECT n FROM items ORDER BY n")
            XCTAssertEqual(try rows.map { try $0.decode(Int.self, column: "n") }, [5], "the earlier insert was rolled back")
            XCTAssertEqual(pool.stats.idle, 1, "the connection was rolled back and kept")
        }
    }

    func testQueryAndCommitEndsTheTransactionInTheSameRoundTrip() async throws {
        try await withTestPool(size: 1) { pool, _ in
            try await pool.execute("CREATE TABLE items (n int PRIMARY KEY)")
            let returned = try await pool.transaction(settings: [("heard.tenant_id", "t1")]) { transaction in
                transaction.enqueue("INSERT INTO items VALUES (\(1))")
                let rows = try await transaction.queryAndCommit("INSERT INTO items VALUES (\(2)) RETURNING n, current_setting('heard.tenant_id') AS t")
                // Anything after the commit is refused, not run outside the transaction.
                let late = try await expectPostgresError { try await transaction.query("SELECT 1") }
                XCTAssertTrue(late.message.contains("already committed"), late.message)
                return try rows.map { "\(try $0.decode(Int.self, column: "n"))@\(try $0.decode(String.self, column: "t"))" }
            }
            XCTAssertEqual(returned, ["2@t1"])
            let rows = try await pool.query("SELECT n FROM items ORDER BY n")
            XCTAssertEqual(try rows.map { try $0.decode(Int.self, column: "n") }, [1, 2])
            let failed = try await expectPostgresError {
                try await pool.transaction { transaction in
                    try await transaction.execute("INSERT INTO items VALUES (\(3))")
                    return try await transaction.queryAndCommit("INSERT INTO items VALUES (\(1)) RETURNING n")  // a unique violation
                }
            }
            XCTAssertTrue(failed.isUniqueViolation)
            let after = try await pool.query("SELECT count(*) AS n FROM items")
            XCTAssertEqual(try after.first?.decode(Int.self, column: "n"), 2, "the failed transaction left nothing")
            XCTAssertEqual(pool.stats.idle, 1, "and its connection was rolled back and kept")
        }
    }

    func testATransactionThatSendsNothingNeverBegins() async throws {
        struct Refused: Error {}
        try await withTestPool(size: 1) { pool, _ in
            // A setting PostgreSQL refuses shows whether BEGIN and the settings were ever sent.
            let unsendable = [(name: "not a setting name!", value: "x")]
            let answer = try await pool.transaction(settings: unsendable) { _ in 42 }
            XCTAssertEqual(answer, 42, "nothing was sent, so nothing failed")
            do {
                try await pool.transaction(settings: unsendable) { transaction in
                    transaction.enqueue("SELECT 1")
                    throw Refused()  // thrown before anything was sent: the queued statement is dropped
                }
                XCTFail("the transaction should have thrown")
            } catch is Refused {}
            // With a statement, the opening travels with it, and PostgreSQL refuses the setting.
            let error = try await expectPostgresError {
                try await pool.transaction(settings: unsendable) { transaction in try await transaction.query("SELECT 1") }
            }
            XCTAssertEqual(error.sqlState, "42704")  // undefined_object: no such setting
            XCTAssertEqual(pool.stats.idle, 1, "the failed transaction was rolled back and its connection kept")
        }
    }

    func testATransactionsStatementsGoOneAfterAnotherAndNothingRunsOnceItIsOver() async throws {
        try await withTestPool(size: 2) { pool, _ in
            try await pool.execute("CREATE TABLE items (n int PRIMARY KEY)")
            // A statement sent while the first is unanswered is refused: it would not follow BEGIN.
            try await pool.transaction { transaction in
                async let first = transaction.query("SELECT pg_sleep(1)")
                try await Task.sleep(for: .milliseconds(100))
                let early = try await expectPostgresError { try await transaction.query("SELECT 1") }
                XCTAssertTrue(early.message.contains("one after another"), early.message)
                _ = try await first
                try await transaction.execute("INSERT INTO items VALUES (\(1))")  // answered: the next may go
            }
            // A statement queued after the commit cannot run, and says so.
            let late = try await expectPostgresError {
                try await pool.transaction { transaction in
                    _ = try await transaction.queryAndCommit("INSERT INTO items VALUES (\(2)) RETURNING n")
                    transaction.enqueue("INSERT INTO items VALUES (\(3))")
                }
            }
            XCTAssertTrue(late.message.contains("queued after the transaction committed"), late.message)
            // A transaction kept past its body sends nothing.
            let kept = try await pool.transaction { $0 }
            let after = try await expectPostgresError { try await kept.execute("INSERT INTO items VALUES (\(4))") }
            XCTAssertTrue(after.message.contains("after its body returned"), after.message)
            let rows = try await pool.query("SELECT n FROM items ORDER BY n")
            XCTAssertEqual(try rows.map { try $0.decode(Int.self, column: "n") }, [1, 2])
            XCTAssertEqual(pool.stats.inUse, 0)
        }
    }

    func testALentConnectionLostWhileIdleIsReplacedBeforeItsFirstStatement() async throws {
        try await withTestPool(size: 1) { pool, database in
            let pid = try await pool.firstRow("SELECT pg_backend_pid() AS pid").decode(Int.self, column: "pid")
            // Another session ends the pooled connection's backend while it sits idle (as a restart would).
            let admin = try PostgresConnection.connectBlocking(configuration: database.configuration)
            defer { admin.closeBlocking() }
            _ = try admin.queryBlocking("SELECT pg_terminate_backend(\(pid)::integer)")
            try await Task.sleep(for: .milliseconds(200))
            let newPID = try await pool.transaction { transaction in
                try await transaction.query("SELECT pg_backend_pid() AS pid").first?.decode(Int.self, column: "pid")
            }
            XCTAssertNotNil(newPID)
            XCTAssertNotEqual(newPID, pid, "the statement ran on a new connection, and the caller never saw the old one's loss")
            XCTAssertEqual(pool.stats.open, 1)
        }
    }
}

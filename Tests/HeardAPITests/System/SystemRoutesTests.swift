import Foundation
import HTTPServer
import HeardAPI
import HeardTesting
import Postgres
import XCTest

final class SystemRoutesTests: XCTestCase {
    func testHealthReadinessAndMetricsOnAMigratedDatabase() async throws {
        let migrator = try Migrator(directory: AppHarness.migrationsDirectory)
        let database = try await ScratchDatabase.createMigrated(migrations: migrator)
        let app = try AppHarness.start(database: database.runtime, migrator: migrator)

        let health = try roundTrip(app.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(health.status, 200)
        XCTAssertEqual(health.header("Content-Type"), "application/json")
        XCTAssertEqual(health.json["status"] as? String, "ok")

        let ready = try roundTrip(app.port, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(ready.status, 200, ready.text)
        XCTAssertEqual(ready.json["status"] as? String, "ready")
        XCTAssertEqual(ready.json["pending_migrations"] as? [String], [])

        let metrics = try roundTrip(app.port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(metrics.status, 200)
        XCTAssertTrue(metrics.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") ?? false)
        XCTAssertTrue(metrics.text.contains("heard_db_pool_size 2"), metrics.text)
        XCTAssertTrue(metrics.text.contains("heard_http_requests_total{method=\"GET\",route=\"/readyz\",status_class=\"2xx\"} 1"), metrics.text)

        await app.stop()
        await database.drop()
    }

    func testReadinessNamesPendingMigrations() async throws {
        let database = try await ScratchDatabase.createMigrated(migrations: try Migrator(directory: AppHarness.migrationsDirectory))
        let directory = try AppHarness.migrations(adding: ["9999_not_yet.sql": "CREATE TABLE not_yet (id int);"])
        let app = try AppHarness.start(database: database.runtime, migrator: try Migrator(directory: directory))

        let response = try roundTrip(app.port, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(response.status, 503)
        XCTAssertEqual(response.header("Content-Type"), "application/problem+json")
        XCTAssertEqual(response.header("Retry-After"), "2")
        XCTAssertTrue((response.json["detail"] as? String)?.contains("9999_not_yet.sql") ?? false, response.text)

        await app.stop()
        await database.drop()
        try? FileManager.default.removeItem(at: directory)
    }

    func testReadinessIs503WhenTheDatabaseCannotBeReached() async throws {
        // A socket directory where no server listens.
        let nowhere = try PostgresConfiguration(url: "postgresql:///heard?host=/tmp/heard-no-server-here&user=postgres")
        let app = try AppHarness.start(database: nowhere, migrator: try Migrator(directory: AppHarness.migrationsDirectory))
        let response = try roundTrip(app.port, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(response.status, 503)
        XCTAssertEqual(response.json["detail"] as? String, "The database is not reachable.")
        XCTAssertFalse(response.text.contains("/tmp/heard-no-server-here"), "no connection details in answers")
        // The process itself is fine.
        XCTAssertEqual(try roundTrip(app.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").status, 200)
        await app.stop()
    }
}

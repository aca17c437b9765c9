import Foundation
@testable import HeardAPI
import HeardTesting
import Postgres
import XCTest

/// A read by id and its audit row are one statement, sent as one unit: one round trip to
/// PostgreSQL once the key is known, and no answer unless the audit row is stored.
final class ReadInOneRoundTripTests: CouncilTestCase {
    private var key: String!

    override func setUp() async throws {
        try await super.setUp()
        key = try await harness.key(council, scopes: [.feedbackWrite, .feedbackRead, .involvementWrite, .involvementRead])
    }

    /// Round trips `harness` made to PostgreSQL for `GET path`, the key known already.
    private func roundTrips(_ path: String, audited action: String = "read") async throws -> Int {
        try await harness.app.access.keys.waitUntilListening()
        XCTAssertEqual(try harness.send("GET", path, key: key).status, 200, "the key is known from here on")
        let before = harness.app.pool.roundTripCount
        let read = try harness.send("GET", path, key: key, headers: ["X-Request-Id": "one-read"])
        XCTAssertEqual(read.status, 200, read.text)
        let audited = try await harness.auditRows(requestID: "one-read")
        XCTAssertEqual(audited.map(\.action), [action], "the read is audited")
        return harness.app.pool.roundTripCount - before
    }

    func testAFeedbackRecordIsReadAndAuditedInOneRoundTrip() async throws {
        let created = try harness.send("POST", "/v1/feedback", key: key, body: FeedbackSamples.body())
        let id = try XCTUnwrap(created.json["id"] as? String, created.text)
        let trips = try await roundTrips("/v1/feedback/\(id)")
        XCTAssertEqual(trips, 1)
    }

    func testARecordOfTheKitIsReadAndAuditedInOneRoundTrip() async throws {
        let id = try ParticipationSamples.makeParticipant(harness, key: key)
        let trips = try await roundTrips("/v1/participants/\(id)")
        XCTAssertEqual(trips, 1)
    }

    func testAPageOfAListIsReadAndAuditedInOneRoundTrip() async throws {
        for _ in 0..<3 { _ = try ParticipationSamples.makeParticipant(harness, key: key) }
        let trips = try await roundTrips("/v1/participants?limit=2", audited: "list")
        XCTAssertEqual(trips, 1)
        let superuser = PostgresPool(configuration: harness.database.configuration, size: 1)
        defer { superuser.shutdown() }
        let exported = try await superuser.query("SELECT rows_exported FROM audit_events WHERE request_id = 'one-read'")
        XCTAssertEqual(try exported.first?.decode(Int.self, column: "rows_exported"), 2, "the audit row counts the records answered")
    }

    /// The audit row travels in the read's own statement: when it cannot be stored, the
    /// record is not answered.
    func testARecordWhoseAuditRowFailsIsNotAnswered() async throws {
        let created = try harness.send("POST", "/v1/feedback", key: key, body: FeedbackSamples.body())
        let id = try XCTUnwrap(created.json["id"] as? String, created.text)
        let superuser = PostgresPool(configuration: harness.database.configuration, size: 1)
        defer { superuser.shutdown() }
        try await superuser.execute("""
            CREATE FUNCTION refuse_read_audits() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.action = 'read' THEN RAISE EXCEPTION 'audit trail unavailable'; END IF;
                RETURN NEW;
            END $$
            """)
        try await superuser.execute("CREATE TRIGGER refuse_read_audits BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_read_audits()")
        let read = try harness.send("GET", "/v1/feedback/\(id)", key: key)
        XCTAssertEqual(read.status, 500)
        XCTAssertFalse(read.text.contains(id), "nothing of the record is answered")
    }
}

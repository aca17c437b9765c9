import Foundation
import HeardAPI
import HeardTesting
import Postgres
import XCTest

final class ClosureDayTests: XCTestCase {
    func testClosureDaysAreManagedAndMoveSafeguardingDeadlines() async throws {
        let harness = try await AccessHarness.start()
        try harness.serveOverSockets()  // the area's end-to-end test
        let council = try await harness.tenant("redcar")
        let admin = try await harness.key(council, scopes: [.admin])
        let worker = try await harness.key(council, scopes: [.feedbackWrite, .feedbackRead])

        // An alert raised on Monday 2026-11-16 at 10:00 UTC is due at the end of Tuesday.
        let created = try harness.send("POST", "/v1/feedback", key: worker,
                                       body: FeedbackSamples.body(externalID: "sg-1", overrides: ["safeguarding_concern": "true"]))
        let alertID = try XCTUnwrap((created.json["safeguarding_alert"] as? [String: Any])?["id"] as? String)
        let superuser = PostgresPool(configuration: harness.database.configuration, size: 1)
        defer { superuser.shutdown() }
        try await superuser.execute("UPDATE safeguarding_alerts SET raised_at = '2026-11-16T10:00:00Z'")
        XCTAssertEqual(try harness.send("GET", "/v1/safeguarding-alerts/\(alertID)", key: worker).json["due_at"] as? String, "2026-11-18T00:00:00Z")

        // The council closes on the Tuesday: the deadline moves to the end of Wednesday.
        let added = try harness.send("POST", "/v1/admin/closure-days", key: admin, body: #"{"day":"2026-11-17","reason":"Staff training day"}"#)
        XCTAssertEqual(added.status, 201, added.text)
        XCTAssertEqual(added.header("Location"), "/v1/admin/closure-days/2026-11-17")
        XCTAssertEqual(try harness.send("GET", "/v1/safeguarding-alerts/\(alertID)", key: worker).json["due_at"] as? String, "2026-11-19T00:00:00Z")
        XCTAssertEqual(try harness.send("POST", "/v1/admin/closure-days", key: admin, body: #"{"day":"2026-11-17","reason":"again"}"#).status, 409)

        let listed = try harness.send("GET", "/v1/admin/closure-days", key: admin)
        XCTAssertEqual(listed.items.compactMap { $0["day"] as? String }, ["2026-11-17"])
        XCTAssertEqual(listed.items.first?["reason"] as? String, "Staff training day")

        // Other tenants and partner keys neither see nor change them.
        let elsewhere = try await harness.tenant("elsewhere")
        let otherAdmin = try await harness.key(elsewhere, scopes: [.admin])
        XCTAssertEqual(try harness.send("GET", "/v1/admin/closure-days", key: otherAdmin).items.count, 0)
        XCTAssertEqual(try harness.send("DELETE", "/v1/admin/closure-days/2026-11-17", key: otherAdmin).status, 404)
        let partner = try await harness.organisation("advocacy", in: council)
        let partnerAdmin = try await harness.key(council, scopes: [.admin], organisation: partner)
        XCTAssertEqual(try harness.send("POST", "/v1/admin/closure-days", key: partnerAdmin, body: #"{"day":"2026-12-29","reason":"x"}"#).status, 403)

        let bad = try harness.send("POST", "/v1/admin/closure-days", key: admin, body: #"{"day":"29/12/2026","reason":"","extra":1}"#)
        XCTAssertEqual(bad.status, 422)
        XCTAssertEqual(Set((bad.json["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String }), ["day", "reason", "extra"])

        XCTAssertEqual(try harness.send("DELETE", "/v1/admin/closure-days/2026-11-17", key: admin).status, 204)
        XCTAssertEqual(try harness.send("DELETE", "/v1/admin/closure-days/2026-11-17", key: admin).status, 404)
        XCTAssertEqual(try harness.send("GET", "/v1/safeguarding-alerts/\(alertID)", key: worker).json["due_at"] as? String, "2026-11-18T00:00:00Z")
        await harness.stop()
    }
}

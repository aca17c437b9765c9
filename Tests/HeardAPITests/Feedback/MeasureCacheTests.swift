import Foundation
@testable import HeardAPI
import HeardTesting
import XCTest

/// Feedback is validated against a tenant's measures kept for a second; a change made through
/// the same instance is seen at once.
final class MeasureCacheTests: XCTestCase {
    private let measure = Measure(id: UUID(), code: "listened_to", group: .principle, wording: "I am listened to", version: 1,
                                  scale: Measure.Scale(min: 1, max: 5, agreeFrom: 4, labels: []), active: true)

    func testMeasuresAreKeptForASecondFromWhenTheirReadBegan() {
        let cache = MeasureCache(), tenant = UUID(), start = ContinuousClock.now
        XCTAssertNil(cache.fresh(for: tenant, now: start))
        cache.store([measure], for: tenant, ticket: cache.ticket(for: tenant, now: start))
        XCTAssertEqual(cache.fresh(for: tenant, now: start + .milliseconds(900))?.map(\.code), ["listened_to"])
        XCTAssertNil(cache.fresh(for: tenant, now: start + .milliseconds(1000)))
        XCTAssertNil(cache.fresh(for: UUID(), now: start), "another tenant's measures are its own")
    }

    func testAReadThatBeganBeforeAChangeIsNotKept() {
        let cache = MeasureCache(), tenant = UUID()
        let ticket = cache.ticket(for: tenant)
        cache.forget(tenant)  // a change committed while the read was under way
        cache.store([measure], for: tenant, ticket: ticket)
        XCTAssertNil(cache.fresh(for: tenant))
        cache.store([measure], for: tenant, ticket: cache.ticket(for: tenant))
        XCTAssertNotNil(cache.fresh(for: tenant))
        cache.forget(tenant)
        XCTAssertNil(cache.fresh(for: tenant))
    }

    func testAChangeToAMeasureAppliesToTheNextRecordAtOnce() async throws {
        let harness = try await AccessHarness.start()
        let council = try await harness.tenant("dudley")
        let key = try await harness.key(council, scopes: [.admin, .feedbackWrite, .feedbackRead])
        func post(_ externalID: String, score: Int) throws -> RawResponse {
            try harness.send("POST", "/v1/feedback", key: key, body: FeedbackSamples.body(
                externalID: externalID, overrides: ["responses": #"[{"measure":"listened_to","score":\#(score)}]"#]))
        }
        XCTAssertEqual(try post("before", score: 5).status, 201)  // the tenant's measures are now kept
        XCTAssertEqual(try post("too-high", score: 8).status, 422)
        let listened = try XCTUnwrap(try harness.send("GET", "/v1/measures", key: key).items.first { $0["code"] as? String == "listened_to" })
        let id = try XCTUnwrap(listened["id"] as? String)
        let widened = try harness.send("PATCH", "/v1/measures/\(id)", key: key,
                                       body: #"{"scale":{"min":1,"max":10,"agree_from":7,"labels":[]}}"#)
        XCTAssertEqual(widened.status, 200, widened.text)
        let after = try post("after", score: 8)
        XCTAssertEqual(after.status, 201, "the new scale applies at once: \(after.text)")
        XCTAssertEqual((after.json["responses"] as? [[String: Any]])?.first?["measure_version"] as? Int, 2)
        XCTAssertEqual(try harness.send("PATCH", "/v1/measures/\(id)", key: key, body: #"{"active":false}"#).status, 200)
        XCTAssertEqual(try post("retired", score: 3).status, 422, "a measure no longer in use is refused at once")
        await harness.stop()
    }
}

import Foundation
import HeardAPI
import HeardTesting
import XCTest

final class MeasureTests: XCTestCase {
    var harness: AccessHarness!
    var council: Registry.Tenant!
    var admin: String!
    var writer: String!

    override func setUp() async throws {
        harness = try await AccessHarness.start()
        council = try await harness.tenant("kirklees")
        admin = try await harness.key(council, scopes: [.admin])
        writer = try await harness.key(council, scopes: [.feedbackWrite, .feedbackRead])
    }

    override func tearDown() async throws {
        await harness?.stop()
    }

    func testChangingWordingMakesANewVersionAndOldResponsesKeepTheirs() throws {
        let measures = try harness.send("GET", "/v1/measures", key: writer).items
        let listened = try XCTUnwrap(measures.first { $0["code"] as? String == "listened_to" })
        let id = try XCTUnwrap(listened["id"] as? String)
        let before = try harness.send("POST", "/v1/feedback", key: writer, body: FeedbackSamples.body(externalID: "before"))
        XCTAssertEqual(before.status, 201)
        let beforePath = "/v1/feedback/\(before.json["id"] as? String ?? "")"
        func wording(_ response: RawResponse) -> (String?, Int?) {
            let item = (response.json["responses"] as? [[String: Any]])?.first { $0["measure"] as? String == "listened_to" }
            return (item?["wording"] as? String, item?["measure_version"] as? Int)
        }
        // Read once before the change: version 1's wording is known to this instance from here on.
        XCTAssertEqual(wording(try harness.send("GET", beforePath, key: writer)).0, "I am listened to")

        let changed = try harness.send("PATCH", "/v1/measures/\(id)", key: admin, body: #"{"wording":"People listen to me"}"#)
        XCTAssertEqual(changed.status, 200, changed.text)
        XCTAssertEqual(changed.json["version"] as? Int, 2)
        XCTAssertEqual(changed.json["wording"] as? String, "People listen to me")

        let after = try harness.send("POST", "/v1/feedback", key: writer, body: FeedbackSamples.body(externalID: "after"))
        let old = try harness.send("GET", beforePath, key: writer)
        XCTAssertEqual(wording(old).0, "I am listened to")
        XCTAssertEqual(wording(old).1, 1)
        XCTAssertEqual(wording(after).0, "People listen to me")
        XCTAssertEqual(wording(after).1, 2)
        // Read by id: version 2, new to the instance, is read and answered; version 1 still is.
        let afterRead = try harness.send("GET", "/v1/feedback/\(after.json["id"] as? String ?? "")", key: writer)
        XCTAssertEqual(wording(afterRead).0, "People listen to me")
        XCTAssertEqual(wording(afterRead).1, 2)
        XCTAssertEqual(wording(try harness.send("GET", beforePath, key: writer)).1, 1)

        // A correction of another field leaves the responses as they were given; a correction of
        // the responses scores them against today's wording.
        let path = "/v1/feedback/\(before.json["id"] as? String ?? "")"
        let teamCorrected = try harness.send("PATCH", path, key: writer, body: #"{"team":"south"}"#, headers: ["If-Match": "\"1\""])
        XCTAssertEqual(teamCorrected.status, 200, teamCorrected.text)
        XCTAssertEqual(wording(teamCorrected).0, "I am listened to")
        XCTAssertEqual(wording(teamCorrected).1, 1)
        let rescored = try harness.send("PATCH", path, key: writer, body: #"{"responses":[{"measure":"listened_to","score":2}]}"#,
                                        headers: ["If-Match": "\"2\""])
        XCTAssertEqual(rescored.status, 200, rescored.text)
        XCTAssertEqual(wording(rescored).0, "People listen to me")
        XCTAssertEqual(wording(rescored).1, 2)
        XCTAssertEqual((rescored.json["responses"] as? [Any])?.count, 1)

        let renamedOnly = try harness.send("PATCH", "/v1/measures/\(id)", key: admin, body: #"{"group":"practice_outcome"}"#)
        XCTAssertEqual(renamedOnly.json["version"] as? Int, 2, "the group is not wording: no new version")
    }

    func testCreatingAMeasureAndRetiringOne() throws {
        let created = try harness.send("POST", "/v1/measures", key: admin, body: """
            {"code":"feel_safe","group":"quality_of_life","wording":"I feel safe and secure",
             "scale":{"min":1,"max":3,"agree_from":3,"labels":["No","Sometimes","Yes"]}}
            """)
        XCTAssertEqual(created.status, 201, created.text)
        let id = try XCTUnwrap(created.json["id"] as? String)
        XCTAssertEqual(created.header("Location"), "/v1/measures/\(id)")
        XCTAssertEqual(try harness.send("GET", "/v1/measures/\(id)", key: writer).json["code"] as? String, "feel_safe")
        let duplicate = try harness.send("POST", "/v1/measures", key: admin,
                                         body: #"{"code":"feel_safe","group":"other","wording":"x","scale":{"min":1,"max":2,"agree_from":2}}"#)
        XCTAssertEqual(duplicate.status, 409)

        let scored = try harness.send("POST", "/v1/feedback", key: writer,
                                      body: FeedbackSamples.body(externalID: "safe-1", overrides: ["responses": #"[{"measure":"feel_safe","score":3}]"#]))
        XCTAssertEqual(scored.status, 201)
        XCTAssertEqual((scored.json["responses"] as? [[String: Any]])?.first?["agrees"] as? Bool, true)
        let outOfScale = try harness.send("POST", "/v1/feedback", key: writer,
                                          body: FeedbackSamples.body(externalID: "safe-2", overrides: ["responses": #"[{"measure":"feel_safe","score":4}]"#]))
        XCTAssertEqual(outOfScale.status, 422)

        XCTAssertEqual(try harness.send("PATCH", "/v1/measures/\(id)", key: admin, body: #"{"active":false}"#).json["active"] as? Bool, false)
        let retired = try harness.send("POST", "/v1/feedback", key: writer,
                                       body: FeedbackSamples.body(externalID: "safe-3", overrides: ["responses": #"[{"measure":"feel_safe","score":3}]"#]))
        XCTAssertEqual(retired.status, 422, "only active measures are scored")

        // Feedback scored before the measure was retired can still be corrected; only new
        // scores must be against active measures.
        let scoredPath = "/v1/feedback/\(scored.json["id"] as? String ?? "")"
        let teamCorrected = try harness.send("PATCH", scoredPath, key: writer, body: #"{"team":"east"}"#, headers: ["If-Match": "\"1\""])
        XCTAssertEqual(teamCorrected.status, 200, teamCorrected.text)
        XCTAssertEqual((teamCorrected.json["responses"] as? [[String: Any]])?.first?["measure"] as? String, "feel_safe")
        let rescored = try harness.send("PATCH", scoredPath, key: writer, body: #"{"responses":[{"measure":"feel_safe","score":1}]}"#,
                                        headers: ["If-Match": "\"2\""])
        XCTAssertEqual(rescored.status, 422, "a correction of the responses scores only active measures")
    }

    func testFeedbackScoredOnAnOldScaleCanStillBeCorrected() throws {
        let measures = try harness.send("GET", "/v1/measures", key: writer).items
        let listened = try XCTUnwrap(measures.first { $0["code"] as? String == "listened_to" }?["id"] as? String)
        let scored = try harness.send("POST", "/v1/feedback", key: writer, body: FeedbackSamples.body(externalID: "old-scale"))
        XCTAssertEqual(scored.status, 201, scored.text)  // listened_to: 5 on a 1 to 5 scale
        let rescaled = try harness.send("PATCH", "/v1/measures/\(listened)", key: admin,
                                        body: #"{"scale":{"min":1,"max":3,"agree_from":3}}"#)
        XCTAssertEqual(rescaled.status, 200, rescaled.text)

        let path = "/v1/feedback/\(scored.json["id"] as? String ?? "")"
        let corrected = try harness.send("PATCH", path, key: writer, body: #"{"team":"east"}"#, headers: ["If-Match": "\"1\""])
        XCTAssertEqual(corrected.status, 200, corrected.text)
        let response = (corrected.json["responses"] as? [[String: Any]])?.first { $0["measure"] as? String == "listened_to" }
        XCTAssertEqual(response?["score"] as? Int, 5, "kept as given")
        XCTAssertEqual(response?["measure_version"] as? Int, 1)
        let outOfScale = try harness.send("PATCH", path, key: writer, body: #"{"responses":[{"measure":"listened_to","score":5}]}"#,
                                          headers: ["If-Match": "\"2\""])
        XCTAssertEqual(outOfScale.status, 422, "responses sent are scored on today's scale")
    }

    func testMeasureValidationAndWhoMayChangeThem() async throws {
        let bad = try harness.send("POST", "/v1/measures", key: admin,
                                   body: #"{"code":"Bad Code","group":"mood","wording":"","scale":{"min":5,"max":1,"agree_from":9,"labels":["a"]}}"#)
        XCTAssertEqual(bad.status, 422)
        let fields = Set((bad.json["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String })
        XCTAssertTrue(fields.isSuperset(of: ["code", "group", "wording", "scale.max"]), "\(fields)")
        XCTAssertEqual(try harness.send("POST", "/v1/measures", key: writer, body: "{}").status, 403)
        let partner = try await harness.organisation("provider", in: council)
        let partnerAdmin = try await harness.key(council, scopes: [.admin], organisation: partner)
        let refused = try harness.send("POST", "/v1/measures", key: partnerAdmin,
                                       body: #"{"code":"x_y","group":"other","wording":"x","scale":{"min":1,"max":2,"agree_from":2}}"#)
        XCTAssertEqual(refused.status, 403)
        let other = try await harness.tenant("elsewhere")
        let otherAdmin = try await harness.key(other, scopes: [.admin])
        let mine = try XCTUnwrap(try harness.send("GET", "/v1/measures", key: writer).items.first?["id"] as? String)
        XCTAssertEqual(try harness.send("PATCH", "/v1/measures/\(mine)", key: otherAdmin, body: #"{"wording":"hijacked"}"#).status, 404)
        XCTAssertEqual(try harness.send("GET", "/v1/measures/\(mine)", key: otherAdmin).status, 404)
    }
}

import Foundation
import HeardAPI
import HeardTesting
import XCTest

extension ParticipationSamples {
    static func activity(heldOn: String = "2026-06-15", topic: String = "transport", rung: Int = 5, summary: String = "Bus passes for care leavers") -> String {
        #"{"kind":"consultation","topic":"\#(topic)","service_area":"care_leavers","held_on":"\#(heldOn)","harts_rung":\#(rung),"summary":"\#(summary)"}"#
    }

    static func makeActivity(_ harness: AccessHarness, key: String, heldOn: String = "2026-06-15", topic: String = "transport", rung: Int = 5) throws -> String {
        try createdID(harness.send("POST", "/v1/activities", key: key, body: activity(heldOn: heldOn, topic: topic, rung: rung)), "create an activity")
    }

    static func join(_ harness: AccessHarness, key: String, _ activity: String, _ participants: [String]) throws -> RawResponse {
        try harness.send("POST", "/v1/activities/\(activity)/participants", key: key,
                         body: #"{"participants":[\#(participants.map { "\"\($0)\"" }.joined(separator: ","))]}"#)
    }

    /// A participant of 13 or over with consent for involvement from `givenOn`.
    static func makeConsenting(_ harness: AccessHarness, key: String, givenOn: String = "2026-01-01") throws -> String {
        let participant = try makeParticipant(harness, key: key)
        _ = try giveConsent(harness, key: key, to: participant, givenOn: givenOn)
        return participant
    }
}

extension IsolatedResource {
    static let activity = IsolatedResource(
        name: "activity", scopes: [.involvementWrite, .involvementRead],
        create: { harness, key in try ParticipationSamples.makeActivity(harness, key: key) },
        itemPath: { "/v1/activities/\($0)" }, reads: ["/participants"], listPath: "/v1/activities",
        changes: [("POST", "/participants", #"{"participants":["00000000-0000-4000-8000-000000000000"]}"#)],
        deletable: false, csv: true,
        routes: ["POST /v1/activities", "GET /v1/activities/{id}", "GET /v1/activities", "POST /v1/activities/{id}/participants", "GET /v1/activities/{id}/participants"])
}

final class ActivitiesTests: XCTestCase {
    var harness: AccessHarness!
    var council: Registry.Tenant!
    var writer: String!

    override func setUp() async throws {
        harness = try await AccessHarness.start()
        council = try await harness.tenant("dudley")
        writer = try await harness.key(council, scopes: [.involvementWrite, .involvementRead, .freeTextRead, .admin])
    }

    override func tearDown() async throws {
        await harness?.stop()
    }

    private func errors(_ response: RawResponse) -> [String: String] {
        Dictionary((response.json["errors"] as? [[String: Any]] ?? []).map { ($0["field"] as? String ?? "", $0["message"] as? String ?? "") },
                   uniquingKeysWith: { first, _ in first })
    }

    func testAnActivityCarriesItsRungAndItsSummaryOnlyWithTheFreeTextScope() async throws {
        let created = try harness.send("POST", "/v1/activities", key: writer, body: ParticipationSamples.activity(rung: 3))
        XCTAssertEqual(created.status, 201, created.text)
        XCTAssertEqual(created.json["harts_rung_name"] as? String, "tokenism")
        XCTAssertEqual(created.json["participation"] as? Bool, false, "rungs 1-3 are recorded as non-participation")
        let id = try XCTUnwrap(created.json["id"] as? String)
        XCTAssertEqual(try harness.send("GET", "/v1/activities/\(id)", key: writer).json["summary"] as? String, "Bus passes for care leavers")
        // Who took part is answered as participants are: their notes only with the scope too.
        let participant = try ParticipationSamples.makeConsenting(harness, key: writer)
        XCTAssertEqual(try ParticipationSamples.join(harness, key: writer, id, [participant]).status, 201)
        XCTAssertTrue(try harness.send("GET", "/v1/activities/\(id)/participants", key: writer).text.contains("Prefers afternoon sessions"))
        let blind = try await harness.key(council, scopes: [.involvementRead, .involvementWrite])
        for path in ["/v1/activities/\(id)", "/v1/activities", "/v1/activities?format=csv"] {
            let response = try harness.send("GET", path, key: blind)
            XCTAssertEqual(response.status, 200, path)
            XCTAssertFalse(response.text.contains("Bus passes"), path)
            XCTAssertFalse(response.text.contains("summary"), path)
        }
        for path in ["/v1/activities/\(id)/participants", "/v1/activities/\(id)/participants?format=csv"] {
            let response = try harness.send("GET", path, key: blind)
            XCTAssertEqual(response.status, 200, path)
            XCTAssertFalse(response.text.contains("afternoon"), path)
            XCTAssertFalse(response.text.contains("notes"), path)
        }
        let own = try harness.send("POST", "/v1/activities", key: blind, body: ParticipationSamples.activity(summary: "Secret plans"))
        XCTAssertEqual(own.status, 201)
        XCTAssertFalse(own.text.contains("Secret plans"), "a writer without free_text:read does not read it back")
        let wrong = try harness.send("POST", "/v1/activities", key: writer,
                                     body: #"{"kind":"rally","topic":"Bus Passes","service_area":"care_leavers","held_on":"2026-06-15","harts_rung":9,"group_id":"\#(UUID().lowercased)"}"#)
        XCTAssertEqual(Set(errors(wrong).keys), ["kind", "topic", "harts_rung", "group_id"])
        XCTAssertEqual(try harness.send("GET", "/v1/activities?harts_rung=3&from=2026-06-15&to=2026-06-15", key: writer).items.count, 1)
        XCTAssertEqual(try harness.send("GET", "/v1/activities?harts_rung=5&from=2026-06-16", key: writer).items.count, 0)
    }

    func testConsentWithdrawnBeforeTheActivitysDayBlocksJoiningAndAfterItDoesNot() throws {
        let activity = try ParticipationSamples.makeActivity(harness, key: writer, heldOn: "2026-06-15")
        func participant(withdrawnOn day: String) throws -> String {
            let participant = try ParticipationSamples.makeParticipant(harness, key: writer)
            let consent = try ParticipationSamples.giveConsent(harness, key: writer, to: participant, givenOn: "2026-01-01")
            XCTAssertEqual(try harness.send("POST", "/v1/participants/\(participant)/consents/\(consent)/withdraw", key: writer,
                                            body: #"{"on":"\#(day)"}"#).status, 200)
            return participant
        }
        let dayBefore = try participant(withdrawnOn: "2026-06-14")
        let sameDay = try participant(withdrawnOn: "2026-06-15")
        let dayAfter = try participant(withdrawnOn: "2026-06-16")
        let notYet = try ParticipationSamples.makeConsenting(harness, key: writer, givenOn: "2026-06-16")

        let refused = try ParticipationSamples.join(harness, key: writer, activity, [dayAfter, dayBefore, sameDay, notYet])
        XCTAssertEqual(refused.status, 422, refused.text)
        let problems = errors(refused)
        XCTAssertEqual(Set(problems.keys), ["participants[1]", "participants[2]", "participants[3]"])
        XCTAssertTrue(problems["participants[1]"]?.contains("consent for involvement in force on 2026-06-15") ?? false)
        XCTAssertEqual(try harness.send("GET", "/v1/activities/\(activity)", key: writer).json["participant_count"] as? Int, 0,
                       "all or none: the one who could join did not")

        let joined = try ParticipationSamples.join(harness, key: writer, activity, [dayAfter])
        XCTAssertEqual(joined.status, 201, joined.text)
        XCTAssertEqual(joined.json["added"] as? [String], [dayAfter])
        XCTAssertEqual((joined.json["warnings"] as? [Any])?.count, 0)
        let again = try ParticipationSamples.join(harness, key: writer, activity, [dayAfter])
        XCTAssertEqual(again.status, 200)
        XCTAssertEqual(again.json["already_joined"] as? [String], [dayAfter])
        let who = try harness.send("GET", "/v1/activities/\(activity)/participants", key: writer)
        XCTAssertEqual(who.items.compactMap { $0["id"] as? String }, [dayAfter])
    }

    func testOnlyTheTenantsActiveParticipantsJoin() async throws {
        let activity = try ParticipationSamples.makeActivity(harness, key: writer)
        let inactive = try ParticipationSamples.makeConsenting(harness, key: writer)
        XCTAssertEqual(try harness.send("PATCH", "/v1/participants/\(inactive)", key: writer, body: #"{"active":false}"#,
                                        headers: ["If-Match": "\"1\""]).status, 200)
        let otherKey = try await harness.key(try await harness.tenant("redcar"), scopes: [.involvementWrite, .involvementRead])
        let foreign = try ParticipationSamples.makeConsenting(harness, key: otherKey)
        let refused = try ParticipationSamples.join(harness, key: writer, activity, [foreign, inactive])
        XCTAssertEqual(refused.status, 422)
        XCTAssertEqual(errors(refused), ["participants[0]": "is not a participant of this tenant", "participants[1]": "is not active"])
        XCTAssertEqual(try harness.send("GET", "/v1/participants/\(foreign)", key: writer).status, 404)
        let duplicate = try ParticipationSamples.join(harness, key: writer, activity, [inactive, inactive])
        XCTAssertEqual(errors(duplicate)["participants[1]"], "appears more than once")
        XCTAssertEqual(try ParticipationSamples.join(harness, key: writer, UUID().lowercased, [inactive]).status, 404)
    }

    func testFatigueWarnsOfTheSameTopicWithinItsWindowAndNotADayOutside() throws {
        let inside = try ParticipationSamples.makeConsenting(harness, key: writer, givenOn: "2025-01-01")
        let outside = try ParticipationSamples.makeConsenting(harness, key: writer, givenOn: "2025-01-01")
        // 90 days before 2026-06-15 is 2026-03-17.
        let recent = try ParticipationSamples.makeActivity(harness, key: writer, heldOn: "2026-03-17", topic: "transport")
        let older = try ParticipationSamples.makeActivity(harness, key: writer, heldOn: "2026-03-16", topic: "transport")
        let otherTopic = try ParticipationSamples.makeActivity(harness, key: writer, heldOn: "2026-06-01", topic: "housing")
        XCTAssertEqual(try ParticipationSamples.join(harness, key: writer, recent, [inside]).status, 201)
        XCTAssertEqual(try ParticipationSamples.join(harness, key: writer, older, [outside]).status, 201)
        XCTAssertEqual(try ParticipationSamples.join(harness, key: writer, otherTopic, [outside]).status, 201)

        let activity = try ParticipationSamples.makeActivity(harness, key: writer, heldOn: "2026-06-15", topic: "transport")
        let joined = try ParticipationSamples.join(harness, key: writer, activity, [inside, outside])
        XCTAssertEqual(joined.status, 201, joined.text)
        let warnings = joined.json["warnings"] as? [[String: Any]] ?? []
        XCTAssertEqual(warnings.count, 1, joined.text)
        XCTAssertEqual(warnings.first?["participant_id"] as? String, inside)
        XCTAssertEqual(warnings.first?["code"] as? String, "same_topic_recently")
        XCTAssertTrue((warnings.first?["message"] as? String ?? "").contains("90 days before 2026-06-15"))

        // The tenant's window: 91 days reaches the older one too.
        let settings = try harness.send("GET", "/v1/admin/settings", key: writer)
        XCTAssertEqual(settings.json["fatigue_topic_days"] as? Int, 90)
        XCTAssertEqual(settings.json["fatigue_max_per_30_days"] as? Int, 4)
        XCTAssertEqual(try harness.send("PATCH", "/v1/admin/settings", key: writer, body: #"{"fatigue_topic_days":91}"#).status, 428)
        let changed = try harness.send("PATCH", "/v1/admin/settings", key: writer, body: #"{"fatigue_topic_days":91}"#,
                                       headers: ["If-Match": settings.header("ETag") ?? ""])
        XCTAssertEqual(changed.status, 200, changed.text)
        XCTAssertEqual(changed.header("ETag"), "\"2\"")
        XCTAssertEqual(try harness.send("PATCH", "/v1/admin/settings", key: writer, body: #"{"fatigue_topic_days":30}"#,
                                        headers: ["If-Match": "\"1\""]).status, 412)
        let retried = try ParticipationSamples.join(harness, key: writer, activity, [inside, outside])
        XCTAssertEqual(retried.status, 200)
        XCTAssertEqual(Set((retried.json["warnings"] as? [[String: Any]] ?? []).compactMap { $0["participant_id"] as? String }), [inside, outside])
    }

    func testFatigueWarnsOfMoreThanFourActivitiesInTheThirtyDaysBefore() throws {
        let busy = try ParticipationSamples.makeConsenting(harness, key: writer, givenOn: "2025-01-01")
        let steady = try ParticipationSamples.makeConsenting(harness, key: writer, givenOn: "2025-01-01")
        // 30 days before 2026-06-15 is 2026-05-16; the activity's own day does not count.
        for (index, day) in ["2026-05-16", "2026-05-20", "2026-05-25", "2026-06-01", "2026-06-14"].enumerated() {
            let earlier = try ParticipationSamples.makeActivity(harness, key: writer, heldOn: day, topic: "topic_\(index)")
            XCTAssertEqual(try ParticipationSamples.join(harness, key: writer, earlier, [busy]).status, 201)
        }
        for (index, day) in ["2026-05-15", "2026-05-20", "2026-05-25", "2026-06-01", "2026-06-14", "2026-06-15"].enumerated() {
            let earlier = try ParticipationSamples.makeActivity(harness, key: writer, heldOn: day, topic: "topic_\(index)")
            XCTAssertEqual(try ParticipationSamples.join(harness, key: writer, earlier, [steady]).status, 201)
        }
        let activity = try ParticipationSamples.makeActivity(harness, key: writer, heldOn: "2026-06-15", topic: "transport")
        let joined = try ParticipationSamples.join(harness, key: writer, activity, [busy, steady])
        XCTAssertEqual(joined.status, 201, joined.text)
        let warnings = joined.json["warnings"] as? [[String: Any]] ?? []
        XCTAssertEqual(warnings.count, 1, joined.text)
        XCTAssertEqual(warnings.first?["participant_id"] as? String, busy)
        XCTAssertEqual(warnings.first?["code"] as? String, "too_many_recently")
        XCTAssertTrue((warnings.first?["message"] as? String ?? "").contains("5 activities in the 30 days before 2026-06-15, more than 4"))
    }

    func testAPartnerKeyCannotChangeTheSettings() async throws {
        let partner = try await harness.organisation("advocacy", in: council)
        let key = try await harness.key(council, scopes: [.admin], organisation: partner)
        XCTAssertEqual(try harness.send("GET", "/v1/admin/settings", key: key).status, 200)
        let refused = try harness.send("PATCH", "/v1/admin/settings", key: key, body: #"{"fatigue_max_per_30_days":2}"#, headers: ["If-Match": "\"1\""])
        XCTAssertEqual(refused.status, 403)
        XCTAssertEqual(refused.json["type"] as? String, "urn:heard:problem:council-key-required")
    }
}

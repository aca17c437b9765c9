import Foundation
import HeardAPI
import HeardTesting
import XCTest

/// Vacancies, youth panels, scores, decisions (issue 17), against the real database.
final class RecruitmentTests: XCTestCase {
    var harness: AccessHarness!
    var council: Registry.Tenant!
    var writer: String!

    override func setUp() async throws {
        harness = try await AccessHarness.start()
        harness.clock.hold(at: ISO8601DateFormatter().date(from: "2026-07-20T12:00:00Z"))
        council = try await harness.tenant("dudley")
        writer = try await harness.key(council, scopes: [.involvementWrite, .involvementRead, .freeTextRead])
    }

    override func tearDown() async throws {
        await harness?.stop()
    }

    private typealias Samples = RecruitmentSamples

    func testTrainingExpiredTheDayBeforeRefusesExpiringThatDayAdmitsAndAWaiverAdmitsAndIsShown() async throws {
        let vacancy = try Samples.makeVacancy(harness, key: writer)
        let expiredDayBefore = try Samples.makeMember(harness, key: writer, trainingExpires: "2026-06-14")
        let expiringThatDay = try Samples.makeMember(harness, key: writer, trainingExpires: "2026-06-15")
        let waived = try Samples.makeMember(harness, key: writer, trainingExpires: "2026-06-14")
        let untrained = try Samples.makeMember(harness, key: writer, trainingExpires: nil)

        let refused = try Samples.putPanel(harness, key: writer, vacancy, Samples.panel(members: [
            (expiredDayBefore, nil), (expiringThatDay, nil), (waived, "Trained on the day by the panel chair"), (untrained, nil),
        ]))
        XCTAssertEqual(refused.status, 422, refused.text)
        XCTAssertEqual(Set(Samples.errors(refused).keys), ["members[0]", "members[3]"])
        XCTAssertEqual(Samples.errors(refused)["members[0]"],
                       "holds no recruitment_panel training current on 2026-06-15, the panel's day, and carries no waiver")
        XCTAssertNil(try harness.send("GET", "/v1/vacancies/\(vacancy)", key: writer).json["youth_panel"] as? [String: Any],
                     "nothing of a refused panel is kept")
        XCTAssertEqual(try harness.send("GET", "/v1/activities?kind=interview_panel", key: writer).items.count, 0)

        let panel = try Samples.putPanel(harness, key: writer, vacancy, Samples.panel(members: [
            (expiringThatDay, nil), (waived, "Trained on the day by the panel chair"),
        ]))
        XCTAssertEqual(panel.status, 200, panel.text)
        XCTAssertEqual(panel.header("ETag"), "\"2\"")
        let seats = (panel.json["youth_panel"] as? [String: Any])?["members"] as? [[String: Any]] ?? []
        XCTAssertEqual(seats.map { $0["trained"] as? Bool }, [true, false])
        XCTAssertTrue(seats[0]["waiver"] is NSNull)
        let waiver = try XCTUnwrap(seats[1]["waiver"] as? [String: Any])
        XCTAssertEqual(waiver["reason"] as? String, "Trained on the day by the panel chair")
        let keyID = writer.split(separator: "_")[1].lowercased()
        XCTAssertEqual((waiver["recorded_by"] as? String)?.replacingOccurrences(of: "-", with: ""), keyID, "the key that recorded the waiver")

        // The panel is one interview_panel activity in Participation, with its members.
        let activity = try XCTUnwrap((panel.json["youth_panel"] as? [String: Any])?["activity_id"] as? String)
        let recorded = try harness.send("GET", "/v1/activities/\(activity)", key: writer)
        XCTAssertEqual(recorded.json["kind"] as? String, "interview_panel")
        XCTAssertEqual(recorded.json["held_on"] as? String, "2026-06-15")
        XCTAssertEqual(recorded.json["participant_count"] as? Int, 2)
        XCTAssertEqual(recorded.json["harts_rung_name"] as? String, "adult_initiated_shared_decisions")

        // Sent again, on another day with one member fewer: the same activity, updated.
        let again = try Samples.putPanel(harness, key: writer, vacancy, Samples.panel(heldOn: "2026-06-16", weight: 0, members: [(expiringThatDay, nil)]))
        XCTAssertEqual(again.status, 422, "training that expired on the 15th is not current on the 16th")
        let moved = try Samples.putPanel(harness, key: writer, vacancy, Samples.panel(heldOn: "2026-06-16", weight: 0, members: [(waived, "Trained on the day")]))
        XCTAssertEqual(moved.status, 200, moved.text)
        XCTAssertEqual((moved.json["youth_panel"] as? [String: Any])?["activity_id"] as? String, activity)
        let activities = try harness.send("GET", "/v1/activities?kind=interview_panel", key: writer).items
        XCTAssertEqual(activities.count, 1, "updated, not duplicated")
        XCTAssertEqual(activities.first?["held_on"] as? String, "2026-06-16")
        XCTAssertEqual(activities.first?["participant_count"] as? Int, 1)
        XCTAssertEqual(activities.first?["harts_rung_name"] as? String, "consulted_and_informed")
        XCTAssertEqual(try harness.send("GET", "/v1/activities/\(activity)/participants", key: writer).items.compactMap { $0["id"] as? String }, [waived])

        // Thanks go through Participation's rewards, linked to the panel's activity.
        let thanks = try harness.send("POST", "/v1/participants/\(waived)/rewards", key: writer,
                                      body: #"{"kind":"voucher","value_pence":2000,"given_on":"2026-06-20","activity_id":"\#(activity)"}"#)
        XCTAssertEqual(thanks.status, 201, thanks.text)

        // The next panel warns of fatigue: the same member, on a recruitment panel four days before.
        let next = try Samples.makeVacancy(harness, key: writer)
        let warned = try Samples.putPanel(harness, key: writer, next, Samples.panel(heldOn: "2026-06-20", members: [(expiringThatDay, nil)]))
        XCTAssertEqual(warned.status, 422, "expired by then")
        let warnedAgain = try Samples.putPanel(harness, key: writer, next, Samples.panel(heldOn: "2026-06-20", members: [(waived, "Trained on the day")]))
        XCTAssertEqual(warnedAgain.status, 200, warnedAgain.text)
        XCTAssertEqual((warnedAgain.json["warnings"] as? [[String: Any]])?.first?["code"] as? String, "same_topic_recently")
    }

    func testConsentForInvolvementButNotForRecruitmentPanelsRefusesAndNoWaiverReplacesIt() async throws {
        let vacancy = try Samples.makeVacancy(harness, key: writer)
        let involvementOnly = try Samples.makeMember(harness, key: writer, purposes: #"["involvement"]"#)
        let stranger = try await harness.key(try await harness.tenant("redcar"), scopes: [.involvementWrite, .involvementRead])
        let foreign = try Samples.makeMember(harness, key: stranger)
        let refused = try Samples.putPanel(harness, key: writer, vacancy, Samples.panel(members: [
            (involvementOnly, nil), (involvementOnly, "Waived"), (foreign, nil),
        ]))
        XCTAssertEqual(refused.status, 422, refused.text)
        let errors = Samples.errors(refused)
        XCTAssertEqual(errors["members[0]"], "holds no consent for recruitment_panels in force on 2026-06-15, the panel's day (a waiver never replaces consent)")
        XCTAssertEqual(errors["members[1].participant_id"], "appears more than once")
        XCTAssertEqual(errors["members[2]"], "is not a participant of this tenant")
        let waived = try Samples.putPanel(harness, key: writer, vacancy, Samples.panel(members: [(involvementOnly, "Waived")]))
        XCTAssertEqual(Samples.errors(waived)["members[0]"],
                       "holds no consent for recruitment_panels in force on 2026-06-15, the panel's day (a waiver never replaces consent)")
        let future = try Samples.putPanel(harness, key: writer, vacancy, Samples.panel(heldOn: "2026-07-21", weight: 101, members: []))
        XCTAssertEqual(Set(Samples.errors(future).keys), ["held_on", "weight_percent", "members"])
    }

    func testRankingsShareARankOnTiesAndTheYouthChoiceIsJudgedFromThem() async throws {
        let vacancy = try Samples.makeVacancy(harness, key: writer)
        let (a, b) = (try Samples.makeMember(harness, key: writer), try Samples.makeMember(harness, key: writer))
        XCTAssertEqual(try Samples.putPanel(harness, key: writer, vacancy, Samples.panel(members: [(a, nil), (b, nil)])).status, 200)
        try Samples.addCandidates(harness, key: writer, vacancy, ["C-ANN", "C-BEN", "C-CAL", "C-DEV", "C-EVE"])
        // Means: ANN (5+4+4+5)/4 = 4.5, BEN (4+5+5+4)/4 = 4.5, CAL 13/4 = 3.25, DEV 14/4 = 3.5; EVE unscored.
        let scored = try harness.send("PUT", "/v1/vacancies/\(vacancy)/youth-panel/scores", key: writer, body: Samples.scores([
            ("C-ANN", "values", a, 5, "Listened well"), ("C-ANN", "listening", a, 4, nil), ("C-ANN", "values", b, 4, nil), ("C-ANN", "listening", b, 5, nil),
            ("C-BEN", "values", a, 4, nil), ("C-BEN", "listening", a, 5, nil), ("C-BEN", "values", b, 5, nil), ("C-BEN", "listening", b, 4, nil),
            ("C-CAL", "values", a, 3, nil), ("C-CAL", "listening", a, 3, nil), ("C-CAL", "values", b, 3, nil), ("C-CAL", "listening", b, 4, nil),
            ("C-DEV", "values", a, 4, nil), ("C-DEV", "listening", a, 3, nil), ("C-DEV", "values", b, 3, nil), ("C-DEV", "listening", b, 4, nil),
        ]))
        XCTAssertEqual(scored.status, 200, scored.text)
        let ranking = (scored.json["youth_ranking"] as? [[String: Any]] ?? []).map {
            "\($0["candidate"] as? String ?? "") \(($0["mean"] as? NSNumber)?.doubleValue ?? -1) \($0["rank"] as? Int ?? -1)"
        }
        XCTAssertEqual(ranking, ["C-ANN 4.5 1", "C-BEN 4.5 1", "C-DEV 3.5 3", "C-CAL 3.25 4"])
        XCTAssertTrue(scored.json["youth_choice_appointed"] is NSNull, "nothing decided yet")

        func decide(_ appointed: String?) throws -> RawResponse {
            try harness.send("POST", "/v1/vacancies/\(vacancy)/decision", key: writer,
                             body: #"{"decided_on":"2026-06-19","appointed":\#(appointed.map { "\"\($0)\"" } ?? "null")}"#)
        }
        XCTAssertEqual(try decide("C-ANN").json["youth_choice_appointed"] as? Bool, true, "first-ranked")
        XCTAssertEqual(try decide("C-BEN").json["youth_choice_appointed"] as? Bool, true, "tied first")
        XCTAssertEqual(try decide("C-DEV").json["youth_choice_appointed"] as? Bool, false, "ranked after the first")
        XCTAssertEqual(try decide("C-EVE").json["youth_choice_appointed"] as? Bool, false, "not ranked at all")
        let nobody = try decide(nil)
        XCTAssertEqual(nobody.json["youth_choice_appointed"] as? Bool, false, "nobody appointed")
        XCTAssertEqual((nobody.json["decision"] as? [String: Any])?["decided_on"] as? String, "2026-06-19")

        // Second-ranked in a race without a tie.
        let other = try Samples.makeVacancy(harness, key: writer)
        XCTAssertEqual(try Samples.putPanel(harness, key: writer, other, Samples.panel(members: [(a, nil)])).status, 200)
        try Samples.addCandidates(harness, key: writer, other, ["X", "Y"])
        XCTAssertEqual(try harness.send("PUT", "/v1/vacancies/\(other)/youth-panel/scores", key: writer,
                                        body: Samples.flatScores([("X", 5), ("Y", 4)], members: [a])).status, 200)
        let second = try harness.send("POST", "/v1/vacancies/\(other)/decision", key: writer, body: #"{"decided_on":"2026-06-19","appointed":"Y"}"#)
        XCTAssertEqual(second.json["youth_choice_appointed"] as? Bool, false)
        XCTAssertEqual((second.json["youth_ranking"] as? [[String: Any]])?.map { $0["rank"] as? Int }, [1, 2])

        // Heard works it out: a typed-in value, an unknown candidate, a date to come are refused.
        let typed = try harness.send("POST", "/v1/vacancies/\(vacancy)/decision", key: writer,
                                     body: #"{"decided_on":"2026-07-21","appointed":"C-ZED","youth_choice_appointed":true}"#)
        XCTAssertEqual(typed.status, 422)
        XCTAssertEqual(Set(Samples.errors(typed).keys), ["decided_on", "appointed", "youth_choice_appointed"])
        let patched = try harness.send("PATCH", "/v1/vacancies/\(vacancy)", key: writer, body: #"{"youth_choice_appointed":true}"#,
                                       headers: ["If-Match": "*"])
        XCTAssertEqual(patched.status, 422)
        // Scores out of the panel: each one named.
        let wrong = try harness.send("PUT", "/v1/vacancies/\(vacancy)/youth-panel/scores", key: writer, body: Samples.scores([
            ("C-ZED", "values", a, 3, nil), ("C-ANN", "maths", a, 3, nil), ("C-ANN", "values", UUID().lowercased, 3, nil), ("C-ANN", "values", a, 6, nil),
            ("C-ANN", "values", a, 2, nil),
        ]))
        XCTAssertEqual(Samples.errors(wrong), [
            "scores[0].candidate": "is not a candidate of this vacancy", "scores[1].question": "is not a question of the youth panel",
            "scores[2].member": "is not a member of the youth panel", "scores[3].score": "must be from 1 to 5, the panel's scale",
            "scores[4]": "scores the same candidate on the same question by the same member as scores[3]",
        ])
    }

    func testDaysToTellAreWorkingDaysAfterTheDecisionAsTheHouseCountsThem() async throws {
        harness.clock.hold(at: ISO8601DateFormatter().date(from: "2026-10-01T12:00:00Z"))
        let vacancy = try Samples.makeVacancy(harness, key: writer)
        let early = try harness.send("POST", "/v1/vacancies/\(vacancy)/youth-told", key: writer, body: #"{"on":"2026-09-01","how":"meeting"}"#)
        XCTAssertEqual(Samples.errors(early)["on"], "needs the decision first (POST /v1/vacancies/{id}/decision)")
        XCTAssertEqual(try harness.send("POST", "/v1/vacancies/\(vacancy)/decision", key: writer,
                                        body: #"{"decided_on":"2026-08-28","appointed":null}"#).status, 200)
        // Friday 28 August 2026, then the summer bank holiday on Monday 31st: told on Tuesday 1 September.
        let told = try harness.send("POST", "/v1/vacancies/\(vacancy)/youth-told", key: writer, body: #"{"on":"2026-09-01","how":"meeting"}"#)
        XCTAssertEqual(told.status, 200, told.text)
        XCTAssertEqual(told.json["days_to_tell"] as? Int, 1)
        XCTAssertEqual((told.json["youth_told"] as? [String: Any])?["how"] as? String, "meeting")
        let before = try harness.send("POST", "/v1/vacancies/\(vacancy)/youth-told", key: writer, body: #"{"on":"2026-08-27","how":"fax"}"#)
        XCTAssertEqual(Samples.errors(before), ["on": "must not be before 2026-08-28, the day it was decided", "how": "must be one of: meeting, letter, phone, message, other"])
        // A closure day of the council's is not a working day either.
        XCTAssertEqual(try harness.send("POST", "/v1/vacancies/\(vacancy)/youth-told", key: writer, body: #"{"on":"2026-09-08","how":"letter"}"#)
            .json["days_to_tell"] as? Int, 6)
        let admin = try await harness.key(council, scopes: [.admin])
        XCTAssertEqual(try harness.send("POST", "/v1/admin/closure-days", key: admin, body: #"{"day":"2026-09-02","reason":"Inset"}"#).status, 201)
        XCTAssertEqual(try harness.send("GET", "/v1/vacancies/\(vacancy)", key: writer).json["days_to_tell"] as? Int, 5)
    }

    func testScoreCommentsAndWaiverReasonsOnlyWithTheFreeTextScope() async throws {
        let vacancy = try Samples.makeVacancy(harness, key: writer)
        let member = try Samples.makeMember(harness, key: writer, trainingExpires: nil)
        XCTAssertEqual(try Samples.putPanel(harness, key: writer, vacancy, Samples.panel(members: [(member, "Shadowed a panel instead")])).status, 200)
        try Samples.addCandidates(harness, key: writer, vacancy, ["C-1"])
        XCTAssertEqual(try harness.send("PUT", "/v1/vacancies/\(vacancy)/youth-panel/scores", key: writer,
                                        body: Samples.scores([("C-1", "values", member, 4, "She asked us what we thought")])).status, 200)
        let scores = try harness.send("GET", "/v1/vacancies/\(vacancy)/youth-panel/scores", key: writer)
        XCTAssertEqual(scores.items.first?["comment"] as? String, "She asked us what we thought")
        XCTAssertTrue(try harness.send("GET", "/v1/vacancies/\(vacancy)/youth-panel/scores?format=csv", key: writer).text.contains("She asked us"))
        XCTAssertTrue(try harness.send("GET", "/v1/vacancies/\(vacancy)", key: writer).text.contains("Shadowed a panel"))

        let blind = try await harness.key(council, scopes: [.involvementRead, .involvementWrite])
        for path in ["/v1/vacancies/\(vacancy)/youth-panel/scores", "/v1/vacancies/\(vacancy)/youth-panel/scores?format=csv",
                     "/v1/vacancies/\(vacancy)", "/v1/vacancies", "/v1/vacancies?format=csv"] {
            let response = try harness.send("GET", path, key: blind)
            XCTAssertEqual(response.status, 200, path)
            XCTAssertFalse(response.text.contains("She asked us"), path)
            XCTAssertFalse(response.text.contains("comment"), path)
            XCTAssertFalse(response.text.contains("Shadowed"), path)
            XCTAssertFalse(response.text.contains("reason"), path)
        }
        XCTAssertEqual(try harness.send("GET", "/v1/vacancies/\(vacancy)/youth-panel/scores", key: blind).items.first?["score"] as? Int, 4)
        // A writer without the scope still records comments, and does not read them back.
        let rescored = try harness.send("PUT", "/v1/vacancies/\(vacancy)/youth-panel/scores", key: blind,
                                        body: Samples.scores([("C-1", "values", member, 5, "Kind")]))
        XCTAssertEqual(rescored.status, 200, rescored.text)
        XCTAssertEqual(try harness.send("GET", "/v1/vacancies/\(vacancy)/youth-panel/scores", key: writer).items.first?["comment"] as? String, "Kind")
    }

    func testTheNaturalKeyAndCorrectionsWithIfMatch() async throws {
        let body = Samples.vacancy(sourceSystem: "itrent", externalID: "REQ-77")
        let first = try harness.send("POST", "/v1/vacancies", key: writer, body: body)
        XCTAssertEqual(first.status, 201, first.text)
        let id = try XCTUnwrap(first.json["id"] as? String)
        XCTAssertEqual(first.json["recorded_on"] as? String, "2026-07-20")
        XCTAssertEqual(first.json["senior"] as? Bool, true)
        let retry = try harness.send("POST", "/v1/vacancies", key: writer, body: body)
        XCTAssertEqual(retry.status, 200)
        XCTAssertEqual(retry.json["id"] as? String, id)
        let conflict = try harness.send("POST", "/v1/vacancies", key: writer, body: Samples.vacancy(title: "Other", sourceSystem: "itrent", externalID: "REQ-77"))
        XCTAssertEqual(conflict.status, 409)
        XCTAssertEqual(conflict.json["type"] as? String, "urn:heard:problem:natural-key-conflict")
        XCTAssertEqual(conflict.json["existing_id"] as? String, id)
        let half = try harness.send("POST", "/v1/vacancies", key: writer, body: #"{"source_system":"itrent","title":"T","seniority":"manager","service_area":"send"}"#)
        XCTAssertEqual(Samples.errors(half), ["external_id": "is required with source_system"])

        XCTAssertEqual(try harness.send("PATCH", "/v1/vacancies/\(id)", key: writer, body: #"{"seniority":"practitioner"}"#).status, 428)
        XCTAssertEqual(try harness.send("PATCH", "/v1/vacancies/\(id)", key: writer, body: #"{"seniority":"practitioner"}"#,
                                        headers: ["If-Match": "\"2\""]).status, 412)
        let corrected = try harness.send("PATCH", "/v1/vacancies/\(id)", key: writer, body: #"{"seniority":"practitioner","team":null}"#,
                                         headers: ["If-Match": "\"1\""])
        XCTAssertEqual(corrected.status, 200, corrected.text)
        XCTAssertEqual(corrected.header("ETag"), "\"2\"")
        XCTAssertEqual(corrected.json["senior"] as? Bool, false)
        XCTAssertTrue(corrected.json["team"] is NSNull)
        XCTAssertEqual(Samples.errors(try harness.send("PATCH", "/v1/vacancies/\(id)", key: writer, body: #"{"external_id":"X"}"#,
                                                       headers: ["If-Match": "\"2\""])).keys.first, "external_id")
        XCTAssertEqual(try harness.send("GET", "/v1/vacancies/\(id)", key: writer, headers: ["If-None-Match": "\"2\""]).status, 304)
        // The change feed names the vacancy's creation and its correction, never their content
        // (an event is readable once the transactions begun before it have ended: followed with `wait`).
        var events: [String] = [], after = ""
        for _ in 0..<10 where events.count < 2 {
            let page = try harness.send("GET", "/v1/events?types=vacancy.created,vacancy.changed&wait=5\(after)", key: writer)
            XCTAssertEqual(page.status, 200, page.text)
            events += (page.json["events"] as? [[String: Any]] ?? []).map { "\($0["type"] ?? "") \($0["resource_id"] ?? "")" }
            after = (page.json["next_cursor"] as? String).map { "&after=\($0)" } ?? ""
        }
        XCTAssertEqual(events, ["vacancy.created \(id)", "vacancy.changed \(id)"])
        XCTAssertEqual(try harness.send("GET", "/v1/vacancies?senior=true", key: writer).items.count, 0)
        XCTAssertEqual(try harness.send("GET", "/v1/vacancies?seniority=practitioner&from=2026-07-20&to=2026-07-20", key: writer).items.count, 1)
        XCTAssertEqual(try harness.send("GET", "/v1/vacancies/\(id)/candidates", key: writer).items.count, 0)
        let candidate = try harness.send("POST", "/v1/vacancies/\(id)/candidates", key: writer, body: #"{"ref":"CAND-9"}"#)
        XCTAssertEqual(candidate.status, 201)
        let again = try harness.send("POST", "/v1/vacancies/\(id)/candidates", key: writer, body: #"{"ref":"CAND-9"}"#)
        XCTAssertEqual(again.status, 200)
        XCTAssertEqual(again.json["id"] as? String, candidate.json["id"] as? String)
    }
}

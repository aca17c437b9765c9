import Foundation
import HeardAPI
import HeardCore
import HeardTesting
import XCTest

class CommissioningTestCase: XCTestCase {
    var harness: AccessHarness!
    var council: Registry.Tenant!
    /// involvement:write, involvement:read and free_text:read.
    var writer: String!

    override func setUp() async throws {
        harness = try await AccessHarness.start(access: .init(ratePerSecond: 1_000, burst: 1_000))
        council = try await harness.tenant("norfolk")
        writer = try await harness.key(council, scopes: [.involvementWrite, .involvementRead, .freeTextRead])
        harness.clock.hold(at: instant("2026-11-20"))
    }

    override func tearDown() async throws {
        await harness?.stop()
    }

    /// Noon (UTC) of `day`.
    func instant(_ day: String) -> Date {
        Date(timeIntervalSince1970: TimeInterval(CalendarDate(day)!.daysSince1970) * 86_400 + 43_200)
    }

    func errors(_ response: RawResponse) -> [String: String] {
        Dictionary((response.json["errors"] as? [[String: Any]] ?? []).map { ($0["field"] as? String ?? "", $0["message"] as? String ?? "") },
                   uniquingKeysWith: { first, _ in first })
    }

    func get(_ path: String, key: String? = nil) throws -> RawResponse {
        let response = try harness.send("GET", path, key: key ?? writer)
        XCTAssertEqual(response.status, 200, "\(path): \(response.text)")
        return response
    }

    /// A project at tender evaluation.
    func projectAtTender() throws -> String {
        let id = try CommissioningSamples.makeProject(harness, key: writer)
        XCTAssertEqual(try CommissioningSamples.move(harness, key: writer, id, to: "specification", on: "2026-02-01").status, 200)
        XCTAssertEqual(try CommissioningSamples.move(harness, key: writer, id, to: "tender_evaluation", on: "2026-03-01").status, 200)
        return id
    }
}

/// `/v1/commissioning-projects`: stages, the tender's totals and rankings, the award.
final class CommissioningProjectTests: CommissioningTestCase {
    func testStagesMoveForwardOneAtATimeAndBackOnlyWithAReason() async throws {
        let created = try harness.send("POST", "/v1/commissioning-projects", key: writer, body: CommissioningSamples.project())
        XCTAssertEqual(created.status, 201, created.text)
        let id = try XCTUnwrap(created.json["id"] as? String)
        XCTAssertEqual(created.json["stage"] as? String, "needs_analysis")
        let separators = try harness.send("POST", "/v1/commissioning-projects", key: writer,
                                          body: CommissioningSamples.project(title: #"\u001c\u000b"#))
        XCTAssertEqual(Array(errors(separators).keys), ["title"], "information separators and white space are no title")
        XCTAssertEqual(created.json["allowed_actions"] as? [String], ["specification"])
        XCTAssertEqual(created.header("ETag"), "\"1\"")

        // A skip forward: 409 naming the allowed moves; nothing changed.
        let skip = try CommissioningSamples.move(harness, key: writer, id, to: "tender_evaluation", on: "2026-02-01")
        XCTAssertEqual(skip.status, 409, skip.text)
        XCTAssertEqual(skip.json["allowed_actions"] as? [String], ["specification"])
        XCTAssertEqual(skip.json["state"] as? String, "needs_analysis")
        XCTAssertEqual(try CommissioningSamples.move(harness, key: writer, id, to: "specification", on: "2026-02-01").status, 200)
        let moved = try CommissioningSamples.move(harness, key: writer, id, to: "tender_evaluation", on: "2026-03-01")
        XCTAssertEqual(moved.json["stage"] as? String, "tender_evaluation")
        XCTAssertEqual(moved.json["stage_since"] as? String, "2026-03-01")
        XCTAssertEqual(moved.json["allowed_actions"] as? [String], ["specification", "needs_analysis"], "the award is POST .../award")
        let toAward = try CommissioningSamples.move(harness, key: writer, id, to: "award", on: "2026-03-02")
        XCTAssertEqual(toAward.status, 409)
        XCTAssertTrue((toAward.json["detail"] as? String ?? "").contains("/award"))

        // Back two stages: without a reason a 422, with one it moves and is kept in the history.
        let noReason = try CommissioningSamples.move(harness, key: writer, id, to: "needs_analysis", on: "2026-03-05")
        XCTAssertEqual(noReason.status, 422, noReason.text)
        XCTAssertEqual(Array(errors(noReason).keys), ["reason"])
        let early = try CommissioningSamples.move(harness, key: writer, id, to: "needs_analysis", on: "2026-02-20", reason: "x")
        XCTAssertEqual(errors(early).keys.sorted(), ["on"], "not before the last move")
        let back = try CommissioningSamples.move(harness, key: writer, id, to: "needs_analysis", on: "2026-03-05",
                                                 reason: "The needs data missed care leavers")
        XCTAssertEqual(back.status, 200, back.text)
        XCTAssertEqual(back.json["stage"] as? String, "needs_analysis")
        let history = try XCTUnwrap(back.json["history"] as? [[String: Any]])
        XCTAssertEqual(history.map { $0["to_state"] as? String }, ["needs_analysis", "specification", "tender_evaluation", "needs_analysis"])
        XCTAssertEqual(history.last?["from_state"] as? String, "tender_evaluation")
        XCTAssertEqual((history.last?["details"] as? [String: Any])?["reason"] as? String, "The needs data missed care leavers")

        // Without If-Match: 428; a stale one: 412.
        let noPrecondition = try harness.send("POST", "/v1/commissioning-projects/\(id)/transitions", key: writer, body: #"{"to":"specification"}"#)
        XCTAssertEqual(noPrecondition.status, 428)
        let stale = try harness.send("POST", "/v1/commissioning-projects/\(id)/transitions", key: writer, body: #"{"to":"specification"}"#,
                                     headers: ["If-Match": "\"2\""])
        XCTAssertEqual(stale.status, 412)

        // The stage never moves by PATCH; the other fields do.
        let etag = try XCTUnwrap(try get("/v1/commissioning-projects/\(id)").header("ETag"))
        let patchStage = try harness.send("PATCH", "/v1/commissioning-projects/\(id)", key: writer, body: #"{"stage":"closed"}"#,
                                          headers: ["If-Match": etag])
        XCTAssertEqual(Array(errors(patchStage).keys), ["stage"])
        let patched = try harness.send("PATCH", "/v1/commissioning-projects/\(id)", key: writer, body: #"{"budget_band":"over_1m"}"#,
                                       headers: ["If-Match": etag])
        XCTAssertEqual(patched.status, 200, patched.text)
        XCTAssertEqual(patched.json["budget_band"] as? String, "over_1m")
        XCTAssertEqual(patched.json["stage"] as? String, "needs_analysis")

        let list = try get("/v1/commissioning-projects?stage=needs_analysis&budget_band=over_1m")
        XCTAssertEqual(list.items.map { $0["id"] as? String }, [id])
        XCTAssertEqual(try get("/v1/commissioning-projects?stage=specification").items.count, 0)
        let csv = try harness.send("GET", "/v1/commissioning-projects?format=csv", key: writer)
        XCTAssertTrue(csv.text.hasPrefix("id,title,service,service_area,budget_band,stage,stage_since,started_on,closed_on,award_bid,award_on,award_matched_youth_ranking,"), csv.text)
    }

    /// The hand-computed tender: quality 60, value 40; three young commissioners.
    /// Youth totals: sum of weight x score over criteria and young people / (10 x 3):
    /// A (8,7,7 | 6,6,5): (60x22 + 40x17) / 30 = 2000/30 = 66.67; B (9,6,7 | 5,6,6): the same;
    /// C (7,7,7 | 5,5,5): (60x21 + 40x15) / 30 = 62. Professional: A 70, B 80.5, C 90.
    func testTotalsAndRankingsAgainstAHandComputedTender() async throws {
        let id = try projectAtTender()
        let panel = try (0..<3).map { _ in try CommissioningSamples.youngPerson(harness, key: writer) }
        let scores: [String: [String: (Int, Int)]] = [
            panel[0]: ["A": (8, 6), "B": (9, 5), "C": (7, 5)],
            panel[1]: ["A": (7, 6), "B": (6, 6), "C": (7, 5)],
            panel[2]: ["A": (7, 5), "B": (7, 6), "C": (7, 5)],
        ]
        func bids(_ weight: Int) throws -> [String: [String: Any]] {
            let put = try CommissioningSamples.putTender(harness, key: writer, id, CommissioningSamples.tender(
                youthWeight: weight, bids: [("A", "70"), ("B", "80.5"), ("C", "90")], panel: panel.map { ($0, nil) }, scores: scores))
            XCTAssertEqual(put.status, 200, put.text)
            let tender = try XCTUnwrap(put.json["tender"] as? [String: Any])
            XCTAssertEqual(tender["youth_weight_percent"] as? Int, weight)
            return Dictionary(uniqueKeysWithValues: (tender["bids"] as? [[String: Any]] ?? []).map { ($0["ref"] as? String ?? "", $0) })
        }
        func figures(_ bid: [String: Any]?) -> [Double] {
            ["professional_total", "youth_total", "combined_total"].map { (bid?[$0] as? NSNumber)?.doubleValue ?? -1 }
        }
        func ranks(_ bid: [String: Any]?) -> [Int] { [bid?["youth_rank"] as? Int ?? 0, bid?["combined_rank"] as? Int ?? 0] }

        // Youth weight 0: combined is the professional total.
        var result = try bids(0)
        XCTAssertEqual(figures(result["A"]), [70, 66.67, 70])
        XCTAssertEqual(figures(result["B"]), [80.5, 66.67, 80.5])
        XCTAssertEqual(figures(result["C"]), [90, 62, 90])
        XCTAssertEqual(ranks(result["A"]), [1, 3])
        XCTAssertEqual(ranks(result["B"]), [1, 2], "A and B tie in the youth ranking: both 1")
        XCTAssertEqual(ranks(result["C"]), [3, 1], "after a tie of two, the next is 3")
        let means = try XCTUnwrap(result["A"]?["youth_criterion_means"] as? [[String: Any]])
        XCTAssertEqual(means.map { ($0["mean"] as? NSNumber)?.doubleValue }, [7.33, 5.67])

        // 30 percent: A 0.3 x 200/3 + 0.7 x 70 = 69; B 20 + 56.35 = 76.35; C 18.6 + 63 = 81.6.
        result = try bids(30)
        XCTAssertEqual(figures(result["A"]), [70, 66.67, 69])
        XCTAssertEqual(figures(result["B"]), [80.5, 66.67, 76.35])
        XCTAssertEqual(figures(result["C"]), [90, 62, 81.6])
        XCTAssertEqual([ranks(result["A"])[1], ranks(result["B"])[1], ranks(result["C"])[1]], [3, 2, 1])

        // 100 percent: combined is the youth total, and its ranking the youth ranking (1, 1, 3).
        result = try bids(100)
        XCTAssertEqual(figures(result["A"]), [70, 66.67, 66.67])
        XCTAssertEqual([ranks(result["A"])[1], ranks(result["B"])[1], ranks(result["C"])[1]], [1, 1, 3])
        let exact = try get("/v1/commissioning-projects/\(id)")
        XCTAssertTrue(exact.text.contains(#""youth_total":66.67"#), "answered as the decimal, exactly: \(exact.text)")
    }

    func testATenderIsRefusedWhenItsWeightsOrItsPanelAreWrong() async throws {
        let id = try projectAtTender()
        let trained = try CommissioningSamples.youngPerson(harness, key: writer)
        let untrained = try CommissioningSamples.youngPerson(harness, key: writer, trainedOn: nil)
        let noConsent = try CommissioningSamples.youngPerson(harness, key: writer, consentOn: nil)
        let scores = [trained: ["A": (5, 5)]]
        for criteria in [#"[{"code":"quality","title":"Q","weight":60},{"code":"value","title":"V","weight":30}]"#,
                         #"[{"code":"quality","title":"Q","weight":60},{"code":"value","title":"V","weight":50}]"#] {
            let refused = try CommissioningSamples.putTender(harness, key: writer, id, CommissioningSamples.tender(
                youthWeight: 30, bids: [("A", "70")], panel: [(trained, nil)], scores: scores, criteria: criteria))
            XCTAssertEqual(refused.status, 422, refused.text)
            XCTAssertTrue(errors(refused)["criteria"]?.contains("sum to exactly 100") == true, refused.text)
        }

        // Consent for commissioning is never waived; training is, with a reason.
        let panel = [(trained, nil), (untrained, nil), (noConsent, "Trained by the previous council")] as [(String, String?)]
        let all = Dictionary(uniqueKeysWithValues: panel.map { ($0.0, ["A": (5, 5)]) })
        let refused = try CommissioningSamples.putTender(harness, key: writer, id, CommissioningSamples.tender(
            youthWeight: 30, bids: [("A", "70")], panel: panel, scores: all))
        XCTAssertEqual(refused.status, 422)
        XCTAssertEqual(errors(refused).keys.sorted(), ["young_commissioners[1]", "young_commissioners[2]"], refused.text)
        XCTAssertTrue(errors(refused)["young_commissioners[2]"]?.contains("consent") == true)

        // Incomplete scores name youth_scores.
        let incomplete = try CommissioningSamples.putTender(harness, key: writer, id, CommissioningSamples.tender(
            youthWeight: 30, bids: [("A", "70"), ("B", "60")], panel: [(trained, nil)], scores: scores))
        XCTAssertEqual(Array(errors(incomplete).keys), ["youth_scores"], incomplete.text)

        let waived = try CommissioningSamples.putTender(harness, key: writer, id, CommissioningSamples.tender(
            youthWeight: 30, bids: [("A", "70")], panel: [(trained, nil), (untrained, "Trained by the previous council")],
            scores: [trained: ["A": (5, 5)], untrained: ["A": (6, 6)]]))
        XCTAssertEqual(waived.status, 200, waived.text)
        let young = try XCTUnwrap((waived.json["tender"] as? [String: Any])?["young_commissioners"] as? [[String: Any]])
        XCTAssertEqual(young.map { $0["trained"] as? Bool }, [true, false])
        XCTAssertEqual(young.map { $0["waived"] as? Bool }, [false, true])

        // The tender belongs to the tender_evaluation stage.
        XCTAssertEqual(try CommissioningSamples.move(harness, key: writer, id, to: "specification", on: "2026-03-02", reason: "Re-specify").status, 200)
        let late = try CommissioningSamples.putTender(harness, key: writer, id, CommissioningSamples.tender(
            youthWeight: 30, bids: [("A", "70")], panel: [(trained, nil)], scores: scores))
        XCTAssertEqual(late.status, 409, late.text)
    }

    func testTheAwardMatchesTheYouthRankingOrNotAndIsWorkedOutNeverSent() async throws {
        let person = try CommissioningSamples.youngPerson(harness, key: writer)
        let other = try CommissioningSamples.youngPerson(harness, key: writer)
        // Youth: A 60 and B 60 (tied first), C 40.
        let body = CommissioningSamples.tender(youthWeight: 30, bids: [("A", "50"), ("B", "90"), ("C", "95")], panel: [(person, nil), (other, nil)],
                                               scores: [person: ["A": (6, 6), "B": (7, 5), "C": (4, 4)], other: ["A": (6, 6), "B": (5, 7), "C": (4, 4)]])
        let matched = try projectAtTender()
        XCTAssertEqual(try CommissioningSamples.putTender(harness, key: writer, matched, body).status, 200)
        let typed = try harness.send("POST", "/v1/commissioning-projects/\(matched)/award", key: writer,
                                     body: #"{"bid":"C","award_matched_youth_ranking":true}"#, headers: ["If-Match": "*"])
        XCTAssertEqual(typed.status, 422)
        XCTAssertEqual(Array(errors(typed).keys), ["award_matched_youth_ranking"])
        let unknown = try CommissioningSamples.award(harness, key: writer, matched, bid: "D", on: "2026-04-01")
        XCTAssertEqual(Array(errors(unknown).keys), ["bid"])
        let tied = try CommissioningSamples.award(harness, key: writer, matched, bid: "B", on: "2026-04-01")
        XCTAssertEqual(tied.status, 200, tied.text)
        XCTAssertEqual(tied.json["stage"] as? String, "award")
        let award = try XCTUnwrap(tied.json["award"] as? [String: Any])
        XCTAssertEqual(award["bid"] as? String, "B")
        XCTAssertEqual(award["on"] as? String, "2026-04-01")
        XCTAssertEqual(award["matched_youth_ranking"] as? Bool, true, "B shares the first youth rank")
        let again = try CommissioningSamples.award(harness, key: writer, matched, bid: "B", on: "2026-04-02")
        XCTAssertEqual(again.status, 409)

        let notMatched = try projectAtTender()
        XCTAssertEqual(try CommissioningSamples.putTender(harness, key: writer, notMatched, body).status, 200)
        let highest = try CommissioningSamples.award(harness, key: writer, notMatched, bid: "C", on: "2026-04-01")
        XCTAssertEqual((highest.json["award"] as? [String: Any])?["matched_youth_ranking"] as? Bool, false, "C is last with the young people")

        // Back to tender evaluation: the award is undone; the history keeps it.
        let back = try CommissioningSamples.move(harness, key: writer, notMatched, to: "tender_evaluation", on: "2026-04-02",
                                                 reason: "The provider withdrew")
        XCTAssertTrue(back.json["award"] is NSNull, back.text)
        let history = try XCTUnwrap(back.json["history"] as? [[String: Any]])
        XCTAssertEqual((history.first { $0["to_state"] as? String == "award" }?["details"] as? [String: Any])?["bid"] as? String, "C")
    }

    func testInvolvementPerStageWithRungAndHours() async throws {
        let id = try CommissioningSamples.makeProject(harness, key: writer)
        let first = try CommissioningSamples.youngPerson(harness, key: writer), second = try CommissioningSamples.youngPerson(harness, key: writer)
        func activity(kind: String, rung: Int) throws -> String {
            let made = try ParticipationSamples.createdID(harness.send("POST", "/v1/activities", key: writer, body: """
                {"kind":"\(kind)","topic":"short_breaks","service_area":"children_with_disabilities","held_on":"2026-02-01","harts_rung":\(rung)}
                """), "make an activity")
            XCTAssertEqual(try ParticipationSamples.join(harness, key: writer, made, [first, second]).status, 201)
            return made
        }
        let workshop = try activity(kind: "commissioning", rung: 6)
        let survey = try activity(kind: "survey", rung: 5)
        func link(_ body: String) throws -> RawResponse {
            try harness.send("POST", "/v1/commissioning-projects/\(id)/involvement", key: writer, body: body)
        }
        let stranger = try ParticipationSamples.makeParticipant(harness, key: writer)
        let refused = try link(#"{"activity_id":"\#(survey)","stage":"specification","hours":[{"participant_id":"\#(stranger)","hours":2}]}"#)
        XCTAssertEqual(errors(refused).keys.sorted(), ["activity_id", "stage"], refused.text)
        let notThere = try link(#"{"activity_id":"\#(workshop)","stage":"needs_analysis","hours":[{"participant_id":"\#(stranger)","hours":2}]}"#)
        XCTAssertEqual(Array(errors(notThere).keys), ["hours[0].participant_id"], "did not take part")
        let linked = try link(#"{"activity_id":"\#(workshop)","stage":"needs_analysis","hours":[{"participant_id":"\#(first)","hours":2.5},{"participant_id":"\#(second)","hours":1.25}]}"#)
        XCTAssertEqual(linked.status, 201, linked.text)
        XCTAssertEqual(linked.header("ETag"), "\"2\"", "a new version: the project answers its involvement")
        let stages = try XCTUnwrap(linked.json["involvement"] as? [[String: Any]])
        XCTAssertEqual(stages.map { $0["stage"] as? String }, ["needs_analysis", "specification", "tender_evaluation", "award", "contract_monitoring"])
        XCTAssertEqual(stages.map { $0["involved"] as? Bool }, [true, false, false, false, false])
        XCTAssertEqual(stages[0]["highest_rung"] as? Int, 6)
        XCTAssertEqual(stages[0]["participation"] as? Bool, true)
        XCTAssertEqual(stages[0]["participants"] as? Int, 2)
        XCTAssertEqual((stages[0]["hours"] as? NSNumber)?.doubleValue, 3.75)
        XCTAssertTrue(stages[1]["highest_rung"] is NSNull)
        XCTAssertEqual(try link(#"{"activity_id":"\#(workshop)","stage":"needs_analysis","hours":[]}"#).status, 409, "linked once per stage")
        let nullHours = try link(#"{"activity_id":"\#(workshop)","stage":"needs_analysis","hours":null}"#)
        XCTAssertEqual(Array(errors(nullHours).keys), ["hours"], "null is no list of hours")
        let precise = try link(#"{"activity_id":"\#(workshop)","stage":"needs_analysis","hours":[{"participant_id":"\#(first)","hours":1.255}]}"#)
        XCTAssertEqual(Array(errors(precise).keys), ["hours[0].hours"])
    }
}

import Foundation
import HeardAPI
import HeardTesting
import XCTest

/// The participation figures against a fixture small enough to count by hand.
final class ParticipationReportTests: XCTestCase {
    var harness: AccessHarness!
    var council: Registry.Tenant!
    var writer: String!
    var group = ""

    override func setUp() async throws {
        harness = try await AccessHarness.start()
        council = try await harness.tenant("dudley")
        writer = try await harness.key(council, scopes: [.involvementWrite, .involvementRead])
        // Six participants: five 13_to_15 (three recorded female), one 8_to_12 with no equality data.
        var people: [String] = []
        for index in 0..<6 {
            let overrides = index == 5 ? ["equality": "null"] : index >= 3 ? ["equality": #"{"gender":"male"}"#] : [:]
            let participant = try ParticipationSamples.makeParticipant(harness, key: writer, ageBand: index == 5 ? "8_to_12" : "13_to_15",
                                                                       overrides: overrides)
            _ = try ParticipationSamples.giveConsent(harness, key: writer, to: participant, givenBy: "parent_carer", givenOn: "2026-01-01")
            people.append(participant)
        }
        group = try ParticipationSamples.makeGroup(harness, key: writer, kind: "care_leavers_forum")
        // A: rung 5, consultation, the group, care leavers, all six. B: rung 2, event, no group, education, two.
        // C: rung 7 on 2026-07-01, after the period.
        let a = try harness.send("POST", "/v1/activities", key: writer, body: #"""
            {"kind":"consultation","topic":"transport","service_area":"care_leavers","held_on":"2026-04-10","harts_rung":5,"group_id":"\#(group)"}
            """#)
        let b = try harness.send("POST", "/v1/activities", key: writer, body: #"""
            {"kind":"event","topic":"awards","service_area":"education","held_on":"2026-06-30","harts_rung":2}
            """#)
        let c = try ParticipationSamples.makeActivity(harness, key: writer, heldOn: "2026-07-01", rung: 7)
        XCTAssertEqual(try ParticipationSamples.join(harness, key: writer, ParticipationSamples.createdID(a, "create A"), people).status, 201)
        XCTAssertEqual(try ParticipationSamples.join(harness, key: writer, ParticipationSamples.createdID(b, "create B"), Array(people[0..<2])).status, 201)
        XCTAssertEqual(try ParticipationSamples.join(harness, key: writer, c, [people[5]]).status, 201)
        // Training on 2026-06-30: five current for recruitment panels; one whose course expired the day before.
        for participant in people[0..<5] { _ = try ParticipationSamples.train(harness, key: writer, participant, expiresOn: "2026-06-30") }
        _ = try ParticipationSamples.train(harness, key: writer, people[5], completedOn: "2025-06-01", expiresOn: "2026-06-29")
        // Rewards: five vouchers of £10 in the period, one after it; one payment of £25.
        XCTAssertEqual(try harness.send("POST", "/v1/participants/\(people[0])/rewards", key: writer,
                                        body: #"{"kind":"payment","value_pence":2500,"given_on":"2026-05-01"}"#).status, 201)
        for (participant, day) in zip(people, ["2026-04-10", "2026-04-10", "2026-04-10", "2026-04-10", "2026-06-30", "2026-07-01"]) {
            XCTAssertEqual(try harness.send("POST", "/v1/participants/\(participant)/rewards", key: writer,
                                            body: #"{"kind":"voucher","value_pence":1000,"given_on":"\#(day)"}"#).status, 201)
        }
    }

    override func tearDown() async throws {
        await harness?.stop()
    }

    private func rows(_ report: RawResponse, _ table: String) -> [[String: Any]] {
        let tables = report.json["tables"] as? [[String: Any]] ?? []
        return tables.first { $0["name"] as? String == table }?["rows"] as? [[String: Any]] ?? []
    }

    /// The figure `name` of the row `key` of `table`: its value (nil when null) and whether it was suppressed.
    private func figure(_ report: RawResponse, _ table: String, _ key: String, _ name: String) -> (value: Int?, suppressed: Bool?) {
        let figure = rows(report, table).first { $0["key"] as? String == key }?[name] as? [String: Any]
        return (figure?["value"] as? Int, figure?["suppressed"] as? Bool)
    }

    private func value(_ report: RawResponse, _ table: String, _ key: String, _ name: String) -> Int? {
        figure(report, table, key, name).value
    }

    func testTheFiguresMatchTheFixtureCountedByHand() async throws {
        let analyst = try await harness.key(council, scopes: [.reportsRead, .smallNumbersRead])
        let report = try harness.send("GET", "/v1/reports/participation?from=2026-04-01&to=2026-06-30", key: analyst)
        XCTAssertEqual(report.status, 200, report.text)
        XCTAssertEqual(report.json["small_numbers_suppressed"] as? Bool, false)
        func figures(_ table: String, _ key: String) -> [Int?] {
            ["activities", "participants"].map { value(report, table, key, $0) }
        }
        XCTAssertEqual(figures("totals", "all"), [2, 6])
        XCTAssertEqual(figures("by_participation", "participation"), [1, 6])
        XCTAssertEqual(figures("by_participation", "non_participation"), [1, 2])
        XCTAssertEqual(figures("by_rung", "consulted_and_informed"), [1, 6])
        XCTAssertEqual(figures("by_rung", "decoration"), [1, 2])
        XCTAssertEqual(figures("by_rung", "child_initiated_and_directed"), [0, 0], "held after the period")
        XCTAssertEqual(figures("by_kind", "consultation"), [1, 6])
        XCTAssertEqual(figures("by_kind", "event"), [1, 2])
        XCTAssertEqual(figures("by_group", group), [1, 6])
        XCTAssertEqual(figures("by_group", "none"), [1, 2])
        XCTAssertEqual(figures("by_service_area", "care_leavers"), [1, 6])
        XCTAssertEqual(figures("by_service_area", "education"), [1, 2])
        XCTAssertEqual(value(report, "participants_by_age_band", "13_to_15", "participants"), 5)
        XCTAssertEqual(value(report, "participants_by_age_band", "8_to_12", "participants"), 1)
        XCTAssertEqual(value(report, "participants_by_gender", "female", "participants"), 3)
        XCTAssertEqual(value(report, "participants_by_gender", "male", "participants"), 2)
        XCTAssertEqual(value(report, "participants_by_gender", "not_recorded", "participants"), 1)
        XCTAssertEqual(value(report, "participants_by_ethnicity", "white_british", "participants"), 3)
        XCTAssertEqual(value(report, "training_by_course", "recruitment_panel", "current"), 5)
        XCTAssertEqual(value(report, "training_by_course", "recruitment_panel", "expired"), 1)
        XCTAssertEqual(value(report, "rewards_by_kind", "voucher", "rewards"), 5)
        XCTAssertEqual(value(report, "rewards_by_kind", "voucher", "value_pence"), 5000)
        XCTAssertEqual(value(report, "rewards_by_kind", "payment", "rewards"), 1)
        XCTAssertEqual(value(report, "rewards_by_kind", "payment", "value_pence"), 2500)
        XCTAssertEqual(value(report, "rewards_by_kind", "certificate", "rewards"), 0)
    }

    func testCountsFromOneToFourAreSuppressedWithoutTheSmallNumbersScope() async throws {
        let analyst = try await harness.key(council, scopes: [.reportsRead])
        let report = try harness.send("GET", "/v1/reports/participation?from=2026-04-01&to=2026-06-30", key: analyst)
        XCTAssertEqual(report.status, 200, report.text)
        XCTAssertEqual(report.json["small_numbers_suppressed"] as? Bool, true)
        XCTAssertEqual(figure(report, "by_rung", "consulted_and_informed", "activities").value, nil, "1 activity")
        XCTAssertEqual(figure(report, "by_rung", "consulted_and_informed", "activities").suppressed, true)
        XCTAssertEqual(figure(report, "by_rung", "consulted_and_informed", "participants").value, 6)
        XCTAssertEqual(figure(report, "by_rung", "consulted_and_informed", "participants").suppressed, false)
        XCTAssertEqual(figure(report, "by_rung", "child_initiated_and_directed", "activities").value, 0, "nought points at nobody")
        XCTAssertEqual(figure(report, "by_rung", "child_initiated_and_directed", "activities").suppressed, false)
        XCTAssertEqual(value(report, "totals", "all", "participants"), 6)
        XCTAssertEqual(figure(report, "participants_by_gender", "male", "participants").suppressed, true)
        XCTAssertEqual(value(report, "rewards_by_kind", "voucher", "rewards"), 5)
        XCTAssertEqual(value(report, "rewards_by_kind", "voucher", "value_pence"), 5000)
        XCTAssertEqual(value(report, "training_by_course", "recruitment_panel", "current"), 5)
        XCTAssertEqual(figure(report, "training_by_course", "recruitment_panel", "expired").suppressed, true)
        // A reward's value is hidden with its count: one payment's value is what one young person got.
        XCTAssertEqual(figure(report, "rewards_by_kind", "payment", "value_pence").suppressed, true)
        XCTAssertEqual(figure(report, "rewards_by_kind", "certificate", "value_pence").value, 0)

        let csv = try harness.send("GET", "/v1/reports/participation?from=2026-04-01&to=2026-06-30&format=csv", key: analyst)
        XCTAssertEqual(csv.status, 200)
        let lines = csv.text.split(separator: "\r\n").map(String.init)
        XCTAssertEqual(lines.first, "table,dimension,key,figure,value,suppressed")
        XCTAssertTrue(lines.contains("by_rung,harts_rung,consulted_and_informed,activities,,true"), csv.text)
        XCTAssertTrue(lines.contains("by_rung,harts_rung,consulted_and_informed,participants,6,false"))
        XCTAssertTrue(lines.contains("rewards_by_kind,kind,voucher,value_pence,5000,false"))
        XCTAssertFalse(lines.contains { $0.hasSuffix(",1,true") || $0.hasSuffix(",2,true") }, "no small count in the export")
    }

    func testThePeriodIsRequiredAndTheScopeIsReportsRead() async throws {
        let analyst = try await harness.key(council, scopes: [.reportsRead])
        let missing = try harness.send("GET", "/v1/reports/participation?from=2026-04-01", key: analyst)
        XCTAssertEqual(missing.status, 400)
        XCTAssertEqual((missing.json["errors"] as? [[String: Any]])?.first?["field"] as? String, "to")
        XCTAssertEqual(try harness.send("GET", "/v1/reports/participation?from=2026-04-02&to=2026-04-01", key: analyst).status, 400)
        XCTAssertEqual(try harness.send("GET", "/v1/reports/participation?from=2026-04-01&to=2026-06-30", key: writer).status, 403)
        // Another council's figures are its own: nothing of Dudley's.
        let other = try await harness.key(try await harness.tenant("redcar"), scopes: [.reportsRead, .smallNumbersRead])
        let theirs = try harness.send("GET", "/v1/reports/participation?from=2026-04-01&to=2026-06-30", key: other)
        XCTAssertEqual(value(theirs, "totals", "all", "activities"), 0)
        XCTAssertEqual(rows(theirs, "by_group").count, 1, "only 'none'")
    }
}

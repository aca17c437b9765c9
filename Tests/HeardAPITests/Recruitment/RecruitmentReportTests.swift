import Foundation
import HeardAPI
import HeardTesting
import XCTest

/// `GET /v1/reports/recruitment` against a fixture counted by hand.
final class RecruitmentReportTests: XCTestCase {
    var harness: AccessHarness!
    var council: Registry.Tenant!
    var writer: String!

    private typealias Samples = RecruitmentSamples

    override func setUp() async throws {
        harness = try await AccessHarness.start()
        council = try await harness.tenant("norfolk")
        writer = try await harness.key(council, scopes: [.involvementWrite, .involvementRead])
    }

    override func tearDown() async throws {
        await harness?.stop()
    }

    private func hold(_ day: String) {
        harness.clock.hold(at: ISO8601DateFormatter().date(from: "\(day)T12:00:00Z"))
    }

    /// A vacancy with a panel of `members` on `heldOn`, candidates scored `scores` by every
    /// member on both questions, a decision and the day young people were told.
    private func vacancy(_ seniority: String, _ serviceArea: String, heldOn: String, members: [(String, String?)],
                         scores: [(String, Int)], unscored: [String] = [], decidedOn: String, appointed: String?, toldOn: String) throws {
        let id = try Samples.makeVacancy(harness, key: writer, seniority: seniority, serviceArea: serviceArea)
        let panel = try Samples.putPanel(harness, key: writer, id, Samples.panel(heldOn: heldOn, members: members))
        XCTAssertEqual(panel.status, 200, panel.text)
        try Samples.addCandidates(harness, key: writer, id, scores.map(\.0) + unscored)
        let scored = try harness.send("PUT", "/v1/vacancies/\(id)/youth-panel/scores", key: writer,
                                      body: Samples.flatScores(scores, members: members.map(\.0)))
        XCTAssertEqual(scored.status, 200, scored.text)
        let decided = try harness.send("POST", "/v1/vacancies/\(id)/decision", key: writer,
                                       body: #"{"decided_on":"\#(decidedOn)","appointed":\#(appointed.map { "\"\($0)\"" } ?? "null")}"#)
        XCTAssertEqual(decided.status, 200, decided.text)
        XCTAssertEqual(try harness.send("POST", "/v1/vacancies/\(id)/youth-told", key: writer, body: #"{"on":"\#(toldOn)","how":"meeting"}"#).status, 200)
    }

    /// (value, suppressed) of `tables[table].rows[key][name]`.
    private func figure(_ report: RawResponse, _ table: String, _ key: String, _ name: String) -> (Double?, Bool)? {
        let tables = report.json["tables"] as? [[String: Any]] ?? []
        guard let rows = tables.first(where: { $0["name"] as? String == table })?["rows"] as? [[String: Any]],
              let row = rows.first(where: { $0["key"] as? String == key }), let figure = row[name] as? [String: Any] else { return nil }
        return ((figure["value"] as? NSNumber)?.doubleValue, figure["suppressed"] as? Bool ?? false)
    }

    func testTheFiguresAgainstAFixtureCountedByHand() async throws {
        hold("2026-03-15")
        _ = try Samples.makeVacancy(harness, key: writer, seniority: "senior_leader", serviceArea: "early_help")  // recorded before the period, no panel
        hold("2026-05-01")
        _ = try Samples.makeVacancy(harness, key: writer, seniority: "practitioner", serviceArea: "children_looked_after")  // V4: in, no panel
        let late = try Samples.makeVacancy(harness, key: writer, seniority: "manager", serviceArea: "education")  // recorded in, panel after
        hold("2026-10-01")
        let trained = try Samples.makeMember(harness, key: writer), second = try Samples.makeMember(harness, key: writer)
        let untrained = try Samples.makeMember(harness, key: writer, trainingExpires: nil)
        // V1: senior, 2 seats (one waived), A 5 and B 4 scored, C not; A appointed (the youth choice); told 5 working days on.
        try vacancy("senior_leader", "children_looked_after", heldOn: "2026-06-15", members: [(trained, nil), (untrained, "Observed a panel")],
                    scores: [("A", 5), ("B", 4)], unscored: ["C"], decidedOn: "2026-06-19", appointed: "A", toldOn: "2026-06-26")
        // V2: senior, 2 seats, X 3 and Y 4; X appointed (not the youth choice); told the next working day.
        try vacancy("manager", "care_leavers", heldOn: "2026-07-01", members: [(trained, nil), (second, nil)],
                    scores: [("X", 3), ("Y", 4)], decidedOn: "2026-07-03", appointed: "X", toldOn: "2026-07-06")
        // V3: not senior, 1 seat, P scored; nobody appointed; told over the August bank holiday: 1 working day.
        try vacancy("practitioner", "care_leavers", heldOn: "2026-08-10", members: [(trained, nil)],
                    scores: [("P", 2)], decidedOn: "2026-08-28", appointed: nil, toldOn: "2026-09-01")
        XCTAssertEqual(try Samples.putPanel(harness, key: writer, late, Samples.panel(heldOn: "2026-10-01", members: [(trained, nil)])).status, 200)

        let analyst = try await harness.key(council, scopes: [.reportsRead, .smallNumbersRead])
        let path = "/v1/reports/recruitment?from=2026-04-01&to=2026-09-30"
        let full = try harness.send("GET", path, key: analyst)
        XCTAssertEqual(full.status, 200, full.text)
        XCTAssertEqual(full.json["small_numbers_suppressed"] as? Bool, false)
        let expected: [(String, String, String, Double?)] = [
            ("vacancies", "all", "vacancies", 4), ("vacancies", "all", "with_youth_panel", 3), ("vacancies", "all", "share_with_youth_panel", 0.75),
            ("vacancies", "all", "interviews_with_youth_panel", 5),
            ("vacancies", "senior", "vacancies", 2), ("vacancies", "senior", "with_youth_panel", 2),
            ("vacancies", "senior", "share_with_youth_panel", 1), ("vacancies", "senior", "interviews_with_youth_panel", 4),
            ("panel_seats", "all", "seats", 5), ("panel_seats", "all", "trained_on_the_day", 4), ("panel_seats", "all", "waived", 1),
            ("panel_seats", "all", "share_trained", 0.8),
            ("telling_young_people", "all", "told", 3), ("telling_young_people", "all", "median_working_days", 1),
            ("telling_young_people", "all", "longest_working_days", 5),
            ("youth_choice", "all", "decisions", 3), ("youth_choice", "all", "youth_choice_appointed", 1),
            ("youth_choice", "all", "share_appointed", 0.333),
            ("by_service_area", "children_looked_after", "vacancies", 2), ("by_service_area", "children_looked_after", "with_youth_panel", 1),
            ("by_service_area", "children_looked_after", "interviews_with_youth_panel", 2),
            ("by_service_area", "children_looked_after", "youth_choice_appointed", 1),
            ("by_service_area", "care_leavers", "vacancies", 2), ("by_service_area", "care_leavers", "with_youth_panel", 2),
            ("by_service_area", "care_leavers", "interviews_with_youth_panel", 3), ("by_service_area", "care_leavers", "youth_choice_appointed", 0),
            ("by_service_area", "early_help", "vacancies", 0), ("by_service_area", "education", "vacancies", 0),
        ]
        for (table, key, name, value) in expected {
            let found = figure(full, table, key, name)
            XCTAssertEqual(found?.0, value, "\(table) \(key) \(name)")
            XCTAssertEqual(found?.1, false, "\(table) \(key) \(name)")
        }

        // Without small_numbers:read: 1 to 4, and what is worked out from them, hidden; 0 and 5 shown.
        let board = try await harness.key(council, scopes: [.reportsRead])
        let suppressed = try harness.send("GET", path, key: board)
        XCTAssertEqual(suppressed.json["small_numbers_suppressed"] as? Bool, true)
        for (table, key, name, value) in [("vacancies", "all", "vacancies", nil), ("vacancies", "all", "share_with_youth_panel", nil),
                                          ("vacancies", "all", "interviews_with_youth_panel", 5), ("panel_seats", "all", "seats", 5),
                                          ("panel_seats", "all", "trained_on_the_day", nil), ("panel_seats", "all", "waived", nil),
                                          ("telling_young_people", "all", "median_working_days", nil),
                                          ("by_service_area", "early_help", "vacancies", 0)] as [(String, String, String, Double?)] {
            let found = figure(suppressed, table, key, name)
            XCTAssertEqual(found?.0, value, "\(table) \(key) \(name)")
            XCTAssertEqual(found?.1, value == nil, "\(table) \(key) \(name)")
        }

        let csv = try harness.send("GET", path + "&format=csv", key: analyst)
        XCTAssertEqual(csv.header("Content-Type"), "text/csv; charset=utf-8")
        let lines = csv.text.split(separator: "\r\n").map(String.init)
        XCTAssertEqual(lines.first, "table,dimension,key,figure,value,suppressed")
        XCTAssertTrue(lines.contains("panel_seats,all,all,waived,1,false"), csv.text)
        XCTAssertTrue(lines.contains("youth_choice,all,all,share_appointed,0.333,false"), csv.text)

        // The panel's day decides the period, and the list agrees with the report.
        XCTAssertEqual(try harness.send("GET", "/v1/vacancies?from=2026-04-01&to=2026-09-30&limit=100", key: writer).items.count, 4)
        XCTAssertEqual(figure(try harness.send("GET", "/v1/reports/recruitment?from=2026-10-01&to=2026-10-01", key: analyst),
                              "vacancies", "all", "with_youth_panel")?.0, 1)
        // Another council counts none of it.
        let elsewhere = try await harness.key(try await harness.tenant("kirklees"), scopes: [.reportsRead, .smallNumbersRead])
        XCTAssertEqual(figure(try harness.send("GET", path, key: elsewhere), "vacancies", "all", "vacancies")?.0, 0)
    }
}

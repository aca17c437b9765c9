import Foundation
import HTTPServer
@testable import HeardAPI
import HeardTesting
import Postgres
import XCTest

/// `GET /v1/reports/complaints`: the annual figures, against a fixture counted by hand, with the
/// disclosure rule (counts from 1 to 4 suppressed without small_numbers:read).
final class ComplaintReportTests: ComplaintTestCase {
    func complaint(_ overrides: [String: String] = [:]) throws -> String {
        let created = try harness.send("POST", "/v1/complaints", key: writer, body: ComplaintSamples.body(externalID: UUID().lowercased, overrides: overrides))
        XCTAssertEqual(created.status, 201, created.text)
        return try XCTUnwrap(created.json["id"] as? String)
    }

    func act(_ id: String, _ actions: [String]) throws {
        for (index, action) in actions.enumerated() {
            let response = try harness.send("POST", "/v1/complaints/\(id)/transitions", key: writer, body: action, headers: ["If-Match": "\"\(index + 1)\""])
            XCTAssertEqual(response.status, 200, "\(action): \(response.text)")
        }
    }

    /// (value, suppressed) of a figure: `tables[table].rows[key][figure]`.
    func figure(_ report: RawResponse, _ table: String, _ key: String, _ name: String, file: StaticString = #filePath, line: UInt = #line) -> (Double?, Bool)? {
        let tables = report.json["tables"] as? [[String: Any]] ?? []
        guard let rows = tables.first(where: { $0["name"] as? String == table })?["rows"] as? [[String: Any]],
              let row = rows.first(where: { $0["key"] as? String == key }), let figure = row[name] as? [String: Any] else {
            XCTFail("no \(table)/\(key)/\(name)", file: file, line: line)
            return nil
        }
        return ((figure["value"] as? NSNumber)?.doubleValue, figure["suppressed"] as? Bool ?? false)
    }

    func testTheAnnualFiguresAgainstAFixtureCountedByHand() async throws {
        // Six statutory complaints from young people (offered advocacy), two corporate ones, and
        // one received before the period. Statutory stage 1 is due 17 March 2025.
        var s: [String] = []
        for _ in 0..<6 { s.append(try complaint()) }
        let c1 = try complaint(["procedure": #""corporate""#, "complainant_role": #""parent_carer""#, "categories": #"["placement"]"#,
                                "service_area": #""fostering""#])
        _ = try complaint(["procedure": #""corporate""#, "complainant_role": #""parent_carer""#, "categories": #"["placement"]"#,
                           "service_area": #""fostering""#])
        _ = try complaint(["received_on": #""2024-12-30""#])

        try act(s[0], [#"{"action":"respond","on":"2025-03-10","outcome":"upheld"}"#,                  // 5 working days, in time
                       #"{"action":"escalate","on":"2025-03-20"}"#, #"{"action":"agree_statement","on":"2025-03-24"}"#,
                       #"{"action":"respond","on":"2025-04-01","outcome":"upheld"}"#])                  // stage 2: 6 days, in time
        try act(s[1], [#"{"action":"respond","on":"2025-03-10","outcome":"not_upheld"}"#,              // 5, in time
                       #"{"action":"escalate","on":"2025-03-21"}"#, #"{"action":"withdraw","on":"2025-03-25"}"#,
                       #"{"action":"close","on":"2025-03-26"}"#])
        try act(s[2], [#"{"action":"respond","on":"2025-03-20","outcome":"partly_upheld"}"#])          // 13, late
        try act(s[3], [#"{"action":"respond","on":"2025-03-14","outcome":"upheld"}"#])                 // 9, in time
        try act(s[4], [#"{"action":"respond","on":"2025-03-17","outcome":"not_upheld"}"#])             // 10, on the day: in time
        try act(c1, [#"{"action":"acknowledge","on":"2025-03-04"}"#,
                     #"{"action":"respond","on":"2025-03-10","outcome":"not_upheld"}"#,                // 4 after the acknowledgement, in time
                     #"{"action":"close","on":"2025-03-11"}"#])
        for (index, id) in s.prefix(5).enumerated() {
            let added = try harness.send("POST", "/v1/complaints/\(id)/learning-actions", key: writer,
                                         body: #"{"action":"Lesson \#(index)","status":"\#(index == 0 ? "done" : "planned")"}"#)
            XCTAssertEqual(added.status, 201, added.text)
        }

        let analyst = try await harness.key(council, scopes: [.reportsRead, .smallNumbersRead])
        let full = try harness.send("GET", "/v1/reports/complaints?from=2025-01-01&to=2025-12-31", key: analyst)
        XCTAssertEqual(full.status, 200, full.text)
        XCTAssertEqual(full.json["small_numbers_suppressed"] as? Bool, false)
        let expected: [(String, String, String, Double?)] = [
            ("total", "all", "complaints", 8),
            ("procedure", "statutory_children_act", "complaints", 6), ("procedure", "corporate", "complaints", 2),
            ("stage_reached", "1", "complaints", 6), ("stage_reached", "2", "complaints", 2), ("stage_reached", "3", "complaints", 0),
            ("status", "received", "complaints", 2), ("status", "responded", "complaints", 4), ("status", "closed", "complaints", 2),
            ("status", "withdrawn", "complaints", 0),
            ("outcome", "upheld", "complaints", 2), ("outcome", "partly_upheld", "complaints", 1), ("outcome", "not_upheld", "complaints", 2),
            ("outcome", "withdrawn", "complaints", 1), ("outcome", "pending", "complaints", 2),
            ("service_area", "children_looked_after", "complaints", 6), ("service_area", "fostering", "complaints", 2),
            ("category", "communication", "complaints", 6), ("category", "delay", "complaints", 6), ("category", "placement", "complaints", 2),
            ("responses", "1", "responded", 6), ("responses", "1", "within_time", 5), ("responses", "1", "share_within_time", 0.833),
            ("responses", "1", "median_working_days", 7), ("responses", "2", "responded", 1), ("responses", "2", "within_time", 1),
            ("responses", "2", "median_working_days", 6), ("responses", "3", "responded", 0), ("responses", "3", "median_working_days", nil),
            ("escalation", "1", "responded", 6), ("escalation", "1", "escalated", 2), ("escalation", "1", "rate", 0.333),
            ("escalation", "2", "responded", 1), ("escalation", "2", "escalated", 0), ("escalation", "2", "rate", 0),
            ("children_and_young_people", "all", "complainants", 6), ("children_and_young_people", "all", "offered_advocacy", 6),
            ("learning_actions", "planned", "actions", 4), ("learning_actions", "done", "actions", 1), ("learning_actions", "in_progress", "actions", 0),
        ]
        for (table, key, name, value) in expected {
            let found = figure(full, table, key, name)
            XCTAssertEqual(found?.0, value, "\(table)/\(key)/\(name)")
            XCTAssertEqual(found?.1, false, "\(table)/\(key)/\(name)")
        }

        // Without small_numbers:read, every count from 1 to 4 is null and suppressed, and so is
        // anything worked out from one; 0 and 5 or more are shown.
        let plain = try await harness.key(council, scopes: [.reportsRead])
        let suppressed = try harness.send("GET", "/v1/reports/complaints?from=2025-01-01&to=2025-12-31", key: plain)
        XCTAssertEqual(suppressed.json["small_numbers_suppressed"] as? Bool, true)
        for (table, key, name, value) in expected {
            let found = figure(suppressed, table, key, name)
            let small: Bool = switch (table, key, name) {
            case ("responses", "1", "share_within_time"), ("responses", "1", "median_working_days"): false  // from 5 and 6
            case ("responses", "2", _), ("escalation", "1", "rate"), ("escalation", "2", "rate"): true
            default: value.map { (1...4).contains(Int($0)) } ?? false
            }
            XCTAssertEqual(found?.1, small, "\(table)/\(key)/\(name) suppressed")
            XCTAssertEqual(found?.0, small ? nil : value, "\(table)/\(key)/\(name)")
        }

        let csv = try harness.send("GET", "/v1/reports/complaints?from=2025-01-01&to=2025-12-31&format=csv", key: plain)
        XCTAssertEqual(csv.status, 200)
        XCTAssertEqual(csv.header("Content-Disposition"), #"attachment; filename="complaints-report.csv""#)
        let lines = csv.text.split(separator: "\r\n").map(String.init)
        XCTAssertEqual(lines.first, "table,dimension,key,figure,value,suppressed")
        XCTAssertTrue(lines.contains("procedure,procedure,statutory_children_act,complaints,6,false"))
        XCTAssertTrue(lines.contains("procedure,procedure,corporate,complaints,,true"))
        XCTAssertTrue(lines.contains("responses,stage,1,share_within_time,0.833,false"))

        // The period is whole days of receipt; earlier receipts are left out.
        let winter = try harness.send("GET", "/v1/reports/complaints?from=2024-12-01&to=2024-12-31", key: analyst)
        XCTAssertEqual(figure(winter, "total", "all", "complaints")?.0, 1)
        for bad in ["from=2025-01-01", "to=2025-01-01", "from=2025-02-01&to=2025-01-01", "from=2025-01-01&to=2025-12-31&stage=1",
                    "from=2000-01-01&to=2025-12-31"] {
            XCTAssertEqual(try harness.send("GET", "/v1/reports/complaints?\(bad)", key: analyst).status, 400, bad)
        }
        XCTAssertEqual(try harness.send("GET", "/v1/reports/complaints?from=2025-01-01&to=2025-12-31", key: writer).status, 403)
        let elsewhere = try await harness.key(try await harness.tenant("walsall"), scopes: [.reportsRead, .smallNumbersRead])
        XCTAssertEqual(figure(try harness.send("GET", "/v1/reports/complaints?from=2025-01-01&to=2025-12-31", key: elsewhere), "total", "all", "complaints")?.0, 0)
    }

    /// Rows where the figures the triggers keep (migration 0019) and the figures counted afresh
    /// from the complaints and learning actions as they stand differ.
    static let figuresAdrift: PostgresQuery = """
        WITH kept AS (SELECT tenant_id, organisation_id, received_on, figure, key, count FROM complaint_figures WHERE count <> 0),
             fresh AS (SELECT c.tenant_id, c.organisation_id, c.received_on, k.figure, k.key, count(*) AS count
                         FROM complaints c,
                              complaint_figure_keys(c.procedure, c.stage, c.status, c.outcome, c.service_area, c.categories,
                                                    c.complainant_role, c.advocacy_offered, c.stage_responded_on, c.stage_on_time,
                                                    c.stage_working_days, c.stage_escalated_on) k
                        GROUP BY 1, 2, 3, 4, 5
                       UNION ALL
                       SELECT tenant_id, organisation_id, complaint_received_on, 'learning', status, count(*)
                         FROM complaint_learning_actions GROUP BY 1, 2, 3, 4, 5)
        SELECT count(*) FROM ((SELECT * FROM kept EXCEPT ALL SELECT * FROM fresh)
                              UNION ALL (SELECT * FROM fresh EXCEPT ALL SELECT * FROM kept)) AS adrift
        """

    /// The report reads figures kept as complaints change; every kind of change keeps them equal
    /// to a fresh count, and a partner's key reads only its own organisation's.
    func testTheKeptFiguresFollowEveryChangeAndStayWithinTheOrganisation() async throws {
        let partner = try await harness.organisation("advocacy", in: council)
        let partnerKey = try await harness.key(council, scopes: [.complaintsWrite, .complaintsRead, .reportsRead, .smallNumbersRead],
                                               organisation: partner)
        let ours = try complaint()
        let theirs = try XCTUnwrap(try harness.send("POST", "/v1/complaints", key: partnerKey,
                                                    body: ComplaintSamples.body(externalID: "partner-1")).json["id"] as? String)
        let afterCreates = try await harness.superuserCount(Self.figuresAdrift)
        XCTAssertEqual(afterCreates, 0, "after creates")

        try act(ours, [#"{"action":"respond","on":"2025-03-10","outcome":"upheld"}"#, #"{"action":"escalate","on":"2025-03-20"}"#])
        let action = try harness.send("POST", "/v1/complaints/\(ours)/learning-actions", key: writer, body: #"{"action":"Lesson","status":"planned"}"#)
        XCTAssertEqual(action.status, 201, action.text)
        let actionID = try XCTUnwrap(action.json["id"] as? String)
        let changed = try harness.send("PATCH", "/v1/complaints/\(ours)/learning-actions/\(actionID)", key: writer,
                                       body: #"{"status":"done"}"#, headers: ["If-Match": "\"1\""])
        XCTAssertEqual(changed.status, 200, changed.text)
        // A change refused (stale If-Match) moves nothing.
        XCTAssertEqual(try harness.send("POST", "/v1/complaints/\(theirs)/transitions", key: partnerKey,
                                        body: #"{"action":"withdraw","on":"2025-03-05"}"#, headers: ["If-Match": "\"9\""]).status, 412)
        let afterChanges = try await harness.superuserCount(Self.figuresAdrift)
        XCTAssertEqual(afterChanges, 0, "after transitions and learning actions")

        let period = "/v1/reports/complaints?from=2025-01-01&to=2025-12-31"
        let analyst = try await harness.key(council, scopes: [.reportsRead, .smallNumbersRead])
        let whole = try harness.send("GET", period, key: analyst)
        XCTAssertEqual(figure(whole, "total", "all", "complaints")?.0, 2)
        XCTAssertEqual(figure(whole, "stage_reached", "2", "complaints")?.0, 1)
        XCTAssertEqual(figure(whole, "learning_actions", "done", "actions")?.0, 1)
        XCTAssertEqual(figure(whole, "learning_actions", "planned", "actions")?.0, 0)
        let own = try harness.send("GET", period, key: partnerKey)
        XCTAssertEqual(figure(own, "total", "all", "complaints")?.0, 1)
        XCTAssertEqual(figure(own, "stage_reached", "2", "complaints")?.0, 0)
        XCTAssertEqual(figure(own, "learning_actions", "done", "actions")?.0, 0)
    }

    func testAMedianIsReadFromItsHistogramAsPercentileContWouldGiveIt() {
        XCTAssertNil(ComplaintReport.median([:]))
        XCTAssertNil(ComplaintReport.median([7: 0]))
        XCTAssertEqual(ComplaintReport.median([9: 1]), 9)
        XCTAssertEqual(ComplaintReport.median([5: 2, 9: 1, 13: 1, 10: 1]), 9)          // 5 5 9 10 13
        XCTAssertEqual(ComplaintReport.median([5: 2, 9: 1, 13: 1]), 7)                 // 5 5 9 13
        XCTAssertEqual(ComplaintReport.median([6: 3, 8: 3]), 7)                        // 6 6 6 8 8 8
        XCTAssertEqual(ComplaintReport.median([1: 1, 2: 1]), 1.5)
    }
}

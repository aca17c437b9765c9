import Foundation
import HeardAPI
import HeardTesting
import XCTest

/// Monitoring visits in the PIP model, revisits, the overdue rule, the figures and free text.
final class CommissioningVisitTests: CommissioningTestCase {
    var person: String!
    var project: String!

    override func setUp() async throws {
        try await super.setUp()
        person = try CommissioningSamples.youngPerson(harness, key: writer)
        project = try CommissioningSamples.awardedProject(harness, key: writer, person: person)
    }

    func visit(visitedOn: String = "2026-05-01", reportOn: String = "2026-05-10",
               recommendations: [(String, String)] = [("Open on Saturdays", "high"), ("Ask us about the menu", "low")]) throws -> [String: Any] {
        let made = try CommissioningSamples.makeVisit(harness, key: writer, project: project, visitedOn: visitedOn, reportOn: reportOn,
                                                      visitors: [person], recommendations: recommendations)
        XCTAssertEqual(made.status, 201, made.text)
        return made.json
    }

    func revisit(_ id: String, _ body: String) throws -> RawResponse {
        try harness.send("POST", "/v1/visits/\(id)/revisit", key: writer, body: body)
    }

    func testARevisitCoversEveryRecommendationWithTheProvidersReasonWhereNotDone() async throws {
        let made = try visit()
        let id = try XCTUnwrap(made["id"] as? String)
        XCTAssertEqual(made["revisit_due_on"] as? String, "2026-11-10")
        XCTAssertEqual(made["visitors"] as? [String], [person])
        let recommendations = try XCTUnwrap(made["recommendations"] as? [[String: Any]]).compactMap { $0["id"] as? String }
        XCTAssertEqual(recommendations.count, 2)

        let noReason = try revisit(id, #"{"on":"2026-11-01","outcomes":[{"recommendation_id":"\#(recommendations[0])","outcome":"implemented"},{"recommendation_id":"\#(recommendations[1])","outcome":"not_implemented"}]}"#)
        XCTAssertEqual(noReason.status, 422)
        XCTAssertEqual(Array(errors(noReason).keys), ["outcomes[1].reason"], noReason.text)
        let partial = try revisit(id, #"{"on":"2026-11-01","outcomes":[{"recommendation_id":"\#(recommendations[0])","outcome":"partly_implemented"}]}"#)
        XCTAssertEqual(errors(partial).keys.sorted(), ["outcomes", "outcomes[0].reason"], partial.text)
        let beforeReport = try revisit(id, #"{"on":"2026-05-09","outcomes":[{"recommendation_id":"\#(recommendations[0])","outcome":"implemented"},{"recommendation_id":"\#(recommendations[1])","outcome":"implemented"}]}"#)
        XCTAssertEqual(Array(errors(beforeReport).keys), ["on"])

        let done = try revisit(id, #"{"on":"2026-11-01","outcomes":[{"recommendation_id":"\#(recommendations[0])","outcome":"implemented"},{"recommendation_id":"\#(recommendations[1])","outcome":"not_implemented","reason":"The kitchen contract runs to 2027"}]}"#)
        XCTAssertEqual(done.status, 200, done.text)
        XCTAssertEqual(done.json["status"] as? String, "revisited")
        XCTAssertEqual(done.json["revisited_on"] as? String, "2026-11-01")
        XCTAssertEqual((done.json["recommendations"] as? [[String: Any]])?.map { $0["outcome"] as? String }, ["implemented", "not_implemented"])
        let twice = try revisit(id, #"{"on":"2026-11-02","outcomes":[]}"#)
        XCTAssertEqual(twice.status, 409)

        // Visits are recorded from the award on.
        let early = try CommissioningSamples.makeProject(harness, key: writer)
        let refused = try CommissioningSamples.makeVisit(harness, key: writer, project: early, visitors: [person])
        XCTAssertEqual(refused.status, 409, refused.text)
    }

    /// Six calendar months after a report of 31 August is 28 February (the month has no 31st):
    /// on that day the report is six months old, not more; overdue from 1 March.
    func testOverdueRevisitsOnTheBoundaryDay() async throws {
        let monthEnd = try XCTUnwrap(try visit(visitedOn: "2026-08-20", reportOn: "2026-08-31")["id"] as? String)
        let midMonth = try XCTUnwrap(try visit(visitedOn: "2026-02-10", reportOn: "2026-02-15")["id"] as? String)
        XCTAssertEqual(try get("/v1/visits/\(monthEnd)").json["revisit_due_on"] as? String, "2027-02-28")
        XCTAssertEqual(try get("/v1/visits/\(midMonth)").json["revisit_due_on"] as? String, "2026-08-15")

        func overdue(asOf day: String) throws -> Set<String> {
            Set(try get("/v1/visits?revisit_overdue=true&as_of=\(day)").items.compactMap { $0["id"] as? String })
        }
        XCTAssertEqual(try overdue(asOf: "2026-08-15"), [])
        XCTAssertEqual(try overdue(asOf: "2026-08-16"), [midMonth])
        XCTAssertEqual(try overdue(asOf: "2027-02-28"), [midMonth])
        XCTAssertEqual(try overdue(asOf: "2027-03-01"), [midMonth, monthEnd])
        let notOverdue = try get("/v1/visits?revisit_overdue=false&as_of=2027-02-28").items.compactMap { $0["id"] as? String }
        XCTAssertEqual(notOverdue, [monthEnd])

        // The day defaults to the service's today.
        harness.clock.hold(at: instant("2027-02-28"))
        XCTAssertEqual(try get("/v1/visits/\(monthEnd)").json["revisit_overdue"] as? Bool, false)
        harness.clock.hold(at: instant("2027-03-01"))
        XCTAssertEqual(try get("/v1/visits/\(monthEnd)").json["revisit_overdue"] as? Bool, true)
        XCTAssertEqual(try overdue(asOf: "2027-03-01"), try Set(get("/v1/visits?revisit_overdue=true").items.compactMap { $0["id"] as? String }))

        // Revisited on 2 March: overdue on 1 March, not from the revisit on.
        let recommendations = try XCTUnwrap(try get("/v1/visits/\(monthEnd)").json["recommendations"] as? [[String: Any]])
        harness.clock.hold(at: instant("2027-03-02"))
        let outcomes = recommendations.map { #"{"recommendation_id":"\#($0["id"] as? String ?? "")","outcome":"implemented"}"# }
        XCTAssertEqual(try revisit(monthEnd, #"{"on":"2027-03-02","outcomes":[\#(outcomes.joined(separator: ","))]}"#).status, 200)
        XCTAssertEqual(try overdue(asOf: "2027-03-01"), [midMonth, monthEnd])
        XCTAssertEqual(try overdue(asOf: "2027-03-02"), [midMonth])
        XCTAssertEqual(try get("/v1/visits/\(monthEnd)?as_of=2027-03-01").json["revisit_overdue"] as? Bool, true)
        let csv = try harness.send("GET", "/v1/visits?format=csv&as_of=2027-03-01", key: writer)
        XCTAssertTrue(csv.text.split(separator: "\r\n").first?.hasSuffix(",revisit_overdue") == true, csv.text)
    }

    func testFreeTextOnlyWithItsScope() async throws {
        let id = try XCTUnwrap(try visit()["id"] as? String)
        let recommendations = try XCTUnwrap(try get("/v1/visits/\(id)").json["recommendations"] as? [[String: Any]])
        let outcomes = recommendations.map { #"{"recommendation_id":"\#($0["id"] as? String ?? "")","outcome":"partly_implemented","reason":"Staff shortages"}"# }
        XCTAssertEqual(try revisit(id, #"{"on":"2026-06-01","outcomes":[\#(outcomes.joined(separator: ","))]}"#).status, 200)
        XCTAssertEqual(try CommissioningSamples.move(harness, key: writer, project, to: "contract_monitoring", on: "2026-06-02").status, 200)
        XCTAssertEqual(try CommissioningSamples.move(harness, key: writer, project, to: "award", on: "2026-06-03",
                                                     reason: "Monitoring began before the contract was signed").status, 200)

        let reader = try await harness.key(council, scopes: [.involvementRead])
        let withScope = try get("/v1/visits/\(id)").text, without = try get("/v1/visits/\(id)", key: reader).text
        let listed = try get("/v1/visits", key: reader).text + (try harness.send("GET", "/v1/visits?format=csv", key: reader).text)
        for text in ["Open on Saturdays", "Staff shortages"] {
            XCTAssertTrue(withScope.contains(text))
            XCTAssertFalse(without.contains(text))
            XCTAssertFalse(listed.contains(text))
        }
        let visitJSON = try get("/v1/visits/\(id)", key: reader).json
        let first = try XCTUnwrap((visitJSON["recommendations"] as? [[String: Any]])?.first)
        XCTAssertNil(first["text"])
        XCTAssertEqual(first["priority"] as? String, "high")
        let projectText = try get("/v1/commissioning-projects/\(project!)", key: reader).text
        XCTAssertFalse(projectText.contains("Monitoring began"))
        XCTAssertTrue(try get("/v1/commissioning-projects/\(project!)").text.contains("Monitoring began"))
    }

    /// The figures for 2026, as of 20 November (today): three projects open in the year (this
    /// setUp's awarded one, P2 with tokenistic involvement, P3 at specification), the awarded
    /// one's workshop (rung 6: 2.5 + 1.25 hours) and its two visits.
    func testTheFiguresAgainstAFixture() async throws {
        let second = try CommissioningSamples.youngPerson(harness, key: writer)
        let waived = try CommissioningSamples.youngPerson(harness, key: writer, trainedOn: nil)
        func activity(rung: Int, _ people: [String]) throws -> String {
            let made = try ParticipationSamples.createdID(harness.send("POST", "/v1/activities", key: writer, body: """
                {"kind":"commissioning","topic":"short_breaks","service_area":"children_with_disabilities","held_on":"2026-02-01","harts_rung":\(rung)}
                """), "make an activity")
            XCTAssertEqual(try ParticipationSamples.join(harness, key: writer, made, people).status, 201)
            return made
        }
        let workshop = try activity(rung: 6, [person, second]), tokenistic = try activity(rung: 3, [waived])
        XCTAssertEqual(try harness.send("POST", "/v1/commissioning-projects/\(project!)/involvement", key: writer, body: """
            {"activity_id":"\(workshop)","stage":"needs_analysis","hours":[{"participant_id":"\(person!)","hours":2.5},{"participant_id":"\(second)","hours":1.25}]}
            """).status, 201)
        let p2 = try CommissioningSamples.makeProject(harness, key: writer, startedOn: "2026-03-01")
        XCTAssertEqual(try harness.send("POST", "/v1/commissioning-projects/\(p2)/involvement", key: writer, body: """
            {"activity_id":"\(tokenistic)","stage":"needs_analysis","hours":[{"participant_id":"\(waived)","hours":3}]}
            """).status, 201)
        let p3 = try CommissioningSamples.makeProject(harness, key: writer, startedOn: "2025-06-01")
        XCTAssertEqual(try CommissioningSamples.move(harness, key: writer, p3, to: "specification", on: "2026-02-10").status, 200)
        // Closed in 2025: not one of the year's projects.
        let closed = try CommissioningSamples.makeProject(harness, key: writer, startedOn: "2025-01-01")
        for (stage, day) in [("specification", "2025-02-01"), ("tender_evaluation", "2025-03-01")] {
            XCTAssertEqual(try CommissioningSamples.move(harness, key: writer, closed, to: stage, on: day).status, 200)
        }
        XCTAssertEqual(try CommissioningSamples.putTender(harness, key: writer, closed, CommissioningSamples.tender(
            youthWeight: 50, bids: [("X", "50"), ("Y", "60")], panel: [(person, nil), (waived, "Trained elsewhere")],
            scores: [person: ["X": (2, 2), "Y": (9, 9)], waived: ["X": (2, 2), "Y": (9, 9)]])).status, 200)
        XCTAssertEqual(try CommissioningSamples.award(harness, key: writer, closed, bid: "X", on: "2025-04-01").status, 200)
        for (stage, day) in [("contract_monitoring", "2025-05-01"), ("closed", "2025-12-31")] {
            XCTAssertEqual(try CommissioningSamples.move(harness, key: writer, closed, to: stage, on: day).status, 200)
        }

        let first = try XCTUnwrap(try visit(visitedOn: "2026-06-10", reportOn: "2026-06-20",
                                            recommendations: [("A", "high"), ("B", "medium"), ("C", "low")])["id"] as? String)
        let ids = try XCTUnwrap(try get("/v1/visits/\(first)").json["recommendations"] as? [[String: Any]]).compactMap { $0["id"] as? String }
        XCTAssertEqual(try revisit(first, """
            {"on":"2026-10-01","outcomes":[{"recommendation_id":"\(ids[0])","outcome":"implemented"},
             {"recommendation_id":"\(ids[1])","outcome":"partly_implemented","reason":"R"},{"recommendation_id":"\(ids[2])","outcome":"not_implemented","reason":"R"}]}
            """).status, 200)
        _ = try visit(visitedOn: "2026-01-05", reportOn: "2026-01-10", recommendations: [("D", "high")])

        let analyst = try await harness.key(council, scopes: [.reportsRead, .smallNumbersRead])
        let report = try get("/v1/reports/commissioning?from=2026-01-01&to=2026-12-31", key: analyst)
        var figures: [String: Any] = [:]
        for table in report.json["tables"] as? [[String: Any]] ?? [] {
            for row in table["rows"] as? [[String: Any]] ?? [] {
                for (name, figure) in row where name != "key" {
                    figures["\(table["name"] as? String ?? "").\(row["key"] as? String ?? "").\(name)"] = (figure as? [String: Any])?["value"]
                }
            }
        }
        func value(_ name: String) -> Double? { (figures[name] as? NSNumber)?.doubleValue }
        XCTAssertEqual(value("projects_by_stage.needs_analysis.projects"), 3)
        XCTAssertEqual(value("projects_by_stage.needs_analysis.with_involvement"), 2)
        XCTAssertEqual(value("projects_by_stage.needs_analysis.share_with_involvement"), 0.667)
        XCTAssertEqual(value("projects_by_stage.needs_analysis.with_participation"), 1, "rung 3 is not participation")
        XCTAssertEqual(value("projects_by_stage.needs_analysis.participants"), 3)
        XCTAssertEqual(value("projects_by_stage.needs_analysis.hours"), 6.75)
        XCTAssertEqual(value("projects_by_stage.specification.projects"), 2)
        XCTAssertEqual(value("projects_by_stage.specification.with_involvement"), 0)
        XCTAssertEqual(value("projects_by_stage.award.projects"), 1)
        XCTAssertEqual(value("projects_by_stage.contract_monitoring.projects"), 0)
        XCTAssertEqual(value("totals.all.projects"), 3)
        XCTAssertEqual(value("totals.all.hours"), 6.75)
        XCTAssertEqual(value("young_commissioners.2026-11-20.with_current_training"), 2)
        XCTAssertEqual(value("young_commissioners.2026-11-20.on_tender_panels"), 1, "the closed project's panel is not the year's")
        XCTAssertEqual(value("young_commissioners.2026-11-20.on_tender_panels_with_waiver"), 0)
        XCTAssertEqual(value("awards.all.awards"), 1, "the 2025 award is not the year's")
        XCTAssertEqual(value("awards.all.matched_youth_ranking"), 1)
        XCTAssertEqual(value("awards.all.share_matched_youth_ranking"), 1)
        for outcome in ["implemented", "partly_implemented", "not_implemented", "awaiting_revisit"] {
            XCTAssertEqual(value("recommendations_by_outcome.\(outcome).recommendations"), 1, outcome)
            XCTAssertEqual(value("recommendations_by_outcome.\(outcome).share"), 0.25, outcome)
        }
        XCTAssertEqual(value("revisits.2026-11-20.awaiting_revisit"), 1)
        XCTAssertEqual(value("revisits.2026-11-20.overdue"), 1, "reported 10 January, due 10 July")

        // 2025: the closed project, its award that did not match.
        let earlier = try get("/v1/reports/commissioning?from=2025-01-01&to=2025-12-31", key: analyst).text
        XCTAssertTrue(earlier.contains(#""matched_youth_ranking":{"suppressed":false,"value":0}"#), earlier)

        // Without small_numbers:read a count from 1 to 4 is hidden, and the hours with it.
        let plain = try await harness.key(council, scopes: [.reportsRead])
        let hidden = try get("/v1/reports/commissioning?from=2026-01-01&to=2026-12-31&format=csv", key: plain).text
        XCTAssertTrue(hidden.contains("projects_by_stage,stage,needs_analysis,hours,,true"), hidden)
        XCTAssertTrue(hidden.contains("projects_by_stage,stage,specification,with_involvement,0,false"), hidden)

        // Another council's report counts none of it.
        let other = try await harness.key(try await harness.tenant("kirklees"), scopes: [.reportsRead, .smallNumbersRead])
        let theirs = try get("/v1/reports/commissioning?from=2026-01-01&to=2026-12-31&format=csv", key: other).text
        XCTAssertTrue(theirs.contains("totals,all,all,projects,0,false"), theirs)
        XCTAssertTrue(theirs.contains("revisits,as_of,2026-11-20,overdue,0,false"), theirs)
    }
}

import Foundation
import HeardAPI
import HeardTesting
import XCTest

/// Projects, young commissioners and tenders made through the API, as a council system would.
enum CommissioningSamples {
    static func project(title: String = "Short breaks for disabled children", startedOn: String = "2026-01-10",
                        band: String = "500k_to_1m") -> String {
        #"{"title":"\#(title)","service":"Short breaks","service_area":"children_with_disabilities","budget_band":"\#(band)","started_on":"\#(startedOn)"}"#
    }

    static func makeProject(_ harness: AccessHarness, key: String, startedOn: String = "2026-01-10") throws -> String {
        try ParticipationSamples.createdID(harness.send("POST", "/v1/commissioning-projects", key: key, body: project(startedOn: startedOn)),
                                           "create a commissioning project")
    }

    /// Moves the project to `to` on `on` with its current ETag.
    @discardableResult
    static func move(_ harness: AccessHarness, key: String, _ id: String, to: String, on: String, reason: String? = nil) throws -> RawResponse {
        let etag = try harness.send("GET", "/v1/commissioning-projects/\(id)", key: key).header("ETag") ?? "*"
        let reasonField = reason.map { #","reason":"\#($0)""# } ?? ""
        return try harness.send("POST", "/v1/commissioning-projects/\(id)/transitions", key: key,
                                body: #"{"to":"\#(to)","on":"\#(on)"\#(reasonField)}"#, headers: ["If-Match": etag])
    }

    /// A participant of 16-17 with consent for involvement and commissioning from `consentOn`,
    /// trained as a young commissioner from `trainedOn` when given.
    static func youngPerson(_ harness: AccessHarness, key: String, consentOn: String? = "2026-01-01",
                            trainedOn: String? = "2026-02-01") throws -> String {
        let participant = try ParticipationSamples.makeParticipant(harness, key: key, ageBand: "16_to_17")
        if let consentOn {
            _ = try ParticipationSamples.giveConsent(harness, key: key, to: participant, givenOn: consentOn,
                                                     purposes: #"["involvement","commissioning"]"#)
        }
        if let trainedOn {
            let trained = try harness.send("POST", "/v1/participants/\(participant)/training", key: key,
                                           body: #"{"course":"young_commissioner","completed_on":"\#(trainedOn)"}"#)
            XCTAssertEqual(trained.status, 201, trained.text)
        }
        return participant
    }

    /// A tender body: criteria quality (60) and value (40) unless given; `scores[participant][bid]`
    /// is (quality, value).
    static func tender(youthWeight: Int, bids: [(String, String)], panel: [(String, String?)], scores: [String: [String: (Int, Int)]],
                       criteria: String = #"[{"code":"quality","title":"Quality of the service","weight":60},{"code":"value","title":"Value for money","weight":40}]"#) -> String {
        let bidsJSON = bids.map { #"{"ref":"\#($0.0)","professional_total":\#($0.1)}"# }.joined(separator: ",")
        let panelJSON = panel.map { participant, waiver in
            #"{"participant_id":"\#(participant)""# + (waiver.map { #","waiver":{"reason":"\#($0)"}"# } ?? "") + "}"
        }.joined(separator: ",")
        var scoreJSON: [String] = []
        for (participant, byBid) in scores.sorted(by: { $0.key < $1.key }) {
            for (bid, (quality, value)) in byBid.sorted(by: { $0.key < $1.key }) {
                scoreJSON.append(#"{"participant_id":"\#(participant)","bid":"\#(bid)","criterion":"quality","score":\#(quality)}"#)
                scoreJSON.append(#"{"participant_id":"\#(participant)","bid":"\#(bid)","criterion":"value","score":\#(value)}"#)
            }
        }
        return #"{"criteria":\#(criteria),"bids":[\#(bidsJSON)],"youth_weight_percent":\#(youthWeight),"young_commissioners":[\#(panelJSON)],"youth_scores":[\#(scoreJSON.joined(separator: ","))]}"#
    }

    static func putTender(_ harness: AccessHarness, key: String, _ id: String, _ body: String) throws -> RawResponse {
        let etag = try harness.send("GET", "/v1/commissioning-projects/\(id)", key: key).header("ETag") ?? "*"
        return try harness.send("PUT", "/v1/commissioning-projects/\(id)/tender", key: key, body: body, headers: ["If-Match": etag])
    }

    static func award(_ harness: AccessHarness, key: String, _ id: String, bid: String, on: String) throws -> RawResponse {
        let etag = try harness.send("GET", "/v1/commissioning-projects/\(id)", key: key).header("ETag") ?? "*"
        return try harness.send("POST", "/v1/commissioning-projects/\(id)/award", key: key, body: #"{"bid":"\#(bid)","on":"\#(on)"}"#,
                                headers: ["If-Match": etag])
    }

    /// A project taken to the award with a one-bid tender scored by `person`: its id.
    static func awardedProject(_ harness: AccessHarness, key: String, person: String) throws -> String {
        let id = try makeProject(harness, key: key)
        for (stage, day) in [("specification", "2026-02-01"), ("tender_evaluation", "2026-03-01")] {
            let moved = try move(harness, key: key, id, to: stage, on: day)
            guard moved.status == 200 else { throw IsolationFailure(description: "move to \(stage): \(moved.status) \(moved.text)") }
        }
        let put = try putTender(harness, key: key, id, tender(youthWeight: 30, bids: [("A", "70")], panel: [(person, nil)],
                                                              scores: [person: ["A": (7, 7)]]))
        guard put.status == 200 else { throw IsolationFailure(description: "tender: \(put.status) \(put.text)") }
        let awarded = try award(harness, key: key, id, bid: "A", on: "2026-04-01")
        guard awarded.status == 200 else { throw IsolationFailure(description: "award: \(awarded.status) \(awarded.text)") }
        return id
    }

    static func visit(visitedOn: String, reportOn: String, visitors: [String], recommendations: [(String, String)]) -> String {
        let visitorsJSON = visitors.map { "\"\($0)\"" }.joined(separator: ",")
        let recommendationsJSON = recommendations.map { #"{"text":"\#($0.0)","priority":"\#($0.1)"}"# }.joined(separator: ",")
        return #"{"visited_on":"\#(visitedOn)","report_on":"\#(reportOn)","visitors":[\#(visitorsJSON)],"recommendations":[\#(recommendationsJSON)]}"#
    }

    static func makeVisit(_ harness: AccessHarness, key: String, project: String, visitedOn: String = "2026-05-01", reportOn: String = "2026-05-10",
                          visitors: [String], recommendations: [(String, String)] = [("Open on Saturdays", "high")]) throws -> RawResponse {
        try harness.send("POST", "/v1/commissioning-projects/\(project)/visits", key: key,
                         body: visit(visitedOn: visitedOn, reportOn: reportOn, visitors: visitors, recommendations: recommendations))
    }
}

extension IsolatedResource {
    static let commissioningProject = IsolatedResource(
        name: "commissioning_project", scopes: [.involvementWrite, .involvementRead],
        create: { harness, key in try CommissioningSamples.makeProject(harness, key: key) },
        itemPath: { "/v1/commissioning-projects/\($0)" }, reads: ["/visits"], listPath: "/v1/commissioning-projects",
        changes: [
            ("PATCH", "", #"{"title":"A stranger's"}"#), ("POST", "/transitions", #"{"to":"specification"}"#),
            ("POST", "/involvement", #"{"activity_id":"00000000-0000-4000-8000-000000000000","stage":"needs_analysis","hours":[]}"#),
            ("PUT", "/tender", #"{"criteria":[],"bids":[],"youth_weight_percent":0,"young_commissioners":[],"youth_scores":[]}"#),
            ("POST", "/award", #"{"bid":"A"}"#),
            ("POST", "/visits", #"{"visited_on":"2026-05-01","report_on":"2026-05-01","visitors":["00000000-0000-4000-8000-000000000000"],"recommendations":[]}"#),
        ],
        deletable: false, csv: true,
        routes: ["POST /v1/commissioning-projects", "GET /v1/commissioning-projects/{id}", "GET /v1/commissioning-projects",
                 "PATCH /v1/commissioning-projects/{id}", "POST /v1/commissioning-projects/{id}/transitions",
                 "POST /v1/commissioning-projects/{id}/involvement", "PUT /v1/commissioning-projects/{id}/tender",
                 "POST /v1/commissioning-projects/{id}/award", "GET /v1/commissioning-projects/{id}/visits"])

    static let commissioningVisit = IsolatedResource(
        name: "commissioning_visit", scopes: [.involvementWrite, .involvementRead],
        create: { harness, key in
            let person = try CommissioningSamples.youngPerson(harness, key: key)
            let project = try CommissioningSamples.awardedProject(harness, key: key, person: person)
            return try ParticipationSamples.createdID(CommissioningSamples.makeVisit(harness, key: key, project: project, visitors: [person]),
                                                      "record a visit")
        },
        itemPath: { "/v1/visits/\($0)" }, listPath: "/v1/visits",
        changes: [("POST", "/revisit", #"{"on":"2026-06-01","outcomes":[]}"#)], deletable: false, csv: true,
        routes: ["POST /v1/commissioning-projects/{id}/visits", "GET /v1/visits/{id}", "GET /v1/visits", "POST /v1/visits/{id}/revisit"])
}

import Foundation
import HeardAPI
import HeardTesting
import XCTest

enum RecruitmentSamples {
    static func vacancy(title: String = "Head of Service, Children in Care", seniority: String = "senior_leader",
                        serviceArea: String = "children_looked_after", sourceSystem: String? = nil, externalID: String? = nil) -> String {
        let key = sourceSystem.map { #""source_system":"\#($0)","external_id":"\#(externalID ?? "")","# } ?? ""
        return #"{\#(key)"title":"\#(title)","seniority":"\#(seniority)","service_area":"\#(serviceArea)","team":"north"}"#
    }

    static func makeVacancy(_ harness: AccessHarness, key: String, seniority: String = "senior_leader",
                            serviceArea: String = "children_looked_after") throws -> String {
        try ParticipationSamples.createdID(harness.send("POST", "/v1/vacancies", key: key, body: vacancy(seniority: seniority, serviceArea: serviceArea)),
                                           "create a vacancy")
    }

    /// A participant of 13 or over with consent for `purposes` from 2026-01-01 and, unless
    /// `trainingExpires` is nil, recruitment panel training from 2026-01-10 until that day.
    static func makeMember(_ harness: AccessHarness, key: String, purposes: String = #"["involvement","recruitment_panels"]"#,
                           trainingExpires: String? = "2027-01-09") throws -> String {
        let participant = try ParticipationSamples.makeParticipant(harness, key: key)
        _ = try ParticipationSamples.giveConsent(harness, key: key, to: participant, givenOn: "2026-01-01", purposes: purposes)
        if let trainingExpires { _ = try ParticipationSamples.train(harness, key: key, participant, expiresOn: trainingExpires) }
        return participant
    }

    /// A panel body: each member a participant id and, optionally, a waiver's reason.
    static func panel(heldOn: String = "2026-06-15", weight: Int = 25, members: [(String, String?)],
                      questions: [String] = ["values", "listening"]) -> String {
        let seats = members.map { id, waiver in
            #"{"participant_id":"\#(id)"\#(waiver.map { #","waiver":{"reason":"\#($0)"}"# } ?? "")}"#
        }.joined(separator: ",")
        let asked = questions.map { #"{"code":"\#($0)","wording":"Tell us about \#($0)"}"# }.joined(separator: ",")
        return #"{"held_on":"\#(heldOn)","weight_percent":\#(weight),"members":[\#(seats)],"questions":[\#(asked)]}"#
    }

    static func putPanel(_ harness: AccessHarness, key: String, _ vacancy: String, _ body: String) throws -> RawResponse {
        try harness.send("PUT", "/v1/vacancies/\(vacancy)/youth-panel", key: key, body: body)
    }

    static func addCandidates(_ harness: AccessHarness, key: String, _ vacancy: String, _ refs: [String]) throws {
        for ref in refs {
            let response = try harness.send("POST", "/v1/vacancies/\(vacancy)/candidates", key: key, body: #"{"ref":"\#(ref)"}"#)
            guard response.status == 201 else { throw IsolationFailure(description: "could not add a candidate: \(response.status) \(response.text)") }
        }
    }

    /// Scores as (candidate, question, member, score, comment).
    static func scores(_ scores: [(String, String, String, Int, String?)]) -> String {
        let items = scores.map { candidate, question, member, score, comment in
            let note = comment.map { #","comment":"\#($0)""# } ?? ""
            return #"{"candidate":"\#(candidate)","question":"\#(question)","member":"\#(member)","score":\#(score)\#(note)}"#
        }
        return #"{"scores":["# + items.joined(separator: ",") + "]}"
    }

    /// Every member scores each candidate `score` on every question.
    static func flatScores(_ candidates: [(String, Int)], members: [String], questions: [String] = ["values", "listening"]) -> String {
        scores(candidates.flatMap { candidate, score in
            members.flatMap { member in questions.map { (candidate, $0, member, score, nil as String?) } }
        })
    }

    static func errors(_ response: RawResponse) -> [String: String] {
        Dictionary((response.json["errors"] as? [[String: Any]] ?? []).map { ($0["field"] as? String ?? "", $0["message"] as? String ?? "") },
                   uniquingKeysWith: { first, _ in first })
    }
}

extension IsolatedResource {
    static let vacancy = IsolatedResource(
        name: "vacancy", scopes: [.involvementWrite, .involvementRead],
        create: { harness, key in
            let vacancy = try RecruitmentSamples.makeVacancy(harness, key: key)
            try RecruitmentSamples.addCandidates(harness, key: key, vacancy, ["CAND-1"])
            return vacancy
        },
        itemPath: { "/v1/vacancies/\($0)" }, reads: ["/candidates", "/youth-panel/scores"], listPath: "/v1/vacancies",
        changes: [
            ("PATCH", "", #"{"title":"A stranger's"}"#),
            ("PUT", "/youth-panel", RecruitmentSamples.panel(heldOn: "2026-01-02", members: [("00000000-0000-4000-8000-000000000000", "Stranger")])),
            ("PUT", "/youth-panel/scores", #"{"scores":[]}"#),
            ("POST", "/candidates", #"{"ref":"STRANGER"}"#),
            ("POST", "/decision", #"{"decided_on":"2026-01-02","appointed":null}"#),
            ("POST", "/youth-told", #"{"on":"2026-01-02","how":"letter"}"#),
        ],
        deletable: false, csv: true,
        routes: ["POST /v1/vacancies", "GET /v1/vacancies/{id}", "GET /v1/vacancies", "PATCH /v1/vacancies/{id}",
                 "PUT /v1/vacancies/{id}/youth-panel", "PUT /v1/vacancies/{id}/youth-panel/scores", "GET /v1/vacancies/{id}/youth-panel/scores",
                 "POST /v1/vacancies/{id}/candidates", "GET /v1/vacancies/{id}/candidates", "POST /v1/vacancies/{id}/decision",
                 "POST /v1/vacancies/{id}/youth-told"])
}

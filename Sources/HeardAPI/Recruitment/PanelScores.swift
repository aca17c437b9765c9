import Foundation
import HTTPServer
import Postgres

/// One member's score of one candidate on one question. `comment` only for a key with
/// `free_text:read`.
struct PanelScore: StoredRecord {
    var vacancyId = UUID.zero
    var candidate = ""
    var question = ""
    var member = UUID.zero
    var score = 0
    var comment: String?
    var includesFreeText = false

    static let table = Table<PanelScore>("youth_panel_scores s", [
        .column("vacancy_id", "s.vacancy_id", \.vacancyId), .column("candidate", "s.candidate_ref", \.candidate),
        .column("question", "s.question_code", \.question), .column("member", "s.participant_id", \.member),
        .column("score", "s.score", \.score), .freeText("comment", "s.comment", \.comment),
    ])
}

/// `/v1/vacancies/{id}/youth-panel/scores`: the panel's scores, replaced whole by a `PUT`; the
/// youth ranking on the vacancy is worked out from them.
enum PanelScores {
    static let maxScores = 5000

    static let list = ListEndpoint<PanelScore, Void>(
        resource: .youthPanelScore,
        filters: [.text("candidate", "s.candidate_ref"), .text("question", "s.question_code", maxLength: 63), .uuid("member", "s.participant_id")],
        order: ListOrder(ascending: [("s.seq", .bigint)]),
        csvFilename: "youth-panel-scores.csv"
    ).below(ListParent(table: "vacancies", column: "s.vacancy_id", notFound: VacancyStore.notFound))

    private struct Score {
        var candidate: String
        var question: String
        var member: UUID
        var score: Int
        var comment: String?
    }

    /// `PUT`: `{"scores": [{"candidate", "question", "member", "score", "comment"}]}`, each a
    /// candidate of the vacancy, a question and a member of its panel, a score on the panel's
    /// scale, at most one per candidate, question and member; the vacancy with its ranking.
    static func put(_ request: Request, _ context: AccessContext) async throws -> Response {
        var fields = try FieldReader(body: request.body)
        var scores: [(index: Int, score: Score)] = []
        if let readers = fields.objects("scores", maxCount: maxScores) {
            for (index, var reader) in readers.enumerated() {
                let candidate = reader.string("candidate", maxLength: 100)
                let question = reader.string("question", maxLength: 63)
                let member = reader.uuid("member")
                let score = reader.integer("score", in: 1...10)
                let comment = reader.optionalString("comment", maxLength: 2000)
                fields.absorb(reader)
                if let candidate, let question, let member, let score {
                    scores.append((index, Score(candidate: candidate, question: question, member: member, score: score, comment: comment)))
                }
            }
        } else if !fields.has("scores") || fields.isNull("scores") {
            fields.reject("scores", "is required")
        }
        let vacancy = try await VacancyStore.change(request, context) { current, tx in
            var fields = fields
            if let panel = current.youthPanel {
                let candidates = try await VacancyStore.candidateRefs(of: current.id, on: tx)
                let questions = Set(panel.questions.map(\.code)), members = Set(panel.members.map(\.participantId))
                let scale = panel.scaleMax ?? RecruitmentPanelRules.defaultScaleMax
                var seen: [String: Int] = [:]
                for (index, score) in scores {
                    let field = "scores[\(index)]"
                    if !candidates.contains(score.candidate) { fields.reject("\(field).candidate", "is not a candidate of this vacancy") }
                    if !questions.contains(score.question) { fields.reject("\(field).question", "is not a question of the youth panel") }
                    if !members.contains(score.member) { fields.reject("\(field).member", "is not a member of the youth panel") }
                    if score.score > scale { fields.reject("\(field).score", "must be from 1 to \(scale), the panel's scale") }
                    let key = "\(score.candidate)\u{0}\(score.question)\u{0}\(score.member)"
                    if let first = seen[key] {
                        fields.reject(field, "scores the same candidate on the same question by the same member as scores[\(first)]")
                    } else {
                        seen[key] = index
                    }
                }
            } else {
                fields.reject("scores", "needs the youth panel first (PUT /v1/vacancies/{id}/youth-panel)")
            }
            try fields.finish()
            let tenant = tx.principal.tenantID
            try await tx.execute("DELETE FROM youth_panel_scores WHERE tenant_id = \(tenant) AND vacancy_id = \(current.id)")
            let list = scores.map(\.score)
            try await tx.execute("""
                INSERT INTO youth_panel_scores (tenant_id, organisation_id, vacancy_id, candidate_ref, question_code, participant_id, score, comment)
                SELECT v.tenant_id, v.organisation_id, v.id, s.candidate, s.question, s.member, s.score, s.comment
                  FROM vacancies v
                 CROSS JOIN unnest(\(list.map(\.candidate))::text[], \(list.map(\.question))::text[], \(list.map(\.member))::uuid[],
                                   \(list.map(\.score))::int[], \(list.map(\.comment))::text[]) AS s (candidate, question, member, score, comment)
                 WHERE v.tenant_id = \(tenant) AND v.id = \(current.id)
                """)
            tx.audit(.update, .youthPanelScore, id: current.id.lowercased)
            return VacancyStore.Change(name: "scores", details: .object([
                ("scores", .number(String(list.count))), ("candidates", .number(String(Set(list.map(\.candidate)).count))),
            ]))
        }
        return vacancy.response(status: .ok)
    }
}

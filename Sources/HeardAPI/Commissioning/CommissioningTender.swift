import Foundation
import HTTPServer
import Postgres

/// The tender's evaluation (`PUT /v1/commissioning-projects/{id}/tender`, at the
/// tender_evaluation stage, with `If-Match`): weighted criteria, the bids with the professional
/// panel's totals, the young commissioners who scored them and their scores. Heard works out each
/// bid's youth total, combined total and both rankings, exactly (`Fraction`), rounding only what it
/// answers: to 2 decimal places, half up.
///
/// - youth total (0-100): the criteria-weighted mean of the bid's scores (0-10), times 10:
///   sum over criteria of weight x (mean score of the young commissioners) / 10;
/// - combined total: (youth weight x youth total + (100 - youth weight) x professional total) / 100;
/// - rankings: by the exact totals, highest first; equal totals share a rank (1, 1, 3).
enum CommissioningTender {
    static let maxCriteria = 20
    static let maxBids = 50
    static let maxYoungCommissioners = 50
    static let maxRefLength = 100
    static let maxScore = 10

    /// The tender as stored (`commissioning_projects.tender`): nothing in it is free text.
    struct Stored: Codable, Sendable {
        struct Criterion: Codable, Sendable {
            var code: String
            var title: String
            var weight: Int
        }

        struct Bid: Codable, Sendable {
            var ref: String
            /// The professional panel's weighted total in hundredths (80.25 is 8025).
            var professionalHundredths: Int

            enum CodingKeys: String, CodingKey {
                case ref, professionalHundredths = "professional_hundredths"
            }
        }

        struct Score: Codable, Sendable {
            var participantId: UUID
            var bid: String
            var criterion: String
            var score: Int

            enum CodingKeys: String, CodingKey {
                case participantId = "participant_id", bid, criterion, score
            }
        }

        var criteria: [Criterion]
        var bids: [Bid]
        var scores: [Score]

        static func decode(_ text: String) throws -> Stored {
            try JSONDecoder().decode(Stored.self, from: Data(text.utf8))
        }

        var json: String { String(decoding: JSON.encode(self), as: UTF8.self) }
    }

    /// What Heard works out for one bid.
    struct BidResult: Encodable, Sendable {
        struct CriterionMean: Encodable, Sendable {
            var criterion: String
            var mean: ExactDecimal
        }

        var ref: String
        var professionalTotal: ExactDecimal
        var youthTotal: ExactDecimal
        var combinedTotal: ExactDecimal
        var youthRank: Int
        var combinedRank: Int
        /// The young commissioners' mean score (0-10) per criterion.
        var youthCriterionMeans: [CriterionMean]

        enum CodingKeys: String, CodingKey {
            case ref, professionalTotal = "professional_total", youthTotal = "youth_total", combinedTotal = "combined_total"
            case youthRank = "youth_rank", combinedRank = "combined_rank", youthCriterionMeans = "youth_criterion_means"
        }
    }

    /// The totals and rankings of `tender`'s bids, weighted with `youthWeight` percent to the young people.
    static func evaluate(_ tender: Stored, youthWeight: Int = 0) -> [BidResult] {
        let panel = Set(tender.scores.map(\.participantId)).count
        var sums: [String: [String: Int]] = [:]
        for score in tender.scores { sums[score.bid, default: [:]][score.criterion, default: 0] += score.score }
        let youth: [Fraction] = tender.bids.map { bid in
            tender.criteria.reduce(Fraction(0)) { total, criterion in
                total + Fraction(criterion.weight * (sums[bid.ref]?[criterion.code] ?? 0), 10 * max(panel, 1))
            }
        }
        let combined: [Fraction] = zip(tender.bids, youth).map { bid, youthTotal in
            (Fraction(youthWeight) * youthTotal + Fraction(100 - youthWeight) * Fraction(scaled: bid.professionalHundredths, places: 2))
                / Fraction(100)
        }
        let youthRanks = competitionRanks(youth), combinedRanks = competitionRanks(combined)
        return tender.bids.indices.map { index in
            let bid = tender.bids[index]
            return BidResult(
                ref: bid.ref, professionalTotal: Fraction(scaled: bid.professionalHundredths, places: 2).decimal(),
                youthTotal: youth[index].decimal(), combinedTotal: combined[index].decimal(),
                youthRank: youthRanks[index], combinedRank: combinedRanks[index],
                youthCriterionMeans: tender.criteria.map { criterion in
                    BidResult.CriterionMean(criterion: criterion.code,
                                            mean: Fraction(sums[bid.ref]?[criterion.code] ?? 0, max(panel, 1)).decimal())
                })
        }
    }

    /// A young commissioner as the tender answers them: `waiver_reason` only with `free_text:read`.
    struct YoungCommissioner: StoredRecord {
        var participantId = UUID.zero
        var trained = false
        var waived = false
        var waiverReason: String?
        var includesFreeText = false

        static let table = Table<YoungCommissioner>("commissioning_young_commissioners y", [
            .column("participant_id", "y.participant_id", \.participantId), .column("trained", "y.trained", \.trained),
            .column("waived", "y.waiver_reason IS NOT NULL", \.waived), .freeText("waiver_reason", "y.waiver_reason", \.waiverReason),
        ])
    }

    /// The tender as a project answers it.
    struct Answer: Encodable, Sendable {
        var recordedOn: CalendarDate
        var youthWeightPercent: Int
        var criteria: [Stored.Criterion]
        var youngCommissioners: [YoungCommissioner]
        var bids: [BidResult]
        var youthScores: [Stored.Score]

        enum CodingKeys: String, CodingKey {
            case recordedOn = "recorded_on", youthWeightPercent = "youth_weight_percent", criteria
            case youngCommissioners = "young_commissioners", bids, youthScores = "youth_scores"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(recordedOn.description, forKey: .recordedOn)
            try container.encode(youthWeightPercent, forKey: .youthWeightPercent)
            try container.encode(criteria, forKey: .criteria)
            try container.encode(youngCommissioners, forKey: .youngCommissioners)
            try container.encode(bids, forKey: .bids)
            try container.encode(youthScores.map { ["participant_id": JSONValue.string($0.participantId.lowercased), "bid": .string($0.bid),
                                                    "criterion": .string($0.criterion), "score": .number(String($0.score))] },
                                 forKey: .youthScores)
        }
    }

    /// The statement of the project's young commissioners, to send with others.
    static func panelQuery(of project: UUID, on tx: TenantTransaction, includeFreeText: Bool) -> PostgresQuery {
        """
        \(unsafeRaw: YoungCommissioner.table.select(includeFreeText: includeFreeText))
         WHERE y.tenant_id = \(tx.principal.tenantID) AND y.project_id = \(project) ORDER BY y.position
        """
    }

    /// The project's tender, worked out from the project as stored and the rows of `panelQuery`;
    /// nil when none is recorded.
    static func answer(for project: CommissioningProject, panel rows: [PostgresRow], includeFreeText: Bool) throws -> Answer? {
        guard let text = project.storedTender, let weight = project.youthWeightPercent, let day = project.tenderRecordedOn else { return nil }
        let stored = try Stored.decode(text)
        let panel = try rows.map { try YoungCommissioner.table.decode($0, includeFreeText: includeFreeText) }
        return Answer(recordedOn: day, youthWeightPercent: weight, criteria: stored.criteria, youngCommissioners: panel,
                      bids: evaluate(stored, youthWeight: weight), youthScores: stored.scores)
    }

    /// The body of a `PUT`, checked for shape and sums; the young commissioners' consent and
    /// training are checked against Participation in the transaction.
    struct Input {
        var tender: Stored
        var youthWeight: Int
        var panel: [(participant: UUID, waiver: String?)]
    }

    static func read(_ body: inout FieldReader) -> Input? {
        var criteria: [Stored.Criterion] = []
        for var reader in body.requiredObjects("criteria", maxCount: maxCriteria) ?? [] {
            let code = reader.string("code", maxLength: 63)
            if let code, !ActivityRoutes.isTopicCode(code) {
                reader.reject("code", "must be a code: a lower-case letter, then 1 to 62 lower-case letters, digits or underscores")
            }
            let title = reader.string("title", maxLength: 200)
            let weight = reader.integer("weight", in: 1...100)
            if let code, criteria.contains(where: { $0.code == code }) { reader.reject("code", "names another criterion too") }
            if let code, let title, let weight { criteria.append(.init(code: code, title: title, weight: weight)) }
            body.absorb(reader)
        }
        let weights = criteria.map(\.weight).reduce(0, +)
        if body.errors.isEmpty && weights != 100 { body.reject("criteria", "weights must sum to exactly 100 (they sum to \(weights))") }

        var bids: [Stored.Bid] = []
        for var reader in body.requiredObjects("bids", maxCount: maxBids) ?? [] {
            let ref = reader.string("ref", maxLength: maxRefLength)
            let total = reader.decimal("professional_total", in: 0...100, places: 2)
            if let ref, bids.contains(where: { $0.ref == ref }) { reader.reject("ref", "names another bid too") }
            if let ref, let total { bids.append(.init(ref: ref, professionalHundredths: total)) }
            body.absorb(reader)
        }
        if body.has("bids"), bids.isEmpty, body.errors.isEmpty { body.reject("bids", "must have at least one bid") }
        let youthWeight = body.integer("youth_weight_percent", in: 0...100)

        var panel: [(participant: UUID, waiver: String?)] = []
        for var reader in body.requiredObjects("young_commissioners", maxCount: maxYoungCommissioners) ?? [] {
            let participant = reader.uuid("participant_id")
            var waiver: String?
            if var waiverReader = reader.object("waiver") {
                waiver = waiverReader.string("reason", maxLength: 2000)
                reader.absorb(waiverReader)
            }
            if let participant, panel.contains(where: { $0.participant == participant }) { reader.reject("participant_id", "names another young commissioner too") }
            if let participant { panel.append((participant, waiver)) }
            body.absorb(reader)
        }
        if body.has("young_commissioners"), panel.isEmpty, body.errors.isEmpty { body.reject("young_commissioners", "must name at least one young commissioner") }

        var scores: [Stored.Score] = []
        let maxScores = maxYoungCommissioners * maxBids * maxCriteria
        var seen = Set<String>()
        for (index, var reader) in (body.requiredObjects("youth_scores", maxCount: maxScores) ?? []).enumerated() {
            let participant = reader.uuid("participant_id")
            let bid = reader.string("bid", maxLength: maxRefLength)
            let criterion = reader.string("criterion", maxLength: 63)
            let score = reader.integer("score", in: 0...maxScore)
            if let participant, !panel.contains(where: { $0.participant == participant }) {
                reader.reject("participant_id", "is not one of the young_commissioners")
            }
            if let bid, !bids.contains(where: { $0.ref == bid }) { reader.reject("bid", "is not one of the bids") }
            if let criterion, !criteria.contains(where: { $0.code == criterion }) { reader.reject("criterion", "is not one of the criteria") }
            if let participant, let bid, let criterion, let score {
                if !seen.insert("\(participant)|\(bid)|\(criterion)").inserted {
                    body.reject("youth_scores[\(index)]", "scores the same young commissioner, bid and criterion again")
                }
                scores.append(.init(participantId: participant, bid: bid, criterion: criterion, score: score))
            }
            body.absorb(reader)
        }
        if body.errors.isEmpty {
            var missing: [String] = []
            for young in panel { for bid in bids { for criterion in criteria where !seen.contains("\(young.participant)|\(bid.ref)|\(criterion.code)") {
                missing.append("\(young.participant.lowercased) on \(bid.ref) for \(criterion.code)")
            } } }
            if let first = missing.first {
                body.reject("youth_scores", "must score every bid on every criterion by every young commissioner: \(missing.count) missing, the first \(first)")
            }
        }
        guard let youthWeight else { return nil }
        return Input(tender: Stored(criteria: criteria, bids: bids, scores: scores), youthWeight: youthWeight, panel: panel)
    }

    /// `PUT .../tender` with `If-Match`. In this order: 404, 428, 409 when the project is not at
    /// tender evaluation, 422 naming each field at fault (a young commissioner without consent
    /// for commissioning in force today, or without current young_commissioner training and no
    /// waiver: `young_commissioners[i]`), 412. The tender replaces any recorded before.
    static func put(_ request: Request, _ context: AccessContext) async throws -> Response {
        let id = try ProjectStore.projectID(request)
        let ifMatch = IfMatch(request)
        let today = WorkingDayCalendar.localDay(of: context.now)
        var body = try FieldReader(body: request.body)
        let project = try await context.transaction { tx -> CommissioningProject in
            let current = try await ProjectStore.current(id, on: tx)
            let ifMatch = try ifMatch ?? IfMatch.required(request)
            guard current.state == .tenderEvaluation else {
                var problem = HTTPError(.actionNotAllowed, detail: "The tender is recorded at the tender_evaluation stage; this project is at \(current.stage).")
                problem.extensions["state"] = .text(current.stage)
                problem.extensions["allowed_actions"] = .list(current.allowedActions)
                throw problem
            }
            let input = read(&body)
            var trained: [Bool] = []
            if let input {
                trained = try await checkPanel(input.panel, on: today, body: &body, tx: tx)
            }
            try body.finish()
            guard let input else { throw HTTPError.validation([]) }
            try ifMatch.check(current: current.etag)
            let tenant = tx.principal.tenantID
            let updated = try await tx.execute("""
                UPDATE commissioning_projects
                   SET tender = \(input.tender.json)::jsonb, youth_weight_percent = \(input.youthWeight), tender_recorded_on = \(today),
                       version = version + 1, updated_at = now()
                 WHERE tenant_id = \(tenant) AND id = \(id) AND version = \(current.version) AND stage = \(ProjectStage.tenderEvaluation.rawValue)
                """)
            guard updated == 1 else { throw IfMatch.changedMeanwhile }
            try await tx.execute("DELETE FROM commissioning_young_commissioners WHERE tenant_id = \(tenant) AND project_id = \(id)")
            try await tx.execute("""
                INSERT INTO commissioning_young_commissioners (tenant_id, organisation_id, project_id, participant_id, position, trained, waiver_reason)
                SELECT p.tenant_id, p.organisation_id, p.id, y.participant, y.n - 1, y.trained, y.waiver
                  FROM commissioning_projects p
                 CROSS JOIN unnest(\(input.panel.map(\.participant))::uuid[], \(trained)::boolean[], \(input.panel.map(\.waiver))::text[])
                            WITH ORDINALITY AS y (participant, trained, waiver, n)
                 WHERE p.tenant_id = \(tenant) AND p.id = \(id)
                """)
            return try await ProjectStore.changed(id, on: tx)
        }
        return project.response(status: .ok)
    }

    /// Asks Participation, for each young commissioner, whether they hold consent for
    /// commissioning in force on `day` (never waived) and young_commissioner training current on
    /// it (else a waiver is needed); rejects `young_commissioners[i]` when not. Whether each is trained.
    static func checkPanel(_ panel: [(participant: UUID, waiver: String?)], on day: CalendarDate, body: inout FieldReader,
                           tx: TenantTransaction) async throws -> [Bool] {
        let standing = try await ParticipationRules.standing(of: panel.map(\.participant), consentFor: .commissioning,
                                                             trainedFor: .youngCommissioner, on: day, tx: tx)
        for (index, person) in standing.enumerated() {
            let field = "young_commissioners[\(index)]"
            if !person.found {
                body.reject(field, "is not a participant of this tenant")
            } else if !person.consented {
                body.reject(field, "holds no consent for commissioning in force on \(day) (consent cannot be waived)")
            } else if !person.trained && panel[index].waiver == nil {
                body.reject(field, "has no young_commissioner training current on \(day): send a waiver with its reason")
            }
        }
        return standing.map(\.trained)
    }
}

typealias TenderAnswer = CommissioningTender.Answer

import Foundation
import HTTPServer
import Postgres

/// A vacancy as Heard answers it: the post, its youth panel (with its members and questions),
/// the youth ranking, the decision, whether the youth panel's choice was appointed, and when
/// young people were told. A waiver's reason only for a key with `free_text:read`.
struct Vacancy: AnsweredRecord {
    /// The youth panel: its day, the weight of its view, its scale, its activity in Participation.
    struct YouthPanel: StoredRecord {
        var heldOn: CalendarDate?
        var weightPercent: Int?
        var scaleMax: Int?
        var activityId: UUID?
        var members: [Member] = []
        var questions: [Question] = []

        static let table = Table<YouthPanel>("vacancies v", [
            .column("held_on", "v.panel_held_on", \.heldOn), .column("weight_percent", "v.panel_weight_percent", \.weightPercent),
            .column("scale_max", "v.panel_scale_max", \.scaleMax), .column("activity_id", "v.panel_activity_id", \.activityId),
            .computed("members", \.members), .computed("questions", \.questions),
        ])
    }

    /// A seat on the panel: the participant, whether they were trained for recruitment panels on
    /// the panel's day, and any waiver (its reason only with `free_text:read`).
    struct Member: Encodable, Sendable {
        struct Waiver: Encodable, Sendable {
            var reason: String?
            var recordedBy: UUID
            var includesFreeText: Bool

            enum CodingKeys: String, CodingKey { case reason, recordedBy = "recorded_by" }

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                if includesFreeText { try container.encode(reason, forKey: .reason) }
                try container.encode(recordedBy.lowercased, forKey: .recordedBy)
            }
        }

        var participantId: UUID
        var trained: Bool
        var waiver: Waiver?

        enum CodingKeys: String, CodingKey { case participantId = "participant_id", trained, waiver }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(participantId.lowercased, forKey: .participantId)
            try container.encode(trained, forKey: .trained)
            try container.encode(waiver, forKey: .waiver)
        }
    }

    struct Question: Encodable, Sendable {
        var code: String
        var wording: String
    }

    struct Decision: StoredRecord {
        var decidedOn: CalendarDate?
        /// The appointed candidate's ref; nil when nobody was appointed.
        var appointed: String?

        static let table = Table<Decision>("vacancies v", [
            .column("decided_on", "v.decided_on", \.decidedOn), .column("appointed", "v.appointed", \.appointed),
        ])
    }

    struct Told: StoredRecord {
        var on: CalendarDate?
        var how: String?

        static let table = Table<Told>("vacancies v", [.column("on", "v.told_on", \.on), .column("how", "v.told_how", \.how)])
    }

    var id = UUID.zero
    var sourceSystem: String?
    var externalId: String?
    var title = ""
    var seniority = ""
    var serviceArea = ""
    var team: String?
    var recordedOn = CalendarDate(daysSince1970: 0)
    var organisation: String?
    var organisationId: UUID?
    var candidateCount = 0
    var youthPanel: YouthPanel?
    var youthRanking: [YouthRanking.Entry] = []
    var decision: Decision?
    var youthChoiceAppointed: Bool?
    var youthTold: Told?
    var daysToTell: Int?
    var version = 1
    var createdAt = Date(timeIntervalSince1970: 0)
    var updatedAt = Date(timeIntervalSince1970: 0)
    var contentHash = ""
    var includesFreeText = false

    var location: String { "/v1/vacancies/\(id.lowercased)" }
    var isSenior: Bool { Seniority(rawValue: seniority)?.isSenior ?? false }

    static let table = Table<Vacancy>("vacancies v LEFT JOIN organisations o ON o.tenant_id = v.tenant_id AND o.id = v.organisation_id", [
        .column("id", "v.id", \.id), .column("source_system", "v.source_system", \.sourceSystem),
        .column("external_id", "v.external_id", \.externalId), .column("title", "v.title", \.title),
        .column("seniority", "v.seniority", \.seniority), .computed("senior", \.isSenior),
        .column("service_area", "v.service_area", \.serviceArea), .column("team", "v.team", \.team),
        .column("recorded_on", "v.recorded_on", \.recordedOn), .column("organisation", "o.slug", \.organisation),
        .column("organisation_id", "v.organisation_id", \.organisationId, hidden: true),
        .column("candidate_count", "(SELECT count(*)::int FROM vacancy_candidates c WHERE c.tenant_id = v.tenant_id AND c.vacancy_id = v.id)",
                \.candidateCount),
        .nested("youth_panel", \.youthPanel, prefix: "panel_"), .computed("youth_ranking", \.youthRanking),
        .nested("decision", \.decision), .computed("youth_choice_appointed", \.youthChoiceAppointed),
        .nested("youth_told", \.youthTold, prefix: "told_"), .computed("days_to_tell", \.daysToTell),
        .column("version", "v.version", \.version), .column("created_at", "v.created_at", \.createdAt),
        .column("updated_at", "v.updated_at", \.updatedAt), .column("content_hash", "v.content_hash", \.contentHash, hidden: true),
    ])

    /// The fields a PATCH may change, as a sender would send them.
    var inputMembers: [(key: String, value: JSONValue)] {
        [("source_system", sourceSystem.map(JSONValue.string) ?? .null), ("external_id", externalId.map(JSONValue.string) ?? .null),
         ("title", .string(title)), ("seniority", .string(seniority)), ("service_area", .string(serviceArea)),
         ("team", team.map(JSONValue.string) ?? .null)]
    }
}

/// The SQL for vacancies and what hangs off them.
enum VacancyStore {
    static let notFound = HTTPError(.notFound, detail: "There is no vacancy with this id.")

    /// Records `vacancy` unless its natural key is taken (nil then), audited.
    static func create(_ vacancy: NewVacancy, recordedOn: CalendarDate, on tx: TenantTransaction) async throws -> UUID? {
        let principal = tx.principal
        let rows = try await tx.query("""
            INSERT INTO vacancies (tenant_id, organisation_id, source_system, external_id, title, seniority, service_area, team,
                                   recorded_on, content_hash, created_by)
            VALUES (\(principal.tenantID), \(principal.organisationID), \(vacancy.sourceSystem), \(vacancy.externalID), \(vacancy.title),
                    \(vacancy.seniority.rawValue), \(vacancy.serviceArea.rawValue), \(vacancy.team), \(recordedOn), \(vacancy.contentHash),
                    \(principal.keyID))
            ON CONFLICT (tenant_id, source_system, external_id) DO NOTHING
            RETURNING id
            """)
        guard let id = try rows.first?.decode(UUID.self, column: "id") else { return nil }
        tx.audit(.create, .vacancy, id: id.lowercased)
        return id
    }

    /// The id of the vacancy holding `vacancy`'s natural key, if this key can see it.
    static func existing(_ vacancy: NewVacancy, on tx: TenantTransaction) async throws -> UUID? {
        try await tx.query("""
            SELECT id FROM vacancies
             WHERE tenant_id = \(tx.principal.tenantID) AND source_system = \(vacancy.sourceSystem) AND external_id = \(vacancy.externalID)
            """).first?.decode(UUID.self, column: "id")
    }

    /// One vacancy of the caller's tenant (and organisation), complete, or nil.
    static func find(_ id: UUID, on tx: TenantTransaction) async throws -> Vacancy? {
        let includeFreeText = tx.principal.has(.freeTextRead)
        guard let vacancy = try await Vacancy.table.find(id, on: tx, includeFreeText: includeFreeText) else { return nil }
        var vacancies = [vacancy]
        try await complete(&vacancies, calendar: try await ClosureDays.calendar(on: tx), on: tx)
        return vacancies.first
    }

    /// `GET /v1/vacancies/{id}`: the vacancy with its audit row, the council's calendar and
    /// what completes the vacancy, in one unit, one round trip (see `Table.read`).
    static func read(_ id: UUID, on tx: TenantTransaction) async throws -> Vacancy? {
        guard let (vacancy, rows) = try await Vacancy.table.read(id, on: tx, includeFreeText: tx.principal.has(.freeTextRead), audited: .vacancy,
                                                                with: [ClosureDays.allQuery(on: tx)] + completionQueries(of: [id], on: tx))
        else { return nil }
        var vacancies = [vacancy]
        try complete(&vacancies, calendar: try ClosureDays.calendar(from: rows[0]), completion: Array(rows.dropFirst()), on: tx)
        return vacancies.first
    }

    /// Fills in what is kept in other tables or worked out: the panel's members and questions,
    /// the youth ranking, whether the youth panel's choice was appointed, the working days
    /// after the decision day up to and including the day young people were told.
    static func complete(_ vacancies: inout [Vacancy], calendar: WorkingDayCalendar, on tx: TenantTransaction) async throws {
        let ids = vacancies.map(\.id)
        guard !ids.isEmpty else { return }
        try complete(&vacancies, calendar: calendar, completion: try await tx.query(completionQueries(of: ids, on: tx)), on: tx)
    }

    /// The statements whose rows complete the vacancies `ids`: panel members, questions, score
    /// totals, in the order `complete(_:calendar:completion:on:)` reads them.
    static func completionQueries(of ids: [UUID], on tx: TenantTransaction) -> [PostgresQuery] {
        let tenant = tx.principal.tenantID
        let includeFreeText = tx.principal.has(.freeTextRead)
        return ["""
            SELECT vacancy_id, participant_id, trained, \(unsafeRaw: includeFreeText ? "waiver_reason" : "NULL::text") AS waiver_reason,
                   waiver_recorded_by
              FROM youth_panel_members WHERE tenant_id = \(tenant) AND vacancy_id = ANY(\(ids)::uuid[]) ORDER BY vacancy_id, position
            """, """
            SELECT vacancy_id, code, wording FROM youth_panel_questions
             WHERE tenant_id = \(tenant) AND vacancy_id = ANY(\(ids)::uuid[]) ORDER BY vacancy_id, position
            """, scoreTotalsQuery(of: ids, on: tx)]
    }

    /// `vacancies` completed from the rows of `completionQueries`.
    private static func complete(_ vacancies: inout [Vacancy], calendar: WorkingDayCalendar, completion: [[PostgresRow]],
                                 on tx: TenantTransaction) throws {
        let includeFreeText = tx.principal.has(.freeTextRead)
        var members: [UUID: [Vacancy.Member]] = [:]
        for row in completion[0] {
            let waiver = try row.decode(UUID?.self, column: "waiver_recorded_by").map {
                Vacancy.Member.Waiver(reason: try row.decode(String?.self, column: "waiver_reason"), recordedBy: $0, includesFreeText: includeFreeText)
            }
            members[try row.decode(UUID.self, column: "vacancy_id"), default: []].append(Vacancy.Member(
                participantId: try row.decode(UUID.self, column: "participant_id"), trained: try row.decode(Bool.self, column: "trained"),
                waiver: waiver))
        }
        var questions: [UUID: [Vacancy.Question]] = [:]
        for row in completion[1] {
            questions[try row.decode(UUID.self, column: "vacancy_id"), default: []].append(Vacancy.Question(
                code: try row.decode(String.self, column: "code"), wording: try row.decode(String.self, column: "wording")))
        }
        let totals = try scoreTotals(from: completion[2])
        for index in vacancies.indices {
            let id = vacancies[index].id
            vacancies[index].youthPanel?.members = members[id] ?? []
            vacancies[index].youthPanel?.questions = questions[id] ?? []
            let ranking = YouthRanking.rank(totals[id] ?? [])
            vacancies[index].youthRanking = ranking
            let decision = vacancies[index].decision
            vacancies[index].youthChoiceAppointed = YouthRanking.choiceAppointed(ranking, decided: decision?.decidedOn != nil,
                                                                                 appointed: decision?.appointed)
            if let decided = decision?.decidedOn, let told = vacancies[index].youthTold?.on {
                vacancies[index].daysToTell = calendar.workingDays(from: decided, to: told)
            }
        }
    }

    /// Each vacancy's candidates' scores, summed.
    static func scoreTotals(of ids: [UUID], on tx: TenantTransaction) async throws -> [UUID: [YouthRanking.Total]] {
        try scoreTotals(from: try await tx.query(scoreTotalsQuery(of: ids, on: tx)))
    }

    private static func scoreTotalsQuery(of ids: [UUID], on tx: TenantTransaction) -> PostgresQuery {
        """
        SELECT vacancy_id, candidate_ref, sum(score)::int AS sum, count(*)::int AS count FROM youth_panel_scores
         WHERE tenant_id = \(tx.principal.tenantID) AND vacancy_id = ANY(\(ids)::uuid[])
         GROUP BY vacancy_id, candidate_ref
        """
    }

    private static func scoreTotals(from rows: [PostgresRow]) throws -> [UUID: [YouthRanking.Total]] {
        var totals: [UUID: [YouthRanking.Total]] = [:]
        for row in rows {
            totals[try row.decode(UUID.self, column: "vacancy_id"), default: []].append(YouthRanking.Total(
                candidate: try row.decode(String.self, column: "candidate_ref"), sum: try row.decode(Int.self, column: "sum"),
                count: try row.decode(Int.self, column: "count")))
        }
        return totals
    }

    /// A change to a vacancy: the columns it sets on the vacancy (besides its version), and
    /// what is kept of it in `vacancy_history` (never free text).
    struct Change: Sendable {
        var name: String
        var set: [SQLFragment] = []
        var details: JSONValue
    }

    /// `PATCH /v1/vacancies/{id}`, and every change below a vacancy: 428 without `If-Match` where
    /// it is required, 404 for a vacancy the key cannot see, then `work` (validation, 422, and
    /// the rows below the vacancy), then `If-Match` when sent (412 when stale), then the
    /// vacancy's new version and its history row in one statement, audited. The vacancy as it
    /// now stands.
    static func change(_ request: Request, _ context: AccessContext, ifMatchRequired: Bool = false,
                       _ work: (Vacancy, TenantTransaction) async throws -> Change) async throws -> Vacancy {
        guard let id = UUID(uuidString: request.parameter("id")) else { throw notFound }
        let ifMatch = ifMatchRequired ? try IfMatch.required(request) : IfMatch(request)
        return try await context.transaction { tx in
            guard let current = try await find(id, on: tx) else { throw notFound }
            let change = try await work(current, tx)
            // Judged on a request found valid; what `work` wrote rolls back with the 412.
            try ifMatch?.check(current: current.etag)
            let assignments = change.set + ["version = version + 1", "updated_at = now()"]
            let changed = try await tx.execute("""
                WITH changed AS (
                    UPDATE vacancies SET \(SQLFragment.joined(assignments, separator: ", "))
                     WHERE tenant_id = \(tx.principal.tenantID) AND id = \(id) AND version = \(current.version)
                    RETURNING tenant_id, organisation_id, id, version
                )
                INSERT INTO vacancy_history (tenant_id, organisation_id, vacancy_id, version, change, key_id, request_id, details)
                SELECT tenant_id, organisation_id, id, version, \(change.name), \(tx.principal.keyID), \(tx.requestID),
                       \(change.details.serialized)::jsonb
                  FROM changed
                """)
            guard changed == 1 else { throw IfMatch.changedMeanwhile }
            tx.audit(.update, .vacancy, id: id.lowercased)
            guard let vacancy = try await find(id, on: tx) else { throw notFound }
            return vacancy
        }
    }

    /// The refs of the vacancy's candidates.
    static func candidateRefs(of vacancy: UUID, on tx: TenantTransaction) async throws -> Set<String> {
        Set(try await tx.query("""
            SELECT ref FROM vacancy_candidates WHERE tenant_id = \(tx.principal.tenantID) AND vacancy_id = \(vacancy)
            """).map { try $0.decode(String.self, column: "ref") })
    }
}

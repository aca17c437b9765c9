import Foundation
import HTTPServer
import Postgres

/// A recommendation of a visit's report, and what the revisit found of it. `text` and the
/// provider's `outcome_reason` only for a key with `free_text:read`.
struct Recommendation: StoredRecord {
    var id = UUID.zero
    var visitId = UUID.zero
    var text: String?
    var priority = ""
    var outcome: String?
    var outcomeReason: String?
    var includesFreeText = false

    static let table = Table<Recommendation>("commissioning_recommendations r", [
        .column("id", "r.id", \.id), .column("visit_id", "r.visit_id", \.visitId, hidden: true), .freeText("text", "r.text", \.text),
        .column("priority", "r.priority", \.priority), .column("outcome", "r.outcome", \.outcome),
        .freeText("outcome_reason", "r.outcome_reason", \.outcomeReason),
    ])
}

/// A monitoring visit in the PIP model (seed 002): visited, reported with recommendations,
/// revisited to check each was acted on. Its revisit is due six calendar months after its report
/// (`revisit_due_on`: the same day of the month, or the month's last day when it has none, so a
/// report of 31 August is due a revisit on 28 February, or 29 in a leap year); it is
/// `revisit_overdue` on a day after that, unless revisited by then.
struct Visit: AnsweredRecord {
    var id = UUID.zero
    var projectId = UUID.zero
    var visitedOn = CalendarDate(daysSince1970: 0)
    var reportOn = CalendarDate(daysSince1970: 0)
    var revisitDueOn = CalendarDate(daysSince1970: 0)
    var status = ""
    var revisitedOn: CalendarDate?
    var revisitOverdue = false
    var visitors: [String]?
    var recommendations: [Recommendation]?
    var version = 1
    var createdAt = Date(timeIntervalSince1970: 0)
    var includesFreeText = false

    var location: String { "/v1/visits/\(id.lowercased)" }
    var state: VisitStatus { VisitStatus(rawValue: status) ?? .awaitingRevisit }
    var allowedActions: [String] { Self.lifecycle.allowedActions(in: state).map(\.rawValue) }

    static let table = Table<Visit>("commissioning_visits v", [
        .column("id", "v.id", \.id), .column("project_id", "v.project_id", \.projectId), .column("visited_on", "v.visited_on", \.visitedOn),
        .column("report_on", "v.report_on", \.reportOn), .column("revisit_due_on", "v.revisit_due_on", \.revisitDueOn),
        .column("status", "v.status", \.status), .column("revisited_on", "v.revisited_on", \.revisitedOn),
        .computed("revisit_overdue", \.revisitOverdue), .computed("visitors", \.visitors),
        .computed("recommendations", \.recommendations), .computed("allowed_actions", \.allowedActions),
        .column("version", "v.version", \.version), .column("created_at", "v.created_at", \.createdAt),
    ])

    static let lifecycle = Lifecycle<VisitStatus, VisitAction>(resource: .commissioningVisit, table: "commissioning_visits", dated: true, [
        .init(.awaitingRevisit, .revisit, .revisited),
    ])

    /// Overdue on `day`: its report more than six calendar months old, and not revisited by then.
    static func overdue(on day: CalendarDate) -> SQLFragment {
        "(v.revisit_due_on < \(day) AND (v.revisited_on IS NULL OR v.revisited_on > \(day)))"
    }

    mutating func judge(asOf day: CalendarDate) {
        revisitOverdue = revisitDueOn < day && (revisitedOn.map { $0 > day } ?? true)
    }
}

/// Monitoring visits: recorded on a project from the award on, listed per project and across the
/// tenant (`revisit_overdue=true` as of `as_of`), read, and revisited once.
struct VisitRoutes {
    let access: AccessControl

    static let notFound = HTTPError(.notFound, detail: "There is no monitoring visit with this id.")
    static let maxVisitors = 50
    static let maxRecommendations = 100

    func add(to router: inout RouterBuilder) {
        router.post("/v1/commissioning-projects/{id}/visits", access.secure(.involvementWrite, resource: .commissioningVisit, Idempotency.wrap(Self.create)))
        router.get("/v1/commissioning-projects/{id}/visits", access.secure(.involvementRead, resource: .commissioningVisit, Self.ofProject.respond))
        router.get("/v1/visits", access.secure(.involvementRead, resource: .commissioningVisit, Self.list.respond))
        router.get("/v1/visits/{id}", access.secure(.involvementRead, resource: .commissioningVisit, Self.read))
        router.post("/v1/visits/{id}/revisit", access.secure(.involvementWrite, resource: .commissioningVisit, Self.revisit))
    }

    /// The list judges its visits as of its `as_of` day (its context).
    static let list = ListEndpoint<Visit, CalendarDate>(
        resource: .commissioningVisit,
        filters: [
            .uuid("project", "v.project_id"), .vocabulary("status", VisitStatus.self, "v.status"),
            .onDay("revisit_overdue", read: { $0.bool($1) }, condition: { overdue, day in "\(Visit.overdue(on: day)) = \(overdue)" }),
        ],
        days: DayRange(column: "v.visited_on", zone: .date),
        order: ListOrder(ascending: [("v.seq", .bigint)]),
        csvFilename: "visits.csv",
        prepare: { _, request in request.asOf }
    ).takingAsOf().completing { visits, asOf, tx in
        try await complete(&visits, on: tx, asOf: asOf)
    }.exporting { columns, _ in
        columns + [CSVColumn("revisit_overdue") { $0.revisitOverdue ? "true" : "false" }]
    }

    static let ofProject = list.below(ListParent(table: "commissioning_projects", column: "v.project_id", notFound: ProjectStore.notFound))

    /// Fills in the visits' visitors and recommendations (free text as the key may read it) and
    /// judges them as of the list's day.
    static func complete(_ visits: inout [Visit], on tx: TenantTransaction, asOf: CalendarDate? = nil) async throws {
        guard !visits.isEmpty else { return }
        try complete(&visits, completion: try await tx.query(completionQueries(of: visits.map(\.id), on: tx)), on: tx, asOf: asOf)
    }

    /// The statements whose rows complete the visits `ids`: visitors, then recommendations, in
    /// the order `complete(_:completion:on:asOf:)` reads them.
    private static func completionQueries(of ids: [UUID], on tx: TenantTransaction) -> [PostgresQuery] {
        ["""
        SELECT visit_id, participant_id FROM commissioning_visitors
         WHERE tenant_id = \(tx.principal.tenantID) AND visit_id = ANY(\(ids)::uuid[]) ORDER BY visit_id, position
        """, """
        \(unsafeRaw: Recommendation.table.select(includeFreeText: tx.principal.has(.freeTextRead)))
         WHERE r.tenant_id = \(tx.principal.tenantID) AND r.visit_id = ANY(\(ids)::uuid[]) ORDER BY r.visit_id, r.position
        """]
    }

    /// `visits` completed from the rows of `completionQueries`.
    private static func complete(_ visits: inout [Visit], completion: [[PostgresRow]], on tx: TenantTransaction, asOf: CalendarDate?) throws {
        let includeFreeText = tx.principal.has(.freeTextRead)
        let visitors = try completion[0].map { (try $0.decode(UUID.self, column: "visit_id"), try $0.decode(UUID.self, column: "participant_id")) }
        let recommendations = try completion[1].map { try Recommendation.table.decode($0, includeFreeText: includeFreeText) }
        for index in visits.indices {
            let id = visits[index].id
            visits[index].visitors = visitors.filter { $0.0 == id }.map { $0.1.lowercased }
            visits[index].recommendations = recommendations.filter { $0.visitId == id }
            if let asOf { visits[index].judge(asOf: asOf) }
        }
    }

    static func find(_ id: UUID, on tx: TenantTransaction, asOf: CalendarDate) async throws -> Visit? {
        guard let visit = try await Visit.table.find(id, on: tx) else { return nil }
        var visits = [visit]
        try await complete(&visits, on: tx, asOf: asOf)
        return visits.first
    }

    /// `GET /v1/visits/{id}`: the visit with its audit row, its visitors and recommendations, in
    /// one unit, one round trip (see `Table.read`).
    static func read(_ id: UUID, on tx: TenantTransaction, asOf: CalendarDate) async throws -> Visit? {
        guard let (visit, rows) = try await Visit.table.read(id, on: tx, includeFreeText: false, audited: .commissioningVisit,
                                                            with: completionQueries(of: [id], on: tx))
        else { return nil }
        var visits = [visit]
        try complete(&visits, completion: rows, on: tx, asOf: asOf)
        return visits.first
    }

    static func visitID(_ request: Request) throws(HTTPError) -> UUID {
        guard let id = UUID(uuidString: request.parameter("id")) else { throw notFound }
        return id
    }

    static func read(_ request: Request, _ context: AccessContext) async throws -> Response {
        let id = try visitID(request)
        var query = QueryReader(request.query, allowed: ["as_of"], paged: false)
        let asOf = query.date("as_of") ?? WorkingDayCalendar.localDay(of: context.now)
        try query.finish()
        let visit = try await context.readTransaction { tx in try await read(id, on: tx, asOf: asOf) }
        return try Visit.answer(visit, request, notFound: notFound)
    }

    /// `POST /v1/commissioning-projects/{id}/visits`: `visited_on`, `visitors` (participants with
    /// consent for commissioning in force that day), `report_on` (not before the visit), and
    /// `recommendations` (`[{"text", "priority"}]`), at any stage from the award on (else 409).
    static func create(_ request: Request, _ context: AccessContext) async throws -> Response {
        let projectID = try ProjectStore.projectID(request)
        let today = WorkingDayCalendar.localDay(of: context.now)
        var body = try FieldReader(body: request.body)
        let visitedOn = body.date("visited_on", notAfter: today)
        let reportOn = body.date("report_on", notAfter: today)
        if let visitedOn, let reportOn, reportOn < visitedOn { body.reject("report_on", "must not be before visited_on") }
        let visitors = body.uuidList("visitors", maxCount: maxVisitors)
        var recommendations: [(text: String, priority: RecommendationPriority)] = []
        for var reader in body.requiredObjects("recommendations", maxCount: maxRecommendations) ?? [] {
            let text = reader.string("text", maxLength: 4000)
            let priority = reader.vocabulary("priority", RecommendationPriority.self)
            if let text, let priority { recommendations.append((text, priority)) }
            body.absorb(reader)
        }
        let visit = try await context.transaction { tx -> Visit in
            let project = try await ProjectStore.current(projectID, on: tx)
            guard ProjectStage.monitored.contains(project.state) else {
                var problem = HTTPError(.actionNotAllowed, detail: "Monitoring visits are recorded from the award on; this project is at \(project.stage).")
                problem.extensions["state"] = .text(project.stage)
                problem.extensions["allowed_actions"] = .list(project.allowedActions)
                throw problem
            }
            if let visitors, let visitedOn {
                let standing = try await ParticipationRules.standing(of: visitors, consentFor: .commissioning, on: visitedOn, tx: tx)
                for (index, person) in standing.enumerated() where !person.found || !person.consented {
                    body.reject("visitors[\(index)]", person.found ? "holds no consent for commissioning in force on \(visitedOn), the day of the visit"
                                                                  : "is not a participant of this tenant")
                }
            }
            try body.finish()
            guard let visitedOn, let reportOn, let visitors else { throw HTTPError.validation([]) }
            let principal = tx.principal
            guard let row = try await tx.query("""
                INSERT INTO commissioning_visits (tenant_id, organisation_id, project_id, visited_on, report_on, created_by)
                SELECT tenant_id, organisation_id, id, \(visitedOn), \(reportOn), \(principal.keyID)
                  FROM commissioning_projects WHERE tenant_id = \(principal.tenantID) AND id = \(projectID)
                RETURNING id
                """).first else { throw ProjectStore.notFound }
            let id = try row.decode(UUID.self, column: "id")
            try await tx.execute("""
                INSERT INTO commissioning_visitors (tenant_id, organisation_id, visit_id, participant_id, position)
                SELECT v.tenant_id, v.organisation_id, v.id, i.participant, i.n - 1
                  FROM commissioning_visits v CROSS JOIN unnest(\(visitors)::uuid[]) WITH ORDINALITY AS i (participant, n)
                 WHERE v.tenant_id = \(principal.tenantID) AND v.id = \(id)
                """)
            try await tx.execute("""
                INSERT INTO commissioning_recommendations (tenant_id, organisation_id, visit_id, position, text, priority)
                SELECT v.tenant_id, v.organisation_id, v.id, r.n - 1, r.text, r.priority
                  FROM commissioning_visits v
                 CROSS JOIN unnest(\(recommendations.map(\.text))::text[], \(recommendations.map(\.priority.rawValue))::text[])
                            WITH ORDINALITY AS r (text, priority, n)
                 WHERE v.tenant_id = \(principal.tenantID) AND v.id = \(id)
                """)
            tx.audit(.create, .commissioningVisit, id: id.lowercased)
            guard let visit = try await find(id, on: tx, asOf: today) else { throw notFound }
            return visit
        }
        return visit.response(status: .created)
    }

    /// `POST /v1/visits/{id}/revisit`: `on` (default today, never in the future, not before the
    /// report) and `outcomes` covering every recommendation once, `reason` (the provider's, free
    /// text) required for partly_implemented and not_implemented. Once: again is a 409. `If-Match`
    /// is checked when sent.
    static func revisit(_ request: Request, _ context: AccessContext) async throws -> Response {
        let id = try visitID(request)
        let ifMatch = IfMatch(request)
        let today = WorkingDayCalendar.localDay(of: context.now)
        var body = try FieldReader(body: request.body)
        var outcomes: [(recommendation: UUID, outcome: RecommendationOutcome, reason: String?, field: String)] = []
        for var reader in body.requiredObjects("outcomes", maxCount: maxRecommendations) ?? [] {
            let recommendation = reader.uuid("recommendation_id")
            let outcome = reader.vocabulary("outcome", RecommendationOutcome.self)
            let reason = reader.optionalString("reason", maxLength: 4000)
            if outcome?.needsReason == true, reason == nil, !reader.errors.contains(where: { $0.field == reader.path("reason") }) {
                reader.reject("reason", "is required when the outcome is \(outcome?.rawValue ?? ""): the provider's reason")
            }
            if let recommendation, outcomes.contains(where: { $0.recommendation == recommendation }) {
                reader.reject("recommendation_id", "appears more than once")
            }
            if let recommendation, let outcome { outcomes.append((recommendation, outcome, reason, reader.path("recommendation_id"))) }
            body.absorb(reader)
        }
        let visit = try await context.transaction { tx -> Visit in
            guard let current = try await find(id, on: tx, asOf: today) else { throw notFound }
            let transition = try Visit.lifecycle.transition(.revisit, from: current.state)
            let values = Visit.lifecycle.fields(of: transition, from: &body, today: today)
            if let on = values.on, on < current.reportOn { body.reject("on", "must not be before \(current.reportOn), the day of the report") }
            let known = Set((current.recommendations ?? []).map(\.id))
            for outcome in outcomes where !known.contains(outcome.recommendation) {
                body.reject(outcome.field, "is not a recommendation of this visit")
            }
            let missing = known.subtracting(outcomes.map(\.recommendation))
            if body.has("outcomes"), !missing.isEmpty {
                body.reject("outcomes", "must cover every recommendation of the visit: \(missing.count) missing, e.g. \(missing.first?.lowercased ?? "")")
            }
            try body.finish()
            try ifMatch?.check(current: current.etag)
            guard let on = values.on else { throw HTTPError.validation([]) }
            guard try await Visit.lifecycle.apply(transition, to: id, version: current.version, values: values,
                                                  set: ["revisited_on = \(on)"], on: tx) != nil else {
                throw IfMatch.changedMeanwhile
            }
            try await tx.execute("""
                UPDATE commissioning_recommendations r SET outcome = o.outcome, outcome_reason = o.reason
                  FROM unnest(\(outcomes.map(\.recommendation))::uuid[], \(outcomes.map(\.outcome.rawValue))::text[],
                              \(outcomes.map(\.reason))::text[]) AS o (id, outcome, reason)
                 WHERE r.tenant_id = \(tx.principal.tenantID) AND r.visit_id = \(id) AND r.id = o.id
                """)
            tx.audit(.update, .commissioningVisit, id: id.lowercased)
            guard let visit = try await find(id, on: tx, asOf: today) else { throw notFound }
            return visit
        }
        return visit.response(status: .ok)
    }
}

import Foundation
import HTTPServer
import Postgres

/// `GET /v1/reports/commissioning?from=&to=` (scope `reports:read`), JSON or CSV. The projects of
/// a period are those open in it: started on or before `to`, not closed before `from`. Figures
/// judged on a day are judged as of `to`, or today when `to` is later (the report's `as_of`).
/// - `projects_by_stage`: per stage, the period's projects that reached it, those with young
///   people involved in it (any activity linked) and its share, those with participation (an
///   activity on a rung from 4 up), the distinct participants and the hours they gave;
/// - `totals`: the same over every stage (a project counted once);
/// - `young_commissioners`: the tenant's participants with young_commissioner training current on
///   the as-of day (Participation's rule), those who scored the period's projects' tenders, and
///   of them those on a waiver;
/// - `awards`: awards made in the period, those where the awarded bid was ranked first by the
///   young people, and the share;
/// - `recommendations_by_outcome`: the recommendations of visits made in the period, by what the
///   revisit found (`awaiting_revisit` until then), with shares;
/// - `revisits`: visits reported by the as-of day and not revisited by then, and those of them
///   overdue (more than six calendar months after the report).
/// Counts from 1 to 4 are hidden without `small_numbers:read`, and so are the hours and shares
/// made from them (`Disclosure`). Hours are exact decimals.
enum CommissioningReport {
    static func respond(_ request: Request, _ context: AccessContext) async throws -> Response {
        let period = try Report.Period.read(request)
        var report = Report(from: period.from, to: period.to, disclosure: Disclosure(for: context.principal))
        let asOf = min(period.to, WorkingDayCalendar.localDay(of: context.now))
        try await context.transaction { tx in
            try await build(&report, asOf: asOf, on: tx)
            tx.audit(period.format == .csv ? .export : .read, .commissioningReport)
        }
        return report.response(format: period.format, filename: "commissioning-report.csv")
    }

    static func build(_ report: inout Report, asOf: CalendarDate, on tx: TenantTransaction) async throws {
        let tenant = tx.principal.tenantID
        let (from, to, disclosure) = (report.from, report.to, report.disclosure)
        let projects: SQLFragment = """
            SELECT p.tenant_id, p.id, p.stage FROM commissioning_projects p
             WHERE p.tenant_id = \(tenant) AND p.started_on <= \(to) AND (p.closed_on IS NULL OR p.closed_on >= \(from))
            """
        let stages = ProjectStage.involving.map(\.rawValue)

        let reached = try await tx.query("""
            WITH projects AS (\(projects))
            SELECT s.stage AS key, count(*) FILTER (WHERE r.reached)::int AS projects,
                   count(*) FILTER (WHERE r.reached AND r.involved)::int AS with_involvement,
                   count(*) FILTER (WHERE r.reached AND r.participation)::int AS with_participation
              FROM projects pr CROSS JOIN unnest(\(stages)::text[]) AS s (stage)
             CROSS JOIN LATERAL (
                   SELECT s.stage = \(ProjectStage.needsAnalysis.rawValue) OR pr.stage = s.stage
                          OR EXISTS (SELECT 1 FROM lifecycle_history h
                                      WHERE h.tenant_id = pr.tenant_id AND h.resource_type = \(AuditResource.commissioningProject.rawValue)
                                        AND h.resource_id = pr.id AND h.to_state = s.stage) AS reached,
                          EXISTS (SELECT 1 FROM commissioning_involvement i
                                   WHERE i.tenant_id = pr.tenant_id AND i.project_id = pr.id AND i.stage = s.stage) AS involved,
                          EXISTS (SELECT 1 FROM commissioning_involvement i
                                   WHERE i.tenant_id = pr.tenant_id AND i.project_id = pr.id AND i.stage = s.stage
                                     AND \(ParticipationRules.wasParticipation(tenant: "i.tenant_id", activity: "i.activity_id"))) AS participation
                   ) r
             GROUP BY s.stage
            """)
        var byStage: [String: [Int]] = [:]
        for row in reached {
            byStage[try row.decode(String.self, column: "key")] = try ["projects", "with_involvement", "with_participation"].map {
                try row.decode(Int.self, column: $0)
            }
        }
        let given = try await tx.query("""
            WITH projects AS (\(projects))
            SELECT coalesce(i.stage, 'all') AS key, count(DISTINCT i.project_id)::int AS projects,
                   count(DISTINCT h.participant_id)::int AS participants, coalesce(sum(h.hours), 0)::numeric(14, 2)::text AS hours
              FROM projects pr
              JOIN commissioning_involvement i ON i.tenant_id = pr.tenant_id AND i.project_id = pr.id
              LEFT JOIN commissioning_involvement_hours h ON h.tenant_id = i.tenant_id AND h.involvement_id = i.id
             GROUP BY ROLLUP (i.stage)
            """)
        var hours: [String: (projects: Int, participants: Int, hours: ExactDecimal)] = [:]
        for row in given {
            let hundredths = FieldReader.scaled(try row.decode(String.self, column: "hours"), places: 2) ?? 0
            hours[try row.decode(String.self, column: "key")] = (try row.decode(Int.self, column: "projects"),
                                                                  try row.decode(Int.self, column: "participants"),
                                                                  Fraction(scaled: hundredths, places: 2).decimal())
        }
        let none = (projects: 0, participants: 0, hours: ExactDecimal(text: "0"))
        report.table("projects_by_stage", dimension: "stage", rows: stages.map { stage in
            let counts = byStage[stage] ?? [0, 0, 0], given = hours[stage] ?? none
            return ReportRow(stage, [
                ("projects", disclosure.count(counts[0])), ("with_involvement", disclosure.count(counts[1])),
                ("share_with_involvement", disclosure.share(counts[1], of: counts[0])),
                ("with_participation", disclosure.count(counts[2])), ("participants", disclosure.count(given.participants)),
                ("hours", disclosure.amount(given.hours, of: given.participants)),
            ])
        })
        let total = try await tx.query("WITH projects AS (\(projects)) SELECT count(*)::int AS n FROM projects").first?.decode(Int.self, column: "n") ?? 0
        let all = hours["all"] ?? none
        report.table("totals", dimension: "all", rows: [ReportRow("all", [
            ("projects", disclosure.count(total)), ("with_involvement", disclosure.count(all.projects)),
            ("share_with_involvement", disclosure.share(all.projects, of: total)), ("participants", disclosure.count(all.participants)),
            ("hours", disclosure.amount(all.hours, of: all.participants)),
        ])])

        let trained = ParticipationRules.trainedFor(tenant: "p.tenant_id", participant: "p.id", course: .youngCommissioner, on: "\(asOf)::date")
        guard let panel = try await tx.query("""
            WITH projects AS (\(projects))
            SELECT (SELECT count(*) FROM participants p WHERE p.tenant_id = \(tenant) AND \(trained))::int AS trained,
                   count(DISTINCT y.participant_id)::int AS on_panels,
                   count(DISTINCT y.participant_id) FILTER (WHERE y.waiver_reason IS NOT NULL)::int AS waived
              FROM projects pr
              JOIN commissioning_young_commissioners y ON y.tenant_id = pr.tenant_id AND y.project_id = pr.id
            """).first else { return }
        report.table("young_commissioners", dimension: "as_of", rows: [ReportRow(asOf.description, [
            ("with_current_training", disclosure.count(try panel.decode(Int.self, column: "trained"))),
            ("on_tender_panels", disclosure.count(try panel.decode(Int.self, column: "on_panels"))),
            ("on_tender_panels_with_waiver", disclosure.count(try panel.decode(Int.self, column: "waived"))),
        ])])

        guard let awards = try await tx.query("""
            SELECT count(*)::int AS awards, count(*) FILTER (WHERE award_matched_youth_ranking)::int AS matched
              FROM commissioning_projects WHERE tenant_id = \(tenant) AND awarded_on >= \(from) AND awarded_on <= \(to)
            """).first else { return }
        let (made, matched) = (try awards.decode(Int.self, column: "awards"), try awards.decode(Int.self, column: "matched"))
        report.table("awards", dimension: "all", rows: [ReportRow("all", [
            ("awards", disclosure.count(made)), ("matched_youth_ranking", disclosure.count(matched)),
            ("share_matched_youth_ranking", disclosure.share(matched, of: made)),
        ])])

        var outcomes: [String: Int] = [:]
        for row in try await tx.query("""
            SELECT coalesce(r.outcome, 'awaiting_revisit') AS key, count(*)::int AS n
              FROM commissioning_recommendations r
              JOIN commissioning_visits v ON v.tenant_id = r.tenant_id AND v.id = r.visit_id
             WHERE r.tenant_id = \(tenant) AND v.visited_on >= \(from) AND v.visited_on <= \(to)
             GROUP BY 1
            """) {
            outcomes[try row.decode(String.self, column: "key")] = try row.decode(Int.self, column: "n")
        }
        let recommendations = outcomes.values.reduce(0, +)
        report.table("recommendations_by_outcome", dimension: "outcome",
                     rows: (RecommendationOutcome.allCases.map(\.rawValue) + ["awaiting_revisit"]).map { outcome in
            ReportRow(outcome, [("recommendations", disclosure.count(outcomes[outcome] ?? 0)),
                                ("share", disclosure.share(outcomes[outcome] ?? 0, of: recommendations))])
        })

        guard let revisits = try await tx.query("""
            SELECT count(*)::int AS awaiting, count(*) FILTER (WHERE \(Visit.overdue(on: asOf)))::int AS overdue
              FROM commissioning_visits v
             WHERE v.tenant_id = \(tenant) AND v.report_on <= \(asOf) AND (v.revisited_on IS NULL OR v.revisited_on > \(asOf))
            """).first else { return }
        report.table("revisits", dimension: "as_of", rows: [ReportRow(asOf.description, [
            ("awaiting_revisit", disclosure.count(try revisits.decode(Int.self, column: "awaiting"))),
            ("overdue", disclosure.count(try revisits.decode(Int.self, column: "overdue"))),
        ])])
    }
}

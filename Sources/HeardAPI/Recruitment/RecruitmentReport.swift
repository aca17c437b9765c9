import Foundation
import HTTPServer
import Postgres

/// `GET /v1/reports/recruitment?from=&to=` (scope `reports:read`): young people in recruitment,
/// over the vacancies whose youth panel was held in the period or, without a panel, that were
/// recorded in it (both days included):
/// - `vacancies` (`all`, `senior`): vacancies recorded, those with a youth panel and their
///   share, and interviews with a youth panel (candidates the panel scored);
/// - `panel_seats`: seats filled, by members trained for recruitment panels on the panel's day
///   and by members who sat on a waiver, and the share trained;
/// - `telling_young_people`: vacancies whose panel was told the outcome, and the median and
///   longest working days from the decision (`days_to_tell`);
/// - `youth_choice`: decisions on vacancies with a youth panel, how often the youth panel's
///   choice was appointed, and that share;
/// - `by_service_area`: vacancies, with a youth panel, interviews with one, youth choice appointed.
/// Every figure goes through the `Disclosure` rule.
enum RecruitmentReport {
    static func respond(_ request: Request, _ context: AccessContext) async throws -> Response {
        let period = try Report.Period.read(request)
        var report = Report(from: period.from, to: period.to, disclosure: Disclosure(for: context.principal))
        try await context.transaction { tx in
            let tallies = try await tally(from: period.from, to: period.to, on: tx)
            build(&report, tallies)
            tx.audit(period.format == .csv ? .export : .read, .recruitmentReport, id: "\(period.from)..\(period.to)")
        }
        return report.response(format: period.format, filename: "recruitment-report.csv")
    }

    /// The figures of a set of vacancies.
    struct Tally {
        var vacancies = 0
        var withPanel = 0
        var interviews = 0
        var seats = 0
        var trained = 0
        var decisions = 0
        var choiceAppointed = 0
        var daysToTell: [Int] = []

        mutating func add(_ other: Tally) {
            vacancies += other.vacancies; withPanel += other.withPanel; interviews += other.interviews
            seats += other.seats; trained += other.trained; decisions += other.decisions; choiceAppointed += other.choiceAppointed
            daysToTell += other.daysToTell
        }
    }

    /// Each vacancy of the period as a tally of its own, with its seniority and service area.
    static func tally(from: CalendarDate, to: CalendarDate, on tx: TenantTransaction) async throws -> [(senior: Bool, serviceArea: String, tally: Tally)] {
        let rows = try await tx.query("""
            SELECT v.id, v.seniority, v.service_area, v.panel_held_on IS NOT NULL AS panel, v.decided_on, v.appointed, v.told_on,
                   coalesce(m.seats, 0) AS seats, coalesce(m.trained, 0) AS trained
              FROM vacancies v
              LEFT JOIN (SELECT vacancy_id, count(*)::int AS seats, (count(*) FILTER (WHERE trained))::int AS trained
                           FROM youth_panel_members WHERE tenant_id = \(tx.principal.tenantID) GROUP BY vacancy_id) m ON m.vacancy_id = v.id
             WHERE v.tenant_id = \(tx.principal.tenantID) AND \(unsafeRaw: VacancyRoutes.day) BETWEEN \(from) AND \(to)
            """)
        let ids = try rows.map { try $0.decode(UUID.self, column: "id") }
        let totals = try await VacancyStore.scoreTotals(of: ids, on: tx)
        let calendar = try await ClosureDays.calendar(on: tx)
        return try zip(ids, rows).map { id, row in
            let panel = try row.decode(Bool.self, column: "panel")
            let decided = try row.decode(CalendarDate?.self, column: "decided_on"), told = try row.decode(CalendarDate?.self, column: "told_on")
            let ranking = YouthRanking.rank(totals[id] ?? [])
            var tally = Tally(vacancies: 1, withPanel: panel ? 1 : 0, interviews: ranking.count,
                              seats: try row.decode(Int.self, column: "seats"), trained: try row.decode(Int.self, column: "trained"))
            if panel, decided != nil {
                tally.decisions = 1
                let appointed = YouthRanking.choiceAppointed(ranking, decided: true, appointed: try row.decode(String?.self, column: "appointed"))
                tally.choiceAppointed = appointed == true ? 1 : 0
            }
            if let decided, let told { tally.daysToTell = [calendar.workingDays(from: decided, to: told)] }
            return (Seniority(rawValue: try row.decode(String.self, column: "seniority"))?.isSenior ?? false,
                    try row.decode(String.self, column: "service_area"), tally)
        }
    }

    static func build(_ report: inout Report, _ vacancies: [(senior: Bool, serviceArea: String, tally: Tally)]) {
        let disclosure = report.disclosure
        func sum(_ chosen: [(senior: Bool, serviceArea: String, tally: Tally)]) -> Tally {
            chosen.reduce(into: Tally()) { $0.add($1.tally) }
        }
        let all = sum(vacancies)
        report.table("vacancies", dimension: "posts", rows: [("all", all), ("senior", sum(vacancies.filter(\.senior)))].map { key, tally in
            ReportRow(key, [
                ("vacancies", disclosure.count(tally.vacancies)), ("with_youth_panel", disclosure.count(tally.withPanel)),
                ("share_with_youth_panel", disclosure.share(tally.withPanel, of: tally.vacancies)),
                ("interviews_with_youth_panel", disclosure.count(tally.interviews)),
            ])
        })
        // Trained and waived add up to the seats shown: when either is hidden, so is the other.
        let waived = all.seats - all.trained
        let hidesSplit = disclosure.hides(all.trained) || disclosure.hides(waived)
        report.table("panel_seats", dimension: "all", rows: [ReportRow("all", [
            ("seats", disclosure.count(all.seats)), ("trained_on_the_day", hidesSplit ? .suppressed : disclosure.count(all.trained)),
            ("waived", hidesSplit ? .suppressed : disclosure.count(waived)),
            ("share_trained", hidesSplit ? .suppressed : disclosure.share(all.trained, of: all.seats)),
        ])])
        let days = all.daysToTell.sorted()
        let median: Double? = days.isEmpty ? nil
            : days.count % 2 == 1 ? Double(days[days.count / 2]) : Double(days[days.count / 2 - 1] + days[days.count / 2]) / 2
        report.table("telling_young_people", dimension: "all", rows: [ReportRow("all", [
            ("told", disclosure.count(days.count)), ("median_working_days", disclosure.median(median, of: days.count)),
            ("longest_working_days", disclosure.median(days.last.map(Double.init), of: days.count)),
        ])])
        report.table("youth_choice", dimension: "all", rows: [ReportRow("all", [
            ("decisions", disclosure.count(all.decisions)), ("youth_choice_appointed", disclosure.count(all.choiceAppointed)),
            ("share_appointed", disclosure.share(all.choiceAppointed, of: all.decisions)),
        ])])
        report.table("by_service_area", dimension: "service_area", rows: ServiceArea.allCases.map(\.rawValue).map { area in
            let tally = sum(vacancies.filter { $0.serviceArea == area })
            return ReportRow(area, [
                ("vacancies", disclosure.count(tally.vacancies)), ("with_youth_panel", disclosure.count(tally.withPanel)),
                ("interviews_with_youth_panel", disclosure.count(tally.interviews)),
                ("youth_choice_appointed", disclosure.count(tally.choiceAppointed)),
            ])
        })
    }
}

import Foundation
import HTTPServer
import Postgres

/// `GET /v1/reports/complaints?from=&to=` (scope reports:read): the annual figures councils
/// publish (DOMAIN.md §2) for complaints received in the period, JSON or CSV (`Report`), small
/// numbers suppressed by the `Disclosure` rule unless the key has `small_numbers:read`.
///
/// - counts by procedure, stage reached, status, outcome (the last response's, `withdrawn`, or
///   `pending`), service area and category;
/// - per stage: responses, how many within time (the due date when responded, extensions
///   included, as the guidance counts them), that share, and the median working days taken;
/// - escalation from stage 1 to 2 and from 2 to 3: responses at the stage, escalations, rate;
/// - child and young person complainants, and how many were offered advocacy;
/// - learning actions by status.
enum ComplaintReport {
    /// The period's figures as the triggers of migration 0019 keep them (`complaint_figures`):
    /// figure -> key -> count, e.g. `["status": ["received": 12]]`; `working_days_<stage>` maps
    /// working days taken to how many responses took them.
    private typealias Figures = [String: [String: Int]]

    static func handle(_ request: Request, _ context: AccessContext) async throws -> Response {
        let period = try Report.Period.read(request)
        let disclosure = Disclosure(for: context.principal)
        let (figures, categories) = try await context.transaction { tx -> (Figures, [String]) in
            let figures = try await query(period, on: tx)
            let categories = try await ComplaintCategory.codes(on: tx)
            tx.audit(period.format == .csv ? .export : .read, .complaintReport, id: "\(period.from)..\(period.to)")
            return (figures, categories)
        }
        return build(figures, categories: categories, period: period, disclosure: disclosure).response(format: period.format, filename: "complaints-report.csv")
    }

    /// The period's rows of `complaint_figures`, summed: about twenty rows a day of receipt,
    /// however many complaints there were (row-level security keeps a partner's key to its own).
    private static func query(_ period: Report.Period, on tx: TenantTransaction) async throws -> Figures {
        let rows = try await tx.query("""
            SELECT figure, key, sum(count)::bigint AS count
              FROM complaint_figures
             WHERE tenant_id = \(tx.principal.tenantID) AND received_on BETWEEN \(period.from) AND \(period.to)
             GROUP BY figure, key
            """)
        var figures: Figures = [:]
        for row in rows {
            figures[try row.decode(String.self, column: "figure"), default: [:]][try row.decode(String.self, column: "key")] =
                try row.decode(Int.self, column: "count")
        }
        return figures
    }

    /// The median of the values a histogram (value -> how many) holds, interpolated between the
    /// two middle values when their number is even (as PostgreSQL's `percentile_cont(0.5)`).
    static func median(_ histogram: [Int: Int]) -> Double? {
        let sorted = histogram.filter { $0.value > 0 }.sorted { $0.key < $1.key }
        let total = sorted.reduce(0) { $0 + $1.value }
        guard total > 0 else { return nil }
        func value(at position: Int) -> Int {
            var seen = 0
            for (value, count) in sorted {
                seen += count
                if position < seen { return value }
            }
            return sorted[sorted.count - 1].key
        }
        return (Double(value(at: (total - 1) / 2)) + Double(value(at: total / 2))) / 2
    }

    /// The report's tables; `categories` are the council's, in the order they were added.
    private static func build(_ figures: Figures, categories: [String], period: Report.Period, disclosure: Disclosure) -> Report {
        func count(_ table: String, _ key: String) -> Int { figures[table]?[key] ?? 0 }
        func workingDays(_ stage: String) -> Double? {
            median(Dictionary((figures["working_days_\(stage)"] ?? [:]).compactMap { key, count in Int(key).map { ($0, count) } },
                              uniquingKeysWith: +))
        }
        func counts(_ table: String, _ keys: [String], dimension: String, name: String = "complaints") -> (String, String, [ReportRow]) {
            (table, dimension, keys.map { ReportRow($0, [(name, disclosure.count(count(table, $0)))]) })
        }

        var report = Report(from: period.from, to: period.to, disclosure: disclosure)
        let stages = ["1", "2", "3"]
        for (table, dimension, rows) in [
            counts("total", ["all"], dimension: "all"),
            counts("procedure", ComplaintProcedureCode.allCases.map(\.rawValue), dimension: "procedure"),
            counts("stage", stages, dimension: "stage_reached"),
            counts("status", ComplaintStatus.allCases.map(\.rawValue), dimension: "status"),
            counts("outcome", ComplaintOutcome.allCases.map(\.rawValue) + ["withdrawn", "pending"], dimension: "outcome"),
            counts("service_area", ServiceArea.allCases.map(\.rawValue), dimension: "service_area"),
            counts("category", categories, dimension: "category"),
        ] {
            report.table(table == "stage" ? "stage_reached" : table, dimension: dimension, rows: rows)
        }
        report.table("responses", dimension: "stage", rows: stages.map { stage in
            let responded = count("responded", stage), within = count("within_time", stage)
            return ReportRow(stage, [
                ("responded", disclosure.count(responded)), ("within_time", disclosure.count(within)),
                ("share_within_time", disclosure.share(within, of: responded)),
                ("median_working_days", disclosure.median(workingDays(stage), of: responded)),
            ])
        })
        report.table("escalation", dimension: "from_stage", rows: ["1", "2"].map { stage in
            let responded = count("responded", stage), escalated = count("escalated", stage)
            return ReportRow(stage, [
                ("responded", disclosure.count(responded)), ("escalated", disclosure.count(escalated)),
                ("rate", disclosure.share(escalated, of: responded)),
            ])
        })
        report.table("children_and_young_people", dimension: "all", rows: [ReportRow("all", [
            ("complainants", disclosure.count(count("children", "all"))), ("offered_advocacy", disclosure.count(count("advocacy", "all"))),
        ])])
        report.table("learning_actions", dimension: "status", rows: LearningActionStatus.allCases.map(\.rawValue).map {
            ReportRow($0, [("actions", disclosure.count(count("learning", $0)))])
        })
        return report
    }
}

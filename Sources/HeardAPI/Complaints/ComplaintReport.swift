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
    /// One figure the query counts: which table, which key, the count, and the median working
    /// days where it is a stage's responses.
    private struct Tally {
        var table: String
        var key: String
        var count: Int
        var extra: Double?
    }

    static func handle(_ request: Request, _ context: AccessContext) async throws -> Response {
        let period = try Report.Period.read(request)
        let disclosure = Disclosure(for: context.principal)
        let tallies = try await context.transaction { tx -> [Tally] in
            let tallies = try await query(period, on: tx)
            tx.audit(period.format == .csv ? .export : .read, .complaintReport, id: "\(period.from)..\(period.to)")
            return tallies
        }
        return build(tallies, period: period, disclosure: disclosure).response(format: period.format, filename: "complaints-report.csv")
    }

    /// Every count the report needs, each one filtered aggregate: (table, key, condition).
    /// The conditions are SQL over the period's complaints, their values bound.
    private static let counted: [(table: String, key: String, condition: SQLFragment)] = {
        var counted: [(String, String, SQLFragment)] = [("total", "all", "true")]
        counted += ComplaintProcedureCode.allCases.map { ("procedure", $0.rawValue, "procedure = \($0.rawValue)") }
        counted += (1...3).map { ("stage", String($0), "stage = \($0)") }
        counted += ComplaintStatus.allCases.map { ("status", $0.rawValue, "status = \($0.rawValue)") }
        // The last response's outcome; withdrawn when it ended without one; pending otherwise.
        counted += ComplaintOutcome.allCases.map { ("outcome", $0.rawValue, "outcome = \($0.rawValue)") }
        counted.append(("outcome", "withdrawn", "outcome IS NULL AND status IN ('withdrawn', 'closed')"))
        counted.append(("outcome", "pending", "outcome IS NULL AND status NOT IN ('withdrawn', 'closed')"))
        counted += ServiceArea.allCases.map { ("service_area", $0.rawValue, "service_area = \($0.rawValue)") }
        counted += ComplaintCategory.allCases.map { ("category", $0.rawValue, "\($0.rawValue) = ANY(categories)") }
        for stage in 1...3 {
            counted.append(("responded", String(stage), "stage_responded_on[\(stage)::int] IS NOT NULL"))
            counted.append(("within_time", String(stage), "stage_on_time[\(stage)::int]"))
        }
        counted += (1...2).map { ("escalated", String($0), "stage_escalated_on[\($0)::int] IS NOT NULL") }
        counted.append(("children", "all", "complainant_role IN ('child', 'young_person')"))
        counted.append(("advocacy", "all", "complainant_role IN ('child', 'young_person') AND advocacy_offered"))
        return counted
    }()

    /// One pass over the period's complaints (every count a filtered aggregate, and the median
    /// working days of each stage's responses, from the columns the transitions keep) and one
    /// over its learning actions, in one statement.
    private static func query(_ period: Report.Period, on tx: TenantTransaction) async throws -> [Tally] {
        let tenant = tx.principal.tenantID
        let counts = SQLFragment.joined(counted.enumerated().map { index, count in
            "count(*) FILTER (WHERE \(count.condition)) AS \(unsafeRaw: "n\(index)")"
        }, separator: ", ")
        let learning = SQLFragment.joined(LearningActionStatus.allCases.enumerated().map { index, status in
            "count(*) FILTER (WHERE status = \(status.rawValue)) AS \(unsafeRaw: "l\(index)")"
        }, separator: ", ")
        guard let row = try await tx.query("""
            SELECT *
              FROM (SELECT \(counts),
                           percentile_cont(0.5) WITHIN GROUP (ORDER BY stage_working_days[1]) AS m1,
                           percentile_cont(0.5) WITHIN GROUP (ORDER BY stage_working_days[2]) AS m2,
                           percentile_cont(0.5) WITHIN GROUP (ORDER BY stage_working_days[3]) AS m3
                      FROM complaints
                     WHERE tenant_id = \(tenant) AND received_on BETWEEN \(period.from) AND \(period.to)) AS c,
                   (SELECT \(learning) FROM complaint_learning_actions
                     WHERE tenant_id = \(tenant) AND complaint_received_on BETWEEN \(period.from) AND \(period.to)) AS l
            """).first else { return [] }
        var tallies = try counted.enumerated().map { index, count in
            Tally(table: count.table, key: count.key, count: try row.decode(Int.self, column: "n\(index)"),
                  extra: count.table == "responded" ? try row.decode(Double?.self, column: "m\(count.key)") : nil)
        }
        tallies += try LearningActionStatus.allCases.enumerated().map { index, status in
            Tally(table: "learning", key: status.rawValue, count: try row.decode(Int.self, column: "l\(index)"))
        }
        return tallies
    }

    private static func build(_ tallies: [Tally], period: Report.Period, disclosure: Disclosure) -> Report {
        func tally(_ table: String, _ key: String) -> Tally? { tallies.first { $0.table == table && $0.key == key } }
        func count(_ table: String, _ key: String) -> Int { tally(table, key)?.count ?? 0 }
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
            counts("category", ComplaintCategory.allCases.map(\.rawValue), dimension: "category"),
        ] {
            report.table(table == "stage" ? "stage_reached" : table, dimension: dimension, rows: rows)
        }
        report.table("responses", dimension: "stage", rows: stages.map { stage in
            let responded = count("responded", stage), within = count("within_time", stage)
            return ReportRow(stage, [
                ("responded", disclosure.count(responded)), ("within_time", disclosure.count(within)),
                ("share_within_time", disclosure.share(within, of: responded)),
                ("median_working_days", disclosure.median(tally("responded", stage)?.extra, of: responded)),
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

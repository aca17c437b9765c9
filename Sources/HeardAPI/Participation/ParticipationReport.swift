import Foundation
import HTTPServer
import Postgres

/// `GET /v1/reports/participation?from=&to=` (scope `reports:read`): who took part and with how
/// much influence, over the activities held in the period (both days included):
/// - activities and distinct participants in all, by participation (rungs 4-8) against
///   non-participation (1-3), by rung, by kind, by group and by service area;
/// - the participants who took part, by age band and by each equality field (representativeness);
/// - training current and expired on `to`, by course (participants; `ParticipationRules.trainedFor`);
/// - rewards given in the period, by kind (count and value in pence).
/// Counts from 1 to 4 are hidden from a key without `small_numbers:read` (`Disclosure`); a
/// reward's value with its count. Rungs are keyed by their code (`consulted_and_informed`),
/// groups by id (`none`: activities of no group).
enum ParticipationReport {
    static func respond(_ request: Request, _ context: AccessContext) async throws -> Response {
        let period = try Report.Period.read(request)
        var report = Report(from: period.from, to: period.to, disclosure: Disclosure(for: context.principal))
        try await context.transaction { tx in
            try await build(&report, on: tx)
            tx.audit(period.format == .csv ? .export : .read, .participationReport)
        }
        return report.response(format: period.format, filename: "participation-report.csv")
    }

    static func build(_ report: inout Report, on tx: TenantTransaction) async throws {
        let tenant = tx.principal.tenantID
        let (from, to, disclosure) = (report.from, report.to, report.disclosure)
        let held: SQLFragment = "a.tenant_id = \(tenant) AND a.held_on >= \(from) AND a.held_on <= \(to)"

        /// Rows for every key of `keys` (in order, noughts where nothing was found), then any
        /// other key found; each figure a count but those `amounts` names (hidden with the
        /// row's first count).
        func rows(_ keys: [String], _ found: [String: [Int]], _ names: [String], amounts: Set<String> = []) -> [ReportRow] {
            let all = keys + found.keys.filter { !keys.contains($0) }.sorted()
            return all.map { key in
                let values = found[key] ?? Array(repeating: 0, count: names.count)
                return ReportRow(key, zip(names, values).map { name, value in
                    guard amounts.contains(name) else { return (name, disclosure.count(value)) }
                    return (name, disclosure.hides(values[0]) ? .suppressed : Figure(value: .number(String(value))))
                })
            }
        }
        func codes<Value: RawRepresentable & CaseIterable>(_ type: Value.Type, notRecorded: Bool = false) -> [String] where Value.RawValue == String {
            Value.allCases.map(\.rawValue) + (notRecorded ? ["not_recorded"] : [])
        }

        /// Activities and distinct participants, by `key` (an expression over `a`).
        func activities(by key: String) async throws -> [String: [Int]] {
            try await figures("""
                SELECT (\(unsafeRaw: key))::text AS key, count(DISTINCT a.id)::int AS activities,
                       count(DISTINCT ap.participant_id)::int AS participants
                  FROM activities a
                  LEFT JOIN activity_participants ap ON ap.tenant_id = a.tenant_id AND ap.activity_id = a.id
                 WHERE \(held)
                 GROUP BY 1
                """, ["activities", "participants"], on: tx)
        }

        /// The participants who took part in the period, by `column` of theirs ("not_recorded" when null).
        func participants(by column: String) async throws -> [String: [Int]] {
            try await figures("""
                SELECT coalesce(p.\(unsafeRaw: column), 'not_recorded') AS key, count(*)::int AS participants
                  FROM participants p
                 WHERE p.tenant_id = \(tenant)
                   AND EXISTS (SELECT 1 FROM activity_participants ap
                                 JOIN activities a ON a.tenant_id = ap.tenant_id AND a.id = ap.activity_id
                                WHERE ap.tenant_id = p.tenant_id AND ap.participant_id = p.id AND \(held))
                 GROUP BY 1
                """, ["participants"], on: tx)
        }

        let activityFigures = ["activities", "participants"]
        report.table("totals", dimension: "all", rows: rows(["all"], try await activities(by: "'all'"), activityFigures))
        report.table("by_participation", dimension: "participation", rows: rows(
            ["participation", "non_participation"],
            try await activities(by: "CASE WHEN a.harts_rung >= 4 THEN 'participation' ELSE 'non_participation' END"), activityFigures))
        let rungs = try await activities(by: "a.harts_rung")
        let byRung = Dictionary(uniqueKeysWithValues: rungs.compactMap { key, values in
            Int(key).flatMap(HartsRung.init(rawValue:)).map { ($0.code, values) }
        })
        report.table("by_rung", dimension: "harts_rung", rows: rows(HartsRung.allCases.map(\.code), byRung, activityFigures))
        report.table("by_kind", dimension: "kind", rows: rows(codes(ActivityKind.self), try await activities(by: "a.kind"), activityFigures))
        report.table("by_group", dimension: "group", rows: rows(["none"], try await activities(by: "coalesce(a.group_id::text, 'none')"), activityFigures))
        report.table("by_service_area", dimension: "service_area",
                     rows: rows(codes(ServiceArea.self), try await activities(by: "a.service_area"), activityFigures))
        for (table, dimension, keys) in [("participants_by_age_band", "age_band", codes(AgeBand.self)),
                                         ("participants_by_gender", "gender", codes(Gender.self, notRecorded: true)),
                                         ("participants_by_ethnicity", "ethnicity", codes(Ethnicity.self, notRecorded: true)),
                                         ("participants_by_disability", "disability", codes(Disability.self, notRecorded: true))] {
            report.table(table, dimension: dimension, rows: rows(keys, try await participants(by: dimension), ["participants"]))
        }

        let rule = ParticipationRules.trainedFor(tenant: "p.tenant_id", participant: "p.id", course: "c.course", on: "\(to)::date")
        let training = try await figures("""
            SELECT c.course AS key,
                   count(*) FILTER (WHERE \(rule))::int AS current,
                   count(*) FILTER (WHERE NOT \(rule) AND EXISTS (
                       SELECT 1 FROM training_records t
                        WHERE t.tenant_id = p.tenant_id AND t.participant_id = p.id AND t.course = c.course AND t.completed_on <= \(to)))::int AS expired
              FROM participants p CROSS JOIN unnest(\(TrainingCourse.allCases.map(\.rawValue))::text[]) AS c (course)
             WHERE p.tenant_id = \(tenant)
             GROUP BY c.course
            """, ["current", "expired"], on: tx)
        report.table("training_by_course", dimension: "course", rows: rows(codes(TrainingCourse.self), training, ["current", "expired"]))

        let rewards = try await figures("""
            SELECT r.kind AS key, count(*)::int AS rewards, coalesce(sum(r.value_pence), 0)::int AS value_pence
              FROM rewards r
             WHERE r.tenant_id = \(tenant) AND r.given_on >= \(from) AND r.given_on <= \(to)
             GROUP BY 1
            """, ["rewards", "value_pence"], on: tx)
        report.table("rewards_by_kind", dimension: "kind", rows: rows(codes(RewardKind.self), rewards, ["rewards", "value_pence"], amounts: ["value_pence"]))
    }

    /// Rows of `key` and the integer columns `names`, as figures by key.
    private static func figures(_ query: PostgresQuery, _ names: [String], on tx: TenantTransaction) async throws -> [String: [Int]] {
        var found: [String: [Int]] = [:]
        for row in try await tx.query(query) {
            found[try row.decode(String.self, column: "key")] = try names.map { try row.decode(Int.self, column: $0) }
        }
        return found
    }
}

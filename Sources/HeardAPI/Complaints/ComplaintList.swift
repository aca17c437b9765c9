import Foundation
import HTTPServer
import Postgres

/// `GET /v1/complaints` (scope complaints:read): oldest recorded first, filtered, paged, JSON or
/// CSV. `overdue` and each item's `working_days_left` are judged as of `as_of` (default today).
enum ComplaintList {
    /// What complaints are judged by: the tenant's calendar, and the day.
    struct Judgement: Sendable {
        let calendar: WorkingDayCalendar
        let asOf: CalendarDate
    }

    /// Whether a complaint is in a state whose response clock runs, as SQL: `overdue` is one of
    /// them, past its response due date. The states are the lifecycle's, written in as
    /// literals (not bound) so the planner matches them with the partial index
    /// `complaints_running` (migration 0019) and pages overdue complaints without a scan.
    static let running: SQLFragment = "c.status IN (\(unsafeRaw: runningStates.map { "'\($0.rawValue)'" }.joined(separator: ", ")))"
    static let runningStates: [ComplaintStatus] = ComplaintLifecycle.open + [.panelConvened, .panelReported]

    static let endpoint = ListEndpoint<Complaint, Judgement>(
        resource: .complaint,
        filters: [
            .vocabulary("procedure", ComplaintProcedureCode.self, "c.procedure"),
            .custom("stage", read: { $0.integer($1, in: 1...3) }, condition: { stage, _ in "c.stage = \(stage)" }),
            .vocabulary("status", ComplaintStatus.self, "c.status"),
            .vocabulary("service_area", ServiceArea.self, "c.service_area"),
            .text("team", "c.team"),
            .custom("category", read: { (query: inout QueryReader, name: String) -> String? in
                let code = query.string(name, maxLength: 50)
                guard let code, ComplaintCategory.isCode(code) else {
                    if code != nil { query.reject(name, ComplaintCategory.codeRule) }
                    return nil
                }
                return code
            }, condition: { (code: String, _) in "\(code) = ANY(c.categories)" }),
            .custom("received_from", read: { $0.date($1) }, condition: { day, _ in "c.received_on >= \(day)" }),
            .custom("received_to", read: { $0.date($1) }, condition: { day, _ in "c.received_on <= \(day)" }),
            .custom("due_before", read: { $0.date($1) }, condition: { day, _ in "c.response_due_on < \(day)" }),
            .custom("overdue", read: { $0.bool($1) }, condition: { overdue, judgement in
                overdue ? "\(running) AND c.response_due_on < \(judgement.asOf)"
                        : "NOT coalesce(\(running) AND c.response_due_on < \(judgement.asOf), false)"
            }),
            .text("subject_ref", "c.subject_ref"),
        ],
        order: ListOrder(ascending: [("c.seq", .bigint)]),
        csvFilename: "complaints.csv",
        prepare: { tx, request in Judgement(calendar: try await ClosureDays.calendar(on: tx), asOf: request.asOf) }
    ).takingAsOf().judging { complaints, judgement in
        // A page's complaints share a handful of timescales (a procedure's versions): each decoded once.
        var decoded: [String: [ComplaintProcedure.Stage]] = [:]
        for index in complaints.indices {
            let text = complaints[index].timescales
            let stages = decoded[text] ?? ((try? ComplaintProcedures.decodeStages(text)) ?? [])
            decoded[text] = stages
            complaints[index].timescaleStages = stages
            complaints[index].judge(asOf: judgement.asOf, calendar: judgement.calendar)
        }
    }.exporting { columns, _ in
        columns + [
            CSVColumn("working_days_left") { $0.workingDaysLeft.map(String.init) },
            CSVColumn("overdue") { $0.overdue ? "true" : "false" },
        ]
    }
}

import Foundation
import HTTPServer
import Postgres

/// `POST /v1/complaints/{id}/transitions` with `If-Match`: one action of the procedure
/// (`ComplaintLifecycle`), `{"action": ..., "on": "YYYY-MM-DD", "note": ..., <its fields>}`.
/// In this order: 404 for a complaint the key cannot see, 428 without `If-Match`, 409 naming
/// the state and the allowed actions when the action is not allowed, 422 naming each field at
/// fault, 412 when `If-Match` is stale.
enum ComplaintTransitions {
    static func handle(_ request: Request, _ context: AccessContext) async throws -> Response {
        let id = try ComplaintRoutes.complaintID(request)
        let ifMatch = IfMatch(request)
        let today = WorkingDayCalendar.localDay(of: context.now)
        var body = try FieldReader(body: request.body)
        let action = body.vocabulary("action", ComplaintAction.self)
        let values = action.map { ComplaintLifecycle.machine.fields(of: $0, from: &body, today: today) } ?? ActionValues()
        let elements = action == .respond || action == .finalResponse ? ResponseElements.read(&body) : nil
        // The fields are judged after the action: an action the complaint cannot take is a 409
        // whatever it carries.
        var invalid: HTTPError?
        do { try body.finish() } catch { invalid = error }
        guard let action else { throw invalid ?? HTTPError.validation([FieldError(field: "action", message: "is required")]) }

        let changed = try await context.transaction { tx -> Complaint? in
            let calendar = try await ClosureDays.calendar(on: tx)
            guard let current = try await ComplaintStore.find(id, on: tx, asOf: today, calendar: calendar) else { return nil }
            // Only once the complaint is known to be the caller's: a stranger hears 404, as for a read.
            let ifMatch = try ifMatch ?? IfMatch.required(request)
            let transition: ComplaintLifecycle.Transition
            do throws(HTTPError) {
                transition = try ComplaintLifecycle.machine.transition(action, from: current.state) {
                    ComplaintLifecycle.allows($0, for: current)
                }
                if let invalid { throw invalid }
                try ifMatch.check(current: current.etag)
            } catch {
                var problem = error
                if problem.status == .conflict {
                    problem.extensions["complaint_id"] = .text(current.id.lowercased)
                    problem.extensions["stage"] = .text(String(current.stage))
                }
                throw problem
            }
            let change = try effect(of: transition, values, elements: elements, on: current, calendar: calendar)
            guard try await ComplaintLifecycle.machine.apply(transition, to: id, version: current.version, values: values,
                                                             set: change.assignments, details: change.details, on: tx) != nil else {
                throw IfMatch.changedMeanwhile
            }
            tx.audit(.update, .complaint, id: id.lowercased)
            return try await ComplaintStore.find(id, on: tx, asOf: today, calendar: calendar)
        }
        guard let changed else { throw ComplaintRoutes.notFound }
        return ComplaintRoutes.answer(changed, status: .ok)
    }

    struct Change {
        var assignments: [SQLFragment] = []
        var details: [(String, JSONValue)] = []
    }

    /// What `transition` does to `complaint` on the day `values.on`: the columns it sets (its
    /// clock, and the due dates worked out afresh) and what its history row records; 422 when a
    /// field is at fault given the complaint (a day before its last step, an extension beyond
    /// the procedure's maximum, a late escalation without a reason).
    static func effect(of transition: ComplaintLifecycle.Transition, _ values: ActionValues, elements: ResponseElements? = nil,
                       on complaint: Complaint, calendar: WorkingDayCalendar) throws(HTTPError) -> Change {
        guard let stage = complaint.currentStage, let on = values.on else { throw HTTPError.validation([]) }
        var errors: [FieldError] = []
        let lastDay = (complaint.history ?? []).compactMap(\.on).max() ?? complaint.receivedOn
        if on < lastDay { errors.append(FieldError(field: "on", message: "must not be before \(lastDay), the day of the complaint's last step")) }

        var change = Change()
        change.details.append(("stage", .number(String(complaint.stage))))
        var clock = complaint.clock
        var timescales = stage
        switch transition.action {
        case .acknowledge:
            clock.acknowledgedOn = on
        case .suspend:
            if values.text("reason") == SuspensionReason.other.rawValue, values.note == nil {
                errors.append(FieldError(field: "note", message: "is required when the reason is other"))
            }
            clock.suspendedOn = on
        case .resume:
            let days = ComplaintClock.suspendedWorkingDays(from: complaint.suspendedOn ?? on, resumed: on, calendar: calendar)
            clock.suspendedOn = nil
            clock.suspendedDays += days
            change.details.append(("suspended_working_days", .number(String(days))))
        case .extend:
            let most = stage.extendableTo ?? stage.respondWithin
            if let days = values.integer("working_days") {
                if days <= complaint.allowance || days > most {
                    errors.append(FieldError(field: "working_days", message: "must be more than the stage's current allowance (\(complaint.allowance)) and at most \(most), the procedure's maximum"))
                }
                clock.allowance = days
            }
        case .agreeStatement:
            clock.clockStartedOn = on
        case .respond, .finalResponse:
            let onTime = complaint.responseDueOn.map { on <= $0 } ?? false
            if let due = complaint.responseDueOn { change.details.append(("due_on", .string(due.description))) }
            let started = transition.action == .finalResponse ? complaint.stageStartedOn
                : stage.responseClock == .acknowledgement ? (complaint.acknowledgedOn ?? complaint.stageStartedOn)
                : (complaint.clockStartedOn ?? complaint.stageStartedOn)
            let taken = max(0, calendar.workingDays(from: started, to: on) - complaint.suspendedDays)
            change.details += [("on_time", .bool(onTime)), ("working_days_taken", .number(String(taken)))]
            let stated = values.text("outcome").flatMap(ComplaintOutcome.init(rawValue:))
            if let elements {
                change.details.append(("elements", elements.json))
                if let stated, stated != elements.outcome {
                    errors.append(FieldError(field: "outcome", message: "must be \(elements.outcome.rawValue), the outcome of its elements, or left out"))
                }
            } else if stated == nil, transition.action == .respond {
                errors.append(FieldError(field: "outcome", message: "is required (or elements, the outcome of each element)"))
            }
            let outcome = elements?.outcome ?? stated
            if let outcome, values.text("outcome") == nil { change.details.append(("outcome", .string(outcome.rawValue))) }
            change.assignments += [
                "responded_on = \(on)", "outcome = \(outcome?.rawValue)", "stage_responded_on[\(complaint.stage)::int] = \(on)",
                "stage_on_time[\(complaint.stage)::int] = \(onTime)", "stage_working_days[\(complaint.stage)::int] = \(taken)",
            ]
        case .escalate:
            guard let next = complaint.timescaleStages.first(where: { $0.stage == complaint.stage + 1 }) else { throw HTTPError.validation([]) }
            if let within = stage.escalateWithin, let responded = complaint.respondedOn {
                let windowEnds = calendar.adding(workingDays: within, to: responded)
                change.details.append(("window_ends_on", .string(windowEnds.description)))
                if on > windowEnds, values.text("late_reason") == nil {
                    errors.append(FieldError(field: "late_reason", message: "is required: the request is after \(windowEnds), \(within) working days after the stage \(complaint.stage) response"))
                }
                change.details.append(("late", .bool(on > windowEnds)))
            }
            timescales = next
            clock = ComplaintClock(stageStartedOn: on, clockStartedOn: next.responseClock == .stageStart ? on : nil, allowance: next.respondWithin)
            change.assignments += ["stage = \(next.stage)", "responded_on = NULL", "outcome = NULL", "stage_escalated_on[\(complaint.stage)::int] = \(on)"]
            change.details.append(("to_stage", .number(String(next.stage))))
        case .convenePanel:
            clock.panelOn = on
        case .reportPanel:
            clock.panelReportOn = on
        case .withdraw, .close:
            break
        }
        guard errors.isEmpty else { throw HTTPError.validation(errors) }
        let due = clock.dueDates(timescales, calendar: calendar)
        change.assignments += [
            "stage_started_on = \(clock.stageStartedOn)", "clock_started_on = \(clock.clockStartedOn)",
            "acknowledged_on = \(clock.acknowledgedOn)", "allowance = \(clock.allowance)", "suspended_on = \(clock.suspendedOn)",
            "suspended_days = \(clock.suspendedDays)", "panel_on = \(clock.panelOn)", "panel_report_on = \(clock.panelReportOn)",
            "acknowledge_due_on = \(due.acknowledge)", "response_due_on = \(due.response)", "panel_due_on = \(due.panel)",
            "panel_report_due_on = \(due.panelReport)", "updated_at = now()",
        ]
        return change
    }
}

/// The outcome of each element of a complaint with several (`respond` and `final_response`):
/// `"elements": [{"element": "1", "outcome": "upheld"}, {"element": "2", "outcome": "not_upheld"}]`.
/// The complaint's outcome follows from them: upheld when every element is, not upheld when
/// none is, partly upheld otherwise. An element is named by a short reference (its number in the
/// complaint statement), never by what it says.
struct ResponseElements: Sendable {
    var elements: [(element: String, outcome: ComplaintOutcome)]

    static let maxCount = 50

    var outcome: ComplaintOutcome {
        if elements.allSatisfy({ $0.outcome == .upheld }) { return .upheld }
        if elements.allSatisfy({ $0.outcome == .notUpheld }) { return .notUpheld }
        return .partlyUpheld
    }

    var json: JSONValue {
        .array(elements.map { .object([("element", .string($0.element)), ("outcome", .string($0.outcome.rawValue))]) })
    }

    /// `elements` when sent: 2 to 50, each with a reference (1-20 of A-Z, a-z, 0-9, `.`, `-`, `_`,
    /// unique) and an outcome.
    static func read(_ body: inout FieldReader) -> ResponseElements? {
        guard let items = body.objects("elements", maxCount: maxCount) else { return nil }
        if items.count < 2 { body.reject("elements", "must list two or more elements (with one, send outcome)") }
        var elements: [(element: String, outcome: ComplaintOutcome)] = []
        for var item in items {
            let element = item.string("element", maxLength: 20)
            if let element, !element.utf8.allSatisfy({ (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) || "._-".utf8.contains($0) }) {
                item.reject("element", "must be a short reference (its number in the complaint statement): A-Z, a-z, 0-9, '.', '-' and '_'")
            } else if let element, elements.contains(where: { $0.element == element }) {
                item.reject("element", "appears more than once")
            }
            let outcome = item.vocabulary("outcome", ComplaintOutcome.self)
            body.absorb(item)
            if let element, let outcome { elements.append((element, outcome)) }
        }
        return ResponseElements(elements: elements)
    }
}

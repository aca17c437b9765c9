import Foundation
import Postgres

/// The due dates of a complaint's current stage (DOMAIN.md §2), worked out from the stage's
/// timescales and what has happened in it, in the tenant's working days. Pure.
///
/// - Acknowledgement is due `acknowledge_within` working days after the stage began, where the
///   procedure sets a limit and until it is acknowledged.
/// - The response is due `allowance` working days (the stage's `respond_within`, or more once
///   extended) after its clock started: the day the stage began, its acknowledgement (the day
///   acknowledgement is due until it is acknowledged), the agreed statement, or the panel's
///   report; plus the working days the clock was suspended. While suspended, nothing is due.
/// - Stage 3: the panel is due `panel_within` after the request, its report `panel_report_within`
///   after the panel, each known once the step before it happened.
struct ComplaintClock: Sendable, Equatable {
    var stageStartedOn: CalendarDate
    var clockStartedOn: CalendarDate?
    var acknowledgedOn: CalendarDate?
    var allowance: Int
    var suspendedOn: CalendarDate?
    var suspendedDays = 0
    var panelOn: CalendarDate?
    var panelReportOn: CalendarDate?

    struct DueDates: Sendable, Equatable {
        var acknowledge: CalendarDate?
        var response: CalendarDate?
        var panel: CalendarDate?
        var panelReport: CalendarDate?
    }

    func dueDates(_ stage: ComplaintProcedure.Stage, calendar: WorkingDayCalendar) -> DueDates {
        var due = DueDates()
        let acknowledgeBy = stage.acknowledgeWithin.map { calendar.adding(workingDays: $0, to: stageStartedOn) }
        if acknowledgedOn == nil { due.acknowledge = acknowledgeBy }
        let start: CalendarDate? = switch stage.responseClock {
        case .stageStart: stageStartedOn
        case .acknowledgement: acknowledgedOn ?? acknowledgeBy
        case .statementAgreed: clockStartedOn
        case .panelReport: panelReportOn
        }
        if let start, suspendedOn == nil { due.response = calendar.adding(workingDays: allowance + suspendedDays, to: start) }
        if let within = stage.panelWithin { due.panel = calendar.adding(workingDays: within, to: stageStartedOn) }
        if let within = stage.panelReportWithin, let panelOn { due.panelReport = calendar.adding(workingDays: within, to: panelOn) }
        return due
    }

    /// The working days a suspension from `from` until `resumed` stops the clock for: from its
    /// day up to, not including, the day it resumes.
    static func suspendedWorkingDays(from: CalendarDate, resumed: CalendarDate, calendar: WorkingDayCalendar) -> Int {
        calendar.workingDays(from: from.adding(days: -1), to: resumed.adding(days: -1))
    }

    /// Working days after `asOf` up to and including `due`: 0 on the day, negative when past.
    static func workingDaysLeft(until due: CalendarDate, asOf: CalendarDate, calendar: WorkingDayCalendar) -> Int {
        due >= asOf ? calendar.workingDays(from: asOf, to: due) : -calendar.workingDays(from: due, to: asOf)
    }
}

import Foundation
import HTTPServer
import Postgres

/// A safeguarding alert as Heard answers it. `action_taken` is narrative: present only for a
/// key with `free_text:read`, absent (not null) otherwise, like feedback's `comment`.
struct SafeguardingAlert: StoredRecord {
    var id = UUID.zero
    var feedbackId = UUID.zero
    var organisation: String?
    var raisedAt = Date(timeIntervalSince1970: 0)
    /// The end of the first working day after the day (in England) it was raised.
    var dueAt = Date(timeIntervalSince1970: 0)
    /// Open, and `now >= due_at`. An acknowledged alert is never overdue; whether it was
    /// acknowledged in time is `acknowledged_at < due_at`.
    var overdue = false
    var status = ""
    var acknowledgedAt: Date?
    var acknowledgedBy: String?
    var actionTaken: String?
    var version = 1
    var allowedActions: [String] = []
    var includesFreeText = false

    var etag: String { ETag.of(version: version) }
    var state: SafeguardingStatus { SafeguardingStatus(rawValue: status) ?? .open }

    static let table = Table<SafeguardingAlert>(
        "safeguarding_alerts a LEFT JOIN organisations o ON o.tenant_id = a.tenant_id AND o.id = a.organisation_id", [
            .column("id", "a.id", \.id), .column("feedback_id", "a.feedback_id", \.feedbackId),
            .column("organisation", "o.slug", \.organisation), .column("raised_at", "a.raised_at", \.raisedAt),
            .computed("due_at", \.dueAt), .computed("overdue", \.overdue), .column("status", "a.status", \.status),
            .column("acknowledged_at", "a.acknowledged_at", \.acknowledgedAt), .column("acknowledged_by", "a.acknowledged_by", \.acknowledgedBy),
            .freeText("action_taken", "a.action_taken", \.actionTaken), .column("version", "a.version", \.version),
            .computed("allowed_actions", \.allowedActions),
        ])

    /// The lifecycle: an open alert is acknowledged once, by someone, saying what was done.
    static let lifecycle = Lifecycle<SafeguardingStatus, SafeguardingAction>(
        resource: .safeguardingAlert, table: "safeguarding_alerts", conflict: .alreadyAcknowledged, [
            .init(.open, .acknowledge, .acknowledged,
                  fields: [.text("acknowledged_by", 100), .text("action_taken", 2000, freeText: true)], stamps: ["acknowledged_at"],
                  clock: .stops),
        ])

    /// Fills in what is judged, not stored: the deadline, whether it is past, what can be done.
    mutating func judge(by rule: SafeguardingRule, at now: Date) {
        dueAt = rule.dueAt(raisedAt: raisedAt)
        overdue = Self.lifecycle.clockRuns(in: state) && rule.isOverdue(raisedAt: raisedAt, now: now)
        allowedActions = Self.lifecycle.allowedActions(in: state).map(\.rawValue)
    }
}

enum SafeguardingStatus: String, CaseIterable, Sendable {
    case open, acknowledged
}

enum SafeguardingAction: String, CaseIterable, Sendable {
    case acknowledge
}

/// The rule (DOMAIN.md §1): an unacknowledged alert is overdue after one working day.
struct SafeguardingRule: Sendable {
    static let workingDays = 1

    /// England and Wales bank holidays, weekends and the tenant's closure days.
    var calendar = WorkingDayCalendar()

    /// The instant an alert raised at `raisedAt` must be acknowledged by.
    func dueAt(raisedAt: Date) -> Date {
        calendar.deadline(afterWorkingDays: Self.workingDays, from: raisedAt)
    }

    func isOverdue(raisedAt: Date, now: Date) -> Bool {
        calendar.isOverdue(raisedAt: raisedAt, workingDays: Self.workingDays, now: now)
    }

    /// The rule with the caller's tenant's closure days in its calendar.
    static func forTenant(_ tx: TenantTransaction) async throws -> SafeguardingRule {
        SafeguardingRule(calendar: try await ClosureDays.calendar(on: tx))
    }

    /// The instant `t` such that an open alert is overdue at `now` exactly when it was raised
    /// before `t`, so the `overdue` filter is one exact, index-friendly comparison in SQL.
    ///
    /// The deadline depends only on the day in England an alert was raised, and never decreases
    /// as that day advances, so the overdue alerts are those raised on or before the latest day
    /// `d` with `deadline(d) <= now`, that is `adding(workingDays: 1, to: d) < today`; `t` is
    /// the start (local midnight) of the day after `d`.
    func overdueIfRaisedBefore(now: Date) -> Date {
        let today = WorkingDayCalendar.localDay(of: now)
        var day = today.adding(days: -1)
        while calendar.adding(workingDays: Self.workingDays, to: day) >= today {
            let earlier = day.adding(days: -1)
            if earlier == day { break }  // 0001-01-01: nothing earlier
            day = earlier
        }
        return WorkingDayCalendar.startOfLocalDay(day.adding(days: 1))
    }
}

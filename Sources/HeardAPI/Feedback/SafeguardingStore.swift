import Foundation
import HTTPServer
import Postgres

/// A safeguarding alert as Heard answers it. `action_taken` is narrative: present only for a
/// key with `free_text:read`, absent (not null) otherwise, like feedback's `comment`.
struct SafeguardingAlert: Encodable, Sendable {
    var id: UUID
    var feedbackId: UUID
    var organisation: String?
    var raisedAt: Date
    /// The end of the first working day after the day (in England) it was raised.
    var dueAt: Date
    /// Open, and `now >= due_at`. An acknowledged alert is never overdue; whether it was
    /// acknowledged in time is `acknowledged_at < due_at`.
    var overdue: Bool
    var status: String
    var acknowledgedAt: Date?
    var acknowledgedBy: String?
    var actionTaken: String?
    var includesFreeText: Bool

    enum CodingKeys: String, CodingKey {
        case id, feedbackId = "feedback_id", organisation, raisedAt = "raised_at", dueAt = "due_at", overdue, status, acknowledgedAt = "acknowledged_at", acknowledgedBy = "acknowledged_by", actionTaken = "action_taken"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id.lowercased, forKey: .id)
        try container.encode(feedbackId.lowercased, forKey: .feedbackId)
        try container.encodeOrNull(organisation, forKey: .organisation)
        try container.encode(raisedAt, forKey: .raisedAt)
        try container.encode(dueAt, forKey: .dueAt)
        try container.encode(overdue, forKey: .overdue)
        try container.encode(status, forKey: .status)
        try container.encodeOrNull(acknowledgedAt, forKey: .acknowledgedAt)
        try container.encodeOrNull(acknowledgedBy, forKey: .acknowledgedBy)
        if includesFreeText { try container.encodeOrNull(actionTaken, forKey: .actionTaken) }
    }
}

/// The rule (DOMAIN.md §1): an unacknowledged alert is overdue after one working day.
struct SafeguardingRule: Sendable {
    static let workingDays = 1

    /// Tenant closure days are not stored yet: England and Wales bank holidays and weekends.
    var calendar = WorkingDayCalendar()

    /// The instant an alert raised at `raisedAt` must be acknowledged by.
    func dueAt(raisedAt: Date) -> Date {
        calendar.deadline(afterWorkingDays: Self.workingDays, from: raisedAt)
    }

    func isOverdue(status: String, raisedAt: Date, now: Date) -> Bool {
        status == SafeguardingStatus.open.rawValue && calendar.isOverdue(raisedAt: raisedAt, workingDays: Self.workingDays, now: now)
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

enum SafeguardingStatus: String, CaseIterable, Sendable {
    case open, acknowledged
}

/// The SQL for safeguarding alerts. Row-level security limits a partner's key to its own
/// organisation's alerts; every statement also names the tenant.
enum SafeguardingStore {
    /// Where a page ended: PostgreSQL's own text of `raised_at` (microseconds intact) and the id.
    struct Position: Codable {
        var raisedAt: String
        var id: UUID

        enum CodingKeys: String, CodingKey { case raisedAt = "raised_at", id }
    }

    struct Filter {
        var status: SafeguardingStatus?
        var overdue: Bool?
        /// `raised_at >= raisedFrom` and `raised_at < raisedBefore`, when given.
        var raisedFrom: Date?
        var raisedBefore: Date?
    }

    /// Without `free_text:read` the narrative is not even read from the database.
    private static func columns(includeFreeText: Bool) -> String {
        """
        SELECT a.id, a.feedback_id, o.slug AS organisation, a.raised_at, a.raised_at::text AS position_time, a.status,
               a.acknowledged_at, a.acknowledged_by, \(includeFreeText ? "a.action_taken" : "NULL::text") AS action_taken
          FROM safeguarding_alerts a
          LEFT JOIN organisations o ON o.tenant_id = a.tenant_id AND o.id = a.organisation_id
        """
    }

    /// A page of alerts, oldest first (the most urgent open ones lead), each with its position.
    static func list(on tx: TenantTransaction, filter: Filter, after: Position?, limit: Int, now: Date,
                     rule: SafeguardingRule, includeFreeText: Bool) async throws -> [(SafeguardingAlert, Position)] {
        let cutoff = rule.overdueIfRaisedBefore(now: now)
        return try await tx.query("""
            \(unsafeRaw: columns(includeFreeText: includeFreeText))
             WHERE a.tenant_id = \(tx.principal.tenantID)
               AND (\(filter.status?.rawValue)::text IS NULL OR a.status = \(filter.status?.rawValue)::text)
               AND (\(filter.overdue)::boolean IS NULL OR (a.status = 'open' AND a.raised_at < \(cutoff)::timestamptz) = \(filter.overdue)::boolean)
               AND (\(filter.raisedFrom)::timestamptz IS NULL OR a.raised_at >= \(filter.raisedFrom)::timestamptz)
               AND (\(filter.raisedBefore)::timestamptz IS NULL OR a.raised_at < \(filter.raisedBefore)::timestamptz)
               AND (\(after?.raisedAt)::timestamptz IS NULL OR (a.raised_at, a.id) > (\(after?.raisedAt)::timestamptz, \(after?.id)::uuid))
             ORDER BY a.raised_at, a.id
             LIMIT \(limit)
            """).map { row in
            (try alert(from: row, now: now, rule: rule, includeFreeText: includeFreeText),
             Position(raisedAt: try row.decode(String.self, column: "position_time"), id: try row.decode(UUID.self, column: "id")))
        }
    }

    /// One alert of the caller's tenant (and organisation), or nil.
    static func find(_ id: UUID, on tx: TenantTransaction, now: Date, rule: SafeguardingRule,
                     includeFreeText: Bool) async throws -> SafeguardingAlert? {
        try await tx.query("""
            \(unsafeRaw: columns(includeFreeText: includeFreeText))
             WHERE a.tenant_id = \(tx.principal.tenantID) AND a.id = \(id)
            """).first.map { try alert(from: $0, now: now, rule: rule, includeFreeText: includeFreeText) }
    }

    /// Records the acknowledgement if the alert is still open; false when it is not (already
    /// acknowledged, or not visible to this key). Concurrent acknowledgements: exactly one wins,
    /// the other waits for its row lock, re-reads `status` and changes nothing.
    static func acknowledge(_ id: UUID, by: String, actionTaken: String, on tx: TenantTransaction) async throws -> Bool {
        try await tx.execute("""
            UPDATE safeguarding_alerts
               SET status = 'acknowledged', acknowledged_at = now(), acknowledged_by = \(by), action_taken = \(actionTaken)
             WHERE tenant_id = \(tx.principal.tenantID) AND id = \(id) AND status = 'open'
            """) == 1
    }

    private static func alert(from row: PostgresRow, now: Date, rule: SafeguardingRule, includeFreeText: Bool) throws -> SafeguardingAlert {
        let raisedAt = try row.decode(Date.self, column: "raised_at")
        let status = try row.decode(String.self, column: "status")
        return SafeguardingAlert(
            id: try row.decode(UUID.self, column: "id"), feedbackId: try row.decode(UUID.self, column: "feedback_id"),
            organisation: try row.decode(String?.self, column: "organisation"), raisedAt: raisedAt,
            dueAt: rule.dueAt(raisedAt: raisedAt), overdue: rule.isOverdue(status: status, raisedAt: raisedAt, now: now),
            status: status, acknowledgedAt: try row.decode(Date?.self, column: "acknowledged_at"),
            acknowledgedBy: try row.decode(String?.self, column: "acknowledged_by"),
            actionTaken: try row.decode(String?.self, column: "action_taken"), includesFreeText: includeFreeText)
    }
}

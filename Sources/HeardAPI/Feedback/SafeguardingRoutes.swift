import Foundation
import HTTPServer
import Postgres

/// `/v1/safeguarding-alerts`: the alerts a safeguarding concern opens (DOMAIN.md §1), listed,
/// read and acknowledged. An open alert is overdue from the end of the first working day after
/// the day (in England) it was raised: `due_at`, from `WorkingDayCalendar.deadline`.
///
/// - `GET /v1/safeguarding-alerts` (`feedback:read`): oldest first, filters `status`,
///   `overdue`, `from`/`to` (days in England, both included, on `raised_at`).
/// - `GET /v1/safeguarding-alerts/{id}` (`feedback:read`), with `ETag`.
/// - `POST /v1/safeguarding-alerts/{id}/acknowledge` (`feedback:write`), body
///   `{"acknowledged_by": "...", "action_taken": "..."}`, `If-Match` optional: 200 with the
///   alert; 409 if it was already acknowledged (the acknowledgement stands unchanged).
struct SafeguardingRoutes {
    let access: AccessControl

    static let notFound = HTTPError(.notFound, detail: "There is no safeguarding alert with this id.")

    /// What alerts are judged by: the tenant's calendar, and the request's time.
    struct Judgement: Sendable {
        let rule: SafeguardingRule
        let now: Date
    }

    static let list = ListEndpoint<SafeguardingAlert, Judgement>(
        resource: .safeguardingAlert,
        filters: [
            .vocabulary("status", SafeguardingStatus.self, "a.status"),
            .custom("overdue", read: { $0.bool($1) }, condition: { overdue, judgement in
                "(a.status = 'open' AND a.raised_at < \(judgement.rule.overdueIfRaisedBefore(now: judgement.now))) = \(overdue)"
            }),
        ],
        days: DayRange(column: "a.raised_at", zone: .england),
        order: ListOrder(ascending: [("a.raised_at", .timestamptz), ("a.id", .uuid)]),
        prepare: { tx, request in Judgement(rule: try await SafeguardingRule.forTenant(tx), now: request.now) }
    ).judging { alerts, judgement in
        for index in alerts.indices { alerts[index].judge(by: judgement.rule, at: judgement.now) }
    }

    func add(to router: inout RouterBuilder) {
        router.get("/v1/safeguarding-alerts", access.secure(.feedbackRead, resource: .safeguardingAlert, Self.list.respond))
        router.get("/v1/safeguarding-alerts/{id}", access.secure(.feedbackRead, resource: .safeguardingAlert) { request, context in
            let id = try Self.alertID(request)
            let alert = try await context.readTransaction { tx in try await Self.read(id, on: tx, now: context.now) }
            guard let alert else { throw Self.notFound }
            return IfNoneMatch.notModified(request, etag: alert.etag) ?? Self.answer(alert)
        })
        router.post("/v1/safeguarding-alerts/{id}/acknowledge", access.secure(.feedbackWrite, resource: .safeguardingAlert) { request, context in
            try await Self.act(.acknowledge, request, context)
        })
    }

    static func alertID(_ request: Request) throws(HTTPError) -> UUID {
        guard let id = UUID(uuidString: request.parameter("id")) else { throw notFound }
        return id
    }

    /// One alert of the caller's tenant (and organisation), judged at `now`, or nil.
    static func find(_ id: UUID, on tx: TenantTransaction, now: Date) async throws -> SafeguardingAlert? {
        let includeFreeText = tx.principal.has(.freeTextRead)
        guard var alert = try await SafeguardingAlert.table.find(id, on: tx, includeFreeText: includeFreeText) else { return nil }
        alert.judge(by: try await SafeguardingRule.forTenant(tx), at: now)
        return alert
    }

    /// `GET /v1/safeguarding-alerts/{id}`: the council's calendar and the alert with its audit
    /// row, in one unit, one round trip (see `Table.read`).
    static func read(_ id: UUID, on tx: TenantTransaction, now: Date) async throws -> SafeguardingAlert? {
        let includeFreeText = tx.principal.has(.freeTextRead)
        guard var (alert, rows) = try await SafeguardingAlert.table.read(id, on: tx, includeFreeText: includeFreeText, audited: .safeguardingAlert,
                                                                        with: [ClosureDays.allQuery(on: tx)]) else { return nil }
        alert.judge(by: SafeguardingRule(calendar: try ClosureDays.calendar(from: rows[0])), at: now)
        return alert
    }

    private enum Outcome {
        case done(SafeguardingAlert)
        case refused(SafeguardingAlert, HTTPError)
    }

    /// An action of the lifecycle: the body carries the action's fields; `If-Match`, when sent,
    /// must name the current version.
    private static func act(_ action: SafeguardingAction, _ request: Request, _ context: AccessContext) async throws -> Response {
        let id = try alertID(request)
        let ifMatch = IfMatch(request)
        var body = try FieldReader(body: request.body)
        let fields = SafeguardingAlert.lifecycle.fields(of: action, from: &body)
        try body.finish()

        let outcome = try await context.transaction { tx -> Outcome? in
            guard let current = try await find(id, on: tx, now: context.now) else { return nil }
            let transition: Lifecycle<SafeguardingStatus, SafeguardingAction>.Transition
            do throws(HTTPError) {
                transition = try SafeguardingAlert.lifecycle.transition(action, from: current.state)
                try ifMatch?.check(current: current.etag)
            } catch {
                // The refusal shows the alert as it stands: that is a read of it.
                tx.audit(.read, .safeguardingAlert, id: id.lowercased)
                return .refused(current, error)
            }
            guard try await SafeguardingAlert.lifecycle.apply(transition, to: id, version: current.version, values: fields, on: tx) != nil else {
                // Another request acted first: answered as if it had come before this one.
                guard let now = try await find(id, on: tx, now: context.now) else { return nil }
                tx.audit(.read, .safeguardingAlert, id: id.lowercased)
                do throws(HTTPError) {
                    _ = try SafeguardingAlert.lifecycle.transition(action, from: now.state)
                    return .refused(now, IfMatch.changedMeanwhile)
                } catch {
                    return .refused(now, error)
                }
            }
            tx.audit(.update, .safeguardingAlert, id: id.lowercased)
            guard let changed = try await find(id, on: tx, now: context.now) else { throw notFound }
            return .done(changed)
        }
        switch outcome {
        case nil:
            throw notFound
        case .done(let alert):
            return answer(alert)
        case .refused(let alert, var error):
            if error.status == .conflict {
                error.extensions["alert_id"] = .text(alert.id.lowercased)
                if let at = alert.acknowledgedAt { error.extensions["acknowledged_at"] = .text(JSON.iso8601(at)) }
                if let by = alert.acknowledgedBy { error.extensions["acknowledged_by"] = .text(by) }
            }
            throw error
        }
    }

    static func answer(_ alert: SafeguardingAlert) -> Response {
        .json(alert, headers: ["ETag": alert.etag])
    }
}

import Foundation
import HTTPServer
import Postgres

/// `/v1/safeguarding-alerts`: the alerts a safeguarding concern opens (DOMAIN.md §1), listed,
/// read and acknowledged. An open alert is overdue from the end of the first working day after
/// the day (in England) it was raised: `due_at`, from `WorkingDayCalendar.deadline`.
///
/// - `GET /v1/safeguarding-alerts` (`feedback:read`): oldest first, filters `status`
///   (`open`, `acknowledged`), `overdue` (`true`, `false`), `from`/`to` (dates in England,
///   both included, on `raised_at`), cursor paging.
/// - `GET /v1/safeguarding-alerts/{id}` (`feedback:read`).
/// - `POST /v1/safeguarding-alerts/{id}/acknowledge` (`feedback:write`), body
///   `{"acknowledged_by": "...", "action_taken": "..."}`: 200 with the alert; 409 if it was
///   already acknowledged (the acknowledgement stands unchanged).
///
/// `action_taken` is narrative: only a key with `free_text:read` reads it.
struct SafeguardingRoutes {
    let access: AccessControl
    /// The clock the overdue rule is judged by; tests set it.
    var now: @Sendable () -> Date = { Date() }
    var rule = SafeguardingRule()

    static let resource = "safeguarding_alert"
    static let notFound = HTTPError(.notFound, detail: "There is no safeguarding alert with this id.")

    /// The rule with the caller's tenant's closure days in its calendar.
    private func tenantRule(_ tx: TenantTransaction) async throws -> SafeguardingRule {
        var tenantRule = rule
        let closures = try await ClosureDays.all(on: tx).map(\.day)
        tenantRule.calendar = WorkingDayCalendar(closureDays: rule.calendar.closureDays.union(closures))
        return tenantRule
    }

    func add(to router: inout RouterBuilder) {
        router.get("/v1/safeguarding-alerts", access.secure(.feedbackRead, resource: Self.resource) { request, context in
            try await list(request, context)
        })
        router.get("/v1/safeguarding-alerts/{id}", access.secure(.feedbackRead, resource: Self.resource) { request, context in
            guard let id = UUID(uuidString: request.parameter("id")) else { throw Self.notFound }
            let now = now()
            let alert = try await context.transaction { tx in
                let alert = try await SafeguardingStore.find(id, on: tx, now: now, rule: try await tenantRule(tx),
                                                             includeFreeText: context.principal.has(.freeTextRead))
                if alert != nil { tx.audit(.read, Self.resource, id: id.lowercased) }
                return alert
            }
            guard let alert else { throw Self.notFound }
            return Self.answer(alert)
        })
        router.post("/v1/safeguarding-alerts/{id}/acknowledge", access.secure(.feedbackWrite, resource: Self.resource) { request, context in
            try await acknowledge(request, context)
        })
    }

    // MARK: List

    private func list(_ request: Request, _ context: AccessContext) async throws -> Response {
        var query = QueryReader(request.query, allowed: ["status", "overdue", "from", "to"])
        let limit = query.limit()
        let after = query.cursor(SafeguardingStore.Position.self)
        let status = query.vocabulary("status", SafeguardingStatus.self)
        let overdue = query.vocabulary("overdue", Flag.self)
        let from = query.date("from"), to = query.date("to")
        let format = query.string("format", maxLength: 20)
        try query.finish()
        var problems: [FieldError] = []
        if let format, format != "json" { problems.append(FieldError(field: "format", message: "must be json (the only format of this list)")) }
        if let from, let to, from > to { problems.append(FieldError(field: "to", message: "must not be before from")) }
        guard problems.isEmpty else {
            throw HTTPError(.badRequest, type: "invalid-query", title: "The query string is not valid",
                            detail: "\(problems.count) parameter\(problems.count == 1 ? "" : "s") did not pass validation.",
                            errors: problems)
        }

        let filter = SafeguardingStore.Filter(
            status: status, overdue: overdue.map { $0 == .yes },
            raisedFrom: from.map(WorkingDayCalendar.startOfLocalDay),
            raisedBefore: to.map { WorkingDayCalendar.startOfLocalDay($0.adding(days: 1)) })
        let now = now()
        let includeFreeText = context.principal.has(.freeTextRead)
        let rows = try await context.transaction { tx in
            let rows = try await SafeguardingStore.list(on: tx, filter: filter, after: after, limit: limit + 1, now: now,
                                                        rule: try await tenantRule(tx), includeFreeText: includeFreeText)
            tx.audit(.list, Self.resource, rowsExported: min(rows.count, limit))
            return rows
        }
        let page = rows.prefix(limit)
        let next = rows.count > limit ? page.last.map { Cursor.encode($0.1) } : nil
        return Page(items: page.map(\.0), nextCursor: next).response(for: request)
    }

    /// `overdue=true|false`.
    enum Flag: String, CaseIterable {
        case yes = "true", no = "false"
    }

    // MARK: Acknowledge

    private enum Acknowledgement {
        case done(SafeguardingAlert)
        case already(SafeguardingAlert)
    }

    private func acknowledge(_ request: Request, _ context: AccessContext) async throws -> Response {
        guard let id = UUID(uuidString: request.parameter("id")) else { throw Self.notFound }
        var body = try FieldReader(body: request.body)
        let by = body.string("acknowledged_by", maxLength: 100)
        let actionTaken = body.string("action_taken", maxLength: 2000)
        try body.finish()
        guard let by, let actionTaken else { throw HTTPError.validation([]) }  // finish() has thrown already

        let now = now()
        let includeFreeText = context.principal.has(.freeTextRead)
        let outcome = try await context.transaction { tx -> Acknowledgement? in
            let changed = try await SafeguardingStore.acknowledge(id, by: by, actionTaken: actionTaken, on: tx)
            guard let alert = try await SafeguardingStore.find(id, on: tx, now: now, rule: try await tenantRule(tx), includeFreeText: includeFreeText) else {
                return nil
            }
            // The 409 shows the acknowledgement that stands: that is a read of it.
            tx.audit(changed ? .update : .read, Self.resource, id: id.lowercased)
            return changed ? .done(alert) : .already(alert)
        }
        switch outcome {
        case nil:
            throw Self.notFound
        case .done(let alert):
            return Self.answer(alert)
        case .already(let alert):
            var conflict = HTTPError(
                .conflict, type: "already-acknowledged", title: "Already acknowledged",
                detail: "This safeguarding alert was acknowledged already; the acknowledgement stands unchanged.")
            conflict.extensions["alert_id"] = alert.id.lowercased
            if let at = alert.acknowledgedAt { conflict.extensions["acknowledged_at"] = JSON.iso8601(at) }
            if let by = alert.acknowledgedBy { conflict.extensions["acknowledged_by"] = by }
            throw conflict
        }
    }

    static func answer(_ alert: SafeguardingAlert) -> Response {
        Response.json(alert)
    }
}

import Foundation
import HTTPServer
import Postgres

/// `/v1/you-said`: what young people said, and the council's answer to it.
struct YouSaidRoutes {
    let access: AccessControl

    static let notFound = HTTPError(.notFound, detail: "There is no \"you said\" item with this id.")

    func add(to router: inout RouterBuilder) {
        router.post("/v1/you-said", access.secure(.involvementWrite, resource: .youSaidItem, Idempotency.wrap(Self.create)))
        router.get("/v1/you-said", access.secure(.involvementRead, resource: .youSaidItem, Self.list.respond))
        router.get("/v1/you-said/{id}", YouSaidItem.readByID(access, .involvementRead, resource: .youSaidItem, notFound: Self.notFound))
        router.patch("/v1/you-said/{id}", access.secure(.involvementWrite, resource: .youSaidItem, Self.change))
        router.get("/v1/you-said/{id}/timeline", access.secure(.involvementRead, resource: .youSaidItem, YouSaidTimeline.respond))
        YouSaidMilestoneRoutes(access: access).add(to: &router)
        YouSaidFeedbackGivenRoutes(access: access).add(to: &router)
        YouSaidPublication(access: access).add(to: &router)
    }

    static let list = ListEndpoint<YouSaidItem, Void>(
        resource: .youSaidItem,
        filters: [
            .vocabulary("status", YouSaidStatus.self, "i.status"), .text("theme", "i.theme"),
            .vocabulary("service_area", ServiceArea.self, "i.service_area"),
            .custom("source_kind", read: { $0.vocabulary($1, YouSaidSourceKind.self) }) { kind, _ in
                "cardinality(\(unsafeRaw: "i." + kind.column)) > 0"
            },
            .custom("published", read: { $0.bool($1) }) { published, _ in
                "\(unsafeRaw: published ? "" : "NOT ")EXISTS (SELECT 1 FROM you_said_publications p WHERE p.tenant_id = i.tenant_id AND p.item_id = i.id)"
            },
            .custom("due_feedback", read: { $0.bool($1) }) { due, _ in "\(unsafeRaw: YouSaidItem.dueFeedbackSQL) = \(due)" },
        ],
        days: DayRange(column: "i.raised_on", zone: .date),
        order: ListOrder(descending: [("i.seq", .bigint)]),
        csvFilename: "you-said.csv")

    static func exists(_ id: UUID, on tx: TenantTransaction) async throws -> Bool {
        try await !tx.query("SELECT 1 FROM you_said_items WHERE tenant_id = \(tx.principal.tenantID) AND id = \(id)").isEmpty
    }

    /// `POST /v1/you-said`: a new item, `planned`, with its "raised" timeline entry.
    static func create(_ request: Request, _ context: AccessContext) async throws -> Response {
        var body = try FieldReader(body: request.body)
        let fields = YouSaidFields.read(&body, creating: true)
        let principal = context.principal
        let item = try await context.transaction { tx -> YouSaidItem in
            for error in try await YouSaidFields.sourceErrors(fields.sources ?? [:], on: tx) { body.reject(error.field, error.message) }
            try body.finish()
            guard let said = fields.said, let theme = fields.theme, let serviceArea = fields.serviceArea, let raisedOn = fields.raisedOn else {
                throw HTTPError.validation([FieldError(field: "(body)", message: "is incomplete")])
            }
            let sources = fields.sources ?? [:]
            let weDid = fields.weDid ?? nil
            let rows = try await tx.query("""
                INSERT INTO you_said_items (tenant_id, organisation_id, said, theme, service_area, raised_on, feedback_ids, complaint_ids,
                                            activity_ids, group_ids, owner_team, we_did, target_on, answer_changed_at, created_by)
                VALUES (\(principal.tenantID), \(principal.organisationID), \(said), \(theme), \(serviceArea.rawValue), \(raisedOn),
                        \(sources[.feedback] ?? [])::uuid[], \(sources[.complaints] ?? [])::uuid[], \(sources[.activities] ?? [])::uuid[],
                        \(sources[.groups] ?? [])::uuid[], \(fields.ownerTeam ?? nil), \(weDid), \(fields.targetOn ?? nil),
                        CASE WHEN \(weDid)::text IS NULL THEN NULL ELSE now() END, \(principal.keyID))
                RETURNING id
                """)
            guard let id = try rows.first?.decode(UUID.self, column: "id") else { throw notFound }
            var details: [(String, JSONValue)] = [
                ("theme", .string(theme)), ("service_area", .string(serviceArea.rawValue)), ("raised_on", .string(raisedOn.description)),
            ]
            details += sourceDetails(sources)
            if let team = fields.ownerTeam ?? nil { details.append(("owner_team", .string(team))) }
            if let target = fields.targetOn ?? nil { details.append(("target_on", .string(target.description))) }
            var freeText: [(String, JSONValue)] = [("said", .string(said))]
            if let weDid { freeText.append(("we_did", .string(weDid))) }
            try await YouSaidTimeline.record(.raised, item: id, details: details, freeText: freeText, on: tx)
            tx.audit(.create, .youSaidItem, id: id.lowercased)
            guard let item = try await YouSaidItem.table.find(id, on: tx, includeFreeText: principal.has(.freeTextRead)) else { throw notFound }
            return item
        }
        return item.response(status: .created)
    }

    /// The sources as a timeline entry's details: each kind's ids.
    static func sourceDetails(_ sources: [YouSaidSourceKind: [UUID]]) -> [(String, JSONValue)] {
        [("sources", .object(YouSaidSourceKind.allCases.map { kind in
            (key: kind.rawValue, value: JSONValue.array((sources[kind] ?? []).map { .string($0.lowercased) }))
        }))]
    }

    /// `PATCH /v1/you-said/{id}` with `If-Match`: the item's fields and its answer; a new
    /// `status` moves it through `YouSaidLifecycle` in the same statement. In this order: 404,
    /// 428 without `If-Match`, 409 for a status it cannot move to (naming the allowed ones),
    /// 422 naming each field at fault, 412 when `If-Match` is stale.
    static func change(_ request: Request, _ context: AccessContext) async throws -> Response {
        guard let id = UUID(uuidString: request.parameter("id")) else { throw notFound }
        let ifMatch = IfMatch(request)
        var body = try FieldReader(body: request.body)
        let fields = YouSaidFields.read(&body, creating: false)
        let principal = context.principal
        let item = try await context.transaction { tx -> YouSaidItem in
            guard let current = try await YouSaidItem.table.find(id, on: tx, includeFreeText: true) else { throw notFound }
            // Only once it is known to be the caller's: a stranger hears 404, as for a read.
            let ifMatch = try ifMatch ?? IfMatch.required(request)
            let machine = YouSaidLifecycle.machine
            let transition = try fields.status.flatMap { $0 == current.state ? nil : try machine.transition(to: $0, from: current.state) }
            let values = transition.map { machine.fields(of: $0.action, from: &body) } ?? ActionValues()
            var reason: String?? = nil
            if transition?.action != .declareNotPossible, body.has("reason_not_possible") {
                if transition == nil, current.state == .notPossible {
                    reason = .some(body.string("reason_not_possible", maxLength: YouSaidItem.maxTextLength))
                } else {
                    _ = body.raw("reason_not_possible")
                    body.reject("reason_not_possible", "is given only with the status not_possible")
                }
            }
            if transition?.action != .reopen, body.has("reopen_reason") {
                _ = body.raw("reopen_reason")
                body.reject("reopen_reason", "is given only when reopening (status in_progress after done or not_possible)")
            }
            if let progress = fields.progressPercent, progress < current.progressPercent, fields.progressNote == nil {
                body.reject("progress_note", "is required when progress_percent goes down (it is \(current.progressPercent))")
            }
            if let sources = fields.sources {
                for error in try await YouSaidFields.sourceErrors(sources, on: tx) { body.reject(error.field, error.message) }
            }
            try body.finish()
            try ifMatch.check(current: current.etag)

            // Without free_text:read a key is never told whether its free text matched the stored
            // text: whatever it sends counts as a change.
            var change = Change(compareFreeText: principal.has(.freeTextRead))
            change.field("said", fields.said, current.said ?? "", freeText: true)
            change.field("theme", fields.theme, current.theme)
            change.field("service_area", fields.serviceArea?.rawValue, current.serviceArea)
            change.field("raised_on", fields.raisedOn, current.raisedOn)
            change.field("owner_team", fields.ownerTeam, current.ownerTeam)
            change.field("we_did", fields.weDid, current.weDid, freeText: true, answer: true)
            change.field("target_on", fields.targetOn, current.targetOn)
            change.field("progress_percent", fields.progressPercent, current.progressPercent, answer: true)
            if let reason { change.field("reason_not_possible", reason, current.reasonNotPossible, freeText: true) }
            if let sources = fields.sources {
                let stored = current.sources ?? YouSaidSources()
                let now = [YouSaidSourceKind.feedback: stored.feedback, .complaints: stored.complaints, .activities: stored.activities, .groups: stored.groups]
                if YouSaidSourceKind.allCases.contains(where: { (sources[$0] ?? []).map(\.lowercased) != now[$0] }) {
                    change.assignments += YouSaidSourceKind.allCases.map { "\(unsafeRaw: $0.column) = \(sources[$0] ?? [])::uuid[]" }
                    change.names.append("sources")
                    change.details += sourceDetails(sources)
                }
            }
            if let note = fields.progressNote { change.freeText.append(("progress_note", .string(note))) }
            // The reason is stored on the item, not in its lifecycle history: the timeline keeps it here.
            if transition?.action == .declareNotPossible, let reason = values.text("reason_not_possible") {
                change.names.append("reason_not_possible")
                change.freeText.append(("reason_not_possible", .string(reason)))
            }
            guard transition != nil || !change.names.isEmpty else {
                guard let unchanged = try await YouSaidItem.table.find(id, on: tx, includeFreeText: principal.has(.freeTextRead)) else { throw notFound }
                return unchanged
            }
            var assignments = change.assignments
            assignments.append("updated_at = now()")
            if transition != nil || change.answerChanged { assignments.append("answer_changed_at = now()") }
            if let transition {
                if transition.action == .reopen { assignments.append("reason_not_possible = NULL") }
                guard try await machine.apply(transition, to: id, version: current.version, values: values, set: assignments, on: tx) != nil else {
                    throw IfMatch.changedMeanwhile
                }
            } else {
                let updated = try await tx.execute("""
                    UPDATE you_said_items SET version = version + 1, \(SQLFragment.joined(assignments, separator: ", "))
                     WHERE tenant_id = \(principal.tenantID) AND id = \(id) AND version = \(current.version)
                    """)
                guard updated == 1 else { throw IfMatch.changedMeanwhile }
            }
            if !change.names.isEmpty || change.freeText.contains(where: { $0.0 == "progress_note" }) {
                try await YouSaidTimeline.record(.changed, item: id, details: [("changed", .array(change.names.map { .string($0) }))] + change.details,
                                                 freeText: change.freeText, on: tx)
            }
            tx.audit(.update, .youSaidItem, id: id.lowercased)
            guard let item = try await YouSaidItem.table.find(id, on: tx, includeFreeText: principal.has(.freeTextRead)) else { throw notFound }
            return item
        }
        return item.response(status: .ok)
    }

    /// What a `PATCH` changes: the assignments, the names and new values of the fields that
    /// differ (free text apart), and whether the answer young people are owed news of changed.
    struct Change {
        /// Whether free text is compared with the stored text (else any sent counts as changed).
        let compareFreeText: Bool
        var assignments: [SQLFragment] = []
        var names: [String] = []
        var details: [(String, JSONValue)] = []
        var freeText: [(String, JSONValue)] = []
        var answerChanged = false

        /// `column = new` when `new` is given (nil: not in the request) and differs from `old`.
        mutating func field<Value: PostgresEncodable & Equatable & CustomStringConvertible>(
            _ column: String, _ new: Value?, _ old: Value, freeText: Bool = false, answer: Bool = false) {
            guard let new, new != old || (freeText && !compareFreeText) else { return }
            record(column, new, freeText: freeText, answer: answer)
        }

        /// For a field `null` clears: `new` is nil when absent, `.some(nil)` to clear.
        mutating func field<Value: PostgresEncodable & Equatable & CustomStringConvertible>(
            _ column: String, _ new: Value??, _ old: Value?, freeText: Bool = false, answer: Bool = false) {
            guard let new, new != old || (freeText && !compareFreeText) else { return }
            record(column, new, freeText: freeText, answer: answer)
        }

        private mutating func record<Value: PostgresEncodable & CustomStringConvertible>(_ column: String, _ new: Value?, freeText isFreeText: Bool,
                                                                                         answer: Bool) {
            assignments.append("\(unsafeRaw: column) = \(new)")
            names.append(column)
            let value: JSONValue = new.map { value in value is Int ? .number(value.description) : .string(value.description) } ?? .null
            if isFreeText { freeText.append((column, value)) } else { details.append((column, value)) }
            if answer { answerChanged = true }
        }
    }
}

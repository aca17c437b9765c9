import Foundation
import HTTPServer
import Postgres

/// A record's lifecycle, declared as a table: state x action -> state, with the fields each
/// action needs and what it does to the record's clock. From the table come
/// - `allowedActions(in:)`, shown on every record as `allowed_actions`;
/// - the 409 for an action its state does not allow, naming the ones it does;
/// - the fields an action reads from the request (each required, text of bounded length);
/// - `apply`: one guarded statement that moves the state and writes the history row, so of two
///   callers acting on the same version exactly one wins.
///
/// ```swift
/// static let lifecycle = Lifecycle<AlertStatus, AlertAction>(resource: .safeguardingAlert, table: "safeguarding_alerts", [
///     .init(.open, .acknowledge, .acknowledged, fields: [.text("acknowledged_by", 100)], clock: .stops),
/// ])
/// ```
struct Lifecycle<State: RawRepresentable & Hashable & Sendable, Action: RawRepresentable & Hashable & Sendable>: Sendable
where State.RawValue == String, Action.RawValue == String {
    struct Transition: Sendable {
        let from: State
        let action: Action
        let to: State
        /// What the action must carry, each required.
        let fields: [ActionField]
        /// Columns set to the time of the action (`acknowledged_at`).
        let stamps: [String]
        let clock: ClockEffect

        init(_ from: State, _ action: Action, _ to: State, fields: [ActionField] = [], stamps: [String] = [], clock: ClockEffect = .none) {
            self.from = from
            self.action = action
            self.to = to
            self.fields = fields
            self.stamps = stamps
            self.clock = clock
        }
    }

    /// A field an action carries: text stored in the record's column of the same name, or a
    /// day (`YYYY-MM-DD`) stored in the `date` column it names.
    struct ActionField: Sendable {
        let name: String
        let maxLength: Int
        /// Narrative: kept out of the history row, like any free text.
        let isFreeText: Bool
        var column: String
        var isDate = false

        static func text(_ name: String, _ maxLength: Int, freeText: Bool = false) -> ActionField {
            ActionField(name: name, maxLength: maxLength, isFreeText: freeText, column: name)
        }

        /// The day the action takes effect (`on`), stored in `column` (`withdrawn_on`).
        static func date(_ name: String, column: String) -> ActionField {
            ActionField(name: name, maxLength: 10, isFreeText: false, column: column, isDate: true)
        }
    }

    /// What an action does to the record's deadline clock.
    enum ClockEffect: Sendable {
        case none
        /// The clock stops for good: a record in the new state is never overdue.
        case stops
    }

    let resource: AuditResource
    /// The record's table: constant SQL, with `tenant_id`, `id`, `organisation_id`, `version`
    /// and the state column.
    let table: String
    let stateColumn: String
    /// The problem a disallowed action answers (409).
    let conflict: ProblemType
    let transitions: [Transition]

    init(resource: AuditResource, table: String, stateColumn: String = "status", conflict: ProblemType = .actionNotAllowed,
         _ transitions: [Transition]) {
        self.resource = resource
        self.table = table
        self.stateColumn = stateColumn
        self.conflict = conflict
        self.transitions = transitions
    }

    func allowedActions(in state: State) -> [Action] {
        transitions.filter { $0.from == state }.map(\.action)
    }

    /// Whether a record in `state` still runs against its deadline.
    func clockRuns(in state: State) -> Bool {
        !transitions.contains { $0.to == state && $0.clock == .stops }
    }

    /// The transition `action` makes from `state`, or the 409 naming the allowed actions.
    func transition(_ action: Action, from state: State) throws(HTTPError) -> Transition {
        if let transition = transitions.first(where: { $0.from == state && $0.action == action }) { return transition }
        let allowed = allowedActions(in: state).map(\.rawValue)
        var problem = HTTPError(conflict, detail: "This record is \(state.rawValue): \(action.rawValue) is not allowed"
                                    + (allowed.isEmpty ? "; nothing more can be done to it." : "; allowed: \(allowed.joined(separator: ", ")).") )
        problem.extensions["state"] = .text(state.rawValue)
        problem.extensions["allowed_actions"] = .list(allowed)
        throw problem
    }

    /// Reads the fields every transition of `action` carries (each required) from `body`.
    func fields(of action: Action, from body: inout FieldReader) -> [String: String] {
        var values: [String: String] = [:]
        var seen = Set<String>()
        for field in transitions.filter({ $0.action == action }).flatMap(\.fields) where seen.insert(field.name).inserted {
            values[field.name] = field.isDate ? body.date(field.name)?.description : body.string(field.name, maxLength: field.maxLength)
        }
        return values
    }

    /// Moves the record from `transition.from` to `transition.to`, if it is still in that state
    /// (and at `version`, when given), storing `fields` in their columns and writing the history
    /// row (`lifecycle_history`), all in one statement. Nil when the record was not in that
    /// state or at that version any more: another caller won.
    func apply(_ transition: Transition, to id: UUID, version: Int?, fields: [String: String], on tx: TenantTransaction) async throws -> Int? {
        var assignments: [SQLFragment] = ["\(unsafeRaw: stateColumn) = \(transition.to.rawValue)", "version = version + 1"]
        assignments += transition.stamps.map { "\(unsafeRaw: $0) = now()" }
        var details: [(String, JSONValue)] = []
        for field in transition.fields {
            let value = fields[field.name]
            assignments.append("\(unsafeRaw: field.column) = \(value)::\(unsafeRaw: field.isDate ? "date" : "text")")
            if !field.isFreeText { details.append((field.name, value.map(JSONValue.string) ?? .null)) }
        }
        let principal = tx.principal
        let rows = try await tx.query("""
            WITH changed AS (
                UPDATE \(unsafeRaw: table) SET \(SQLFragment.joined(assignments, separator: ", "))
                 WHERE tenant_id = \(principal.tenantID) AND id = \(id) AND \(unsafeRaw: stateColumn) = \(transition.from.rawValue)
                   AND (\(version)::int IS NULL OR version = \(version)::int)
                RETURNING tenant_id, id, organisation_id, version
            ), history AS (
                INSERT INTO lifecycle_history (tenant_id, organisation_id, resource_type, resource_id, version, action, from_state,
                                               to_state, details, key_id, request_id)
                SELECT tenant_id, organisation_id, \(resource.rawValue), id, version, \(transition.action.rawValue),
                       \(transition.from.rawValue), \(transition.to.rawValue), \(JSONValue.object(details).serialized)::jsonb,
                       \(principal.keyID), \(tx.requestID)
                  FROM changed
            )
            SELECT version FROM changed
            """)
        return try rows.first?.decode(Int.self, column: "version")
    }
}

extension Lifecycle {
    /// `POST <record>/<action>`, whole: the action's fields read from the body (422), the record
    /// found (404), the action allowed in its state (409), `check` passed (422), `If-Match` when
    /// sent (412); then applied with its history row, audited, and the record answered as it
    /// now stands.
    func perform<Record: AnsweredRecord>(_ action: Action, _ request: Request, _ context: AccessContext, notFound: HTTPError,
                                         state: @escaping @Sendable (Record) -> State,
                                         check: @escaping @Sendable (Record, [String: String]) throws -> Void = { _, _ in },
                                         find: @escaping @Sendable (TenantTransaction) async throws -> Record?) async throws -> Response {
        let ifMatch = IfMatch(request)
        var body = try FieldReader(body: request.body)
        let fields = self.fields(of: action, from: &body)
        try body.finish()
        let record = try await context.transaction { tx -> Record in
            guard let current = try await find(tx) else { throw notFound }
            let transition = try self.transition(action, from: state(current))
            try check(current, fields)
            try ifMatch?.check(current: current.etag)
            guard try await apply(transition, to: current.id, version: current.version, fields: fields, on: tx) != nil else {
                throw IfMatch.changedMeanwhile
            }
            tx.audit(.update, resource, id: current.id.lowercased)
            guard let record = try await find(tx) else { throw notFound }
            return record
        }
        return record.response(status: .ok)
    }

    /// The 422 for a dated action's `on` (as `fields` read it) before `day`, the day the record
    /// began (`what` says which: "the consent was given").
    func rejectDay(_ on: String?, before day: CalendarDate, _ what: String) throws(HTTPError) {
        guard let on = on.flatMap(CalendarDate.init), on < day else { return }
        throw HTTPError.validation([FieldError(field: "on", message: "must not be before the day \(what) (\(day))")])
    }
}

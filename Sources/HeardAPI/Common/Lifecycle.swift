import Foundation
import HTTPServer
import Postgres

/// A record's lifecycle, declared as a table: state x action -> state, with the fields each
/// action carries and what it does to the record's clock. From the table come
/// - `allowedActions(in:)`, shown on every record as `allowed_actions` (narrowed, where the
///   record's own circumstances rule an action out, by the area's `where` predicate);
/// - the 409 for an action its state does not allow, naming the ones it does;
/// - the fields an action reads from the request (`fields(of:from:today:)`): text of bounded
///   length, dates, whole numbers, vocabulary values, each required or not; for a `dated`
///   lifecycle, the day it happened (`on`: today unless given, never in the future); for one
///   with `notes`, an optional `note` (free text);
/// - `apply`: one guarded statement that moves the state, sets the record's columns (the
///   action's stored fields and whatever the area works out, such as due dates) and writes the
///   history row, so of two callers acting on the same version exactly one wins.
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
        /// What the action carries.
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

    /// A field an action carries: stored in the record's column (`column`, by default the
    /// field's own name) or only in the history row; free text never in the history's details.
    struct ActionField: Sendable {
        enum Kind: Sendable {
            case text(maxLength: Int)
            case date
            case integer(ClosedRange<Int>)
            case vocabulary([String])
        }

        let name: String
        let kind: Kind
        /// Narrative: kept out of the history row's details, like any free text (in its
        /// `free_text`, read only with `free_text:read`, unless stored in a column).
        let isFreeText: Bool
        let isRequired: Bool
        /// The record's column it is stored in; nil: only in the history row.
        let column: String?

        static func text(_ name: String, _ maxLength: Int, freeText: Bool = false, required: Bool = true, stored: Bool = true) -> ActionField {
            ActionField(name: name, kind: .text(maxLength: maxLength), isFreeText: freeText, isRequired: required, column: stored ? name : nil)
        }

        static func date(_ name: String, required: Bool = true, stored: Bool = true) -> ActionField {
            ActionField(name: name, kind: .date, isFreeText: false, isRequired: required, column: stored ? name : nil)
        }

        /// The day the action takes effect, stored in `column` (`withdrawn_on`).
        static func date(_ name: String, column: String) -> ActionField {
            ActionField(name: name, kind: .date, isFreeText: false, isRequired: true, column: column)
        }

        static func integer(_ name: String, _ range: ClosedRange<Int>, required: Bool = true, stored: Bool = true) -> ActionField {
            ActionField(name: name, kind: .integer(range), isFreeText: false, isRequired: required, column: stored ? name : nil)
        }

        static func vocabulary<Value: RawRepresentable & CaseIterable>(_ name: String, _ type: Value.Type, required: Bool = true,
                                                                       stored: Bool = true) -> ActionField where Value.RawValue == String {
            ActionField(name: name, kind: .vocabulary(Value.allCases.map(\.rawValue)), isFreeText: false, isRequired: required,
                        column: stored ? name : nil)
        }
    }

    /// What an action does to the record's deadline clock.
    enum ClockEffect: Sendable {
        case none
        /// The clock stops for good: a record in the new state is never overdue.
        case stops
        /// The clock starts (or starts afresh, at a new stage).
        case starts
        /// The clock stops until the record is resumed: nothing is due meanwhile.
        case suspends
        case resumes
        /// The allowance grows.
        case extends
    }

    let resource: AuditResource
    /// The record's table: constant SQL, with `tenant_id`, `id`, `organisation_id`, `version`
    /// and the state column.
    let table: String
    let stateColumn: String
    /// The problem a disallowed action answers (409).
    let conflict: ProblemType
    /// Whether each action carries the day it happened (`on`).
    let dated: Bool
    /// Whether each action may carry a `note` (free text).
    let notes: Bool
    let transitions: [Transition]

    static var noteMaxLength: Int { 8000 }

    init(resource: AuditResource, table: String, stateColumn: String = "status", conflict: ProblemType = .actionNotAllowed,
         dated: Bool = false, notes: Bool = false, _ transitions: [Transition]) {
        self.resource = resource
        self.table = table
        self.stateColumn = stateColumn
        self.conflict = conflict
        self.dated = dated
        self.notes = notes
        self.transitions = transitions
    }

    /// The actions allowed in `state`, for a record whose circumstances `allows` judges (a
    /// transition it refuses is not offered), in the table's order.
    func allowedActions(in state: State, where allows: (Transition) -> Bool = { _ in true }) -> [Action] {
        var actions: [Action] = []
        for transition in transitions where transition.from == state && allows(transition) && !actions.contains(transition.action) {
            actions.append(transition.action)
        }
        return actions
    }

    /// Whether a record in `state` still runs against its deadline.
    func clockRuns(in state: State) -> Bool {
        !transitions.contains { $0.to == state && ($0.clock == .stops || $0.clock == .suspends) }
    }

    /// The transition `action` makes from `state` (for a record `allows` judges), or the 409
    /// naming the allowed actions.
    func transition(_ action: Action, from state: State, where allows: (Transition) -> Bool = { _ in true }) throws(HTTPError) -> Transition {
        if let transition = transitions.first(where: { $0.from == state && $0.action == action && allows($0) }) { return transition }
        let allowed = allowedActions(in: state, where: allows).map(\.rawValue)
        var problem = HTTPError(conflict, detail: "This record is \(state.rawValue): \(action.rawValue) is not allowed"
                                    + (allowed.isEmpty ? "; nothing more can be done to it." : "; allowed: \(allowed.joined(separator: ", ")).") )
        problem.extensions["state"] = .text(state.rawValue)
        problem.extensions["allowed_actions"] = .list(allowed)
        throw problem
    }

    /// The states a record in `state` can move to, in the table's order.
    func allowedStates(from state: State, where allows: (Transition) -> Bool = { _ in true }) -> [State] {
        var states: [State] = []
        for transition in transitions where transition.from == state && allows(transition) && !states.contains(transition.to) {
            states.append(transition.to)
        }
        return states
    }

    /// For a record changed by naming its new state (a `PATCH` of `status`): the transition from
    /// `state` to `target`, or the 409 naming the state, the allowed actions and the states it
    /// may move to (`allowed_states`).
    func transition(to target: State, from state: State, where allows: (Transition) -> Bool = { _ in true }) throws(HTTPError) -> Transition {
        if let transition = transitions.first(where: { $0.from == state && $0.to == target && allows($0) }) { return transition }
        let states = allowedStates(from: state, where: allows).map(\.rawValue)
        var problem = HTTPError(conflict, detail: "This record is \(state.rawValue): it cannot become \(target.rawValue)"
                                    + (states.isEmpty ? "; nothing more can be done to it." : "; it can become: \(states.joined(separator: ", ")).") )
        problem.extensions["state"] = .text(state.rawValue)
        problem.extensions["allowed_actions"] = .list(allowedActions(in: state, where: allows).map(\.rawValue))
        problem.extensions["allowed_states"] = .list(states)
        throw problem
    }

    /// Reads what `action` carries from `body`: the fields of its transitions, and `on` and
    /// `note` where the lifecycle has them. `today` is the day `on` defaults to and may not be after.
    func fields(of action: Action, from body: inout FieldReader, today: CalendarDate? = nil) -> ActionValues {
        var seen = Set<String>()
        let fields = transitions.filter { $0.action == action }.flatMap(\.fields).filter { seen.insert($0.name).inserted }
        return read(fields, from: &body, today: today)
    }

    /// Reads what one transition carries (where the same action carries different fields from
    /// different states, as a staged lifecycle's move back needs a reason and its move forward
    /// does not), and `on` and `note` where the lifecycle has them.
    func fields(of transition: Transition, from body: inout FieldReader, today: CalendarDate? = nil) -> ActionValues {
        read(transition.fields, from: &body, today: today)
    }

    private func read(_ fields: [ActionField], from body: inout FieldReader, today: CalendarDate?) -> ActionValues {
        var values = ActionValues()
        for field in fields {
            let value: ActionValue? = switch field.kind {
            case .text(let maxLength): body.string(field.name, maxLength: maxLength, required: field.isRequired).map(ActionValue.text)
            case .date: body.date(field.name, required: field.isRequired).map(ActionValue.date)
            case .integer(let range): body.integer(field.name, in: range, required: field.isRequired).map(ActionValue.integer)
            case .vocabulary(let allowed): body.choice(field.name, allowed, required: field.isRequired).map(ActionValue.text)
            }
            values.values[field.name] = value
        }
        if dated, let today {
            let on = body.date("on", required: false, notAfter: today)
            values.on = on ?? today
        }
        if notes { values.note = body.optionalString("note", maxLength: Self.noteMaxLength) }
        return values
    }

    /// Moves the record from `transition.from` to `transition.to`, if it is still in that state
    /// (and at `version`, when given), storing the action's stored fields in their columns and
    /// `set` (assignments the area works out), and writing the history row
    /// (`lifecycle_history`: the fields that are not free text, `on` and `details` as its
    /// details; free text and the note as its `free_text`), all in one statement. Nil when the
    /// record was not in that state or at that version any more: another caller won.
    func apply(_ transition: Transition, to id: UUID, version: Int?, values: ActionValues, set: [SQLFragment] = [],
               details extra: [(String, JSONValue)] = [], on tx: TenantTransaction) async throws -> Int? {
        var assignments: [SQLFragment] = ["\(unsafeRaw: stateColumn) = \(transition.to.rawValue)", "version = version + 1"]
        assignments += transition.stamps.map { "\(unsafeRaw: $0) = now()" }
        var details: [(String, JSONValue)] = values.on.map { [("on", .string($0.description))] } ?? []
        var freeText: [(String, JSONValue)] = []
        for field in transition.fields {
            let value = values.values[field.name]
            if let column = field.column { assignments.append(value?.assignment(to: column) ?? "\(unsafeRaw: column) = NULL") }
            if field.isFreeText {
                if field.column == nil, let value { freeText.append((field.name, value.json)) }
            } else {
                details.append((field.name, value?.json ?? .null))
            }
        }
        if let note = values.note { freeText.append(("note", .string(note))) }
        assignments += set
        details += extra
        let principal = tx.principal
        let rows = try await tx.query("""
            WITH changed AS (
                UPDATE \(unsafeRaw: table) SET \(SQLFragment.joined(assignments, separator: ", "))
                 WHERE tenant_id = \(principal.tenantID) AND id = \(id) AND \(unsafeRaw: stateColumn) = \(transition.from.rawValue)
                   AND (\(version)::int IS NULL OR version = \(version)::int)
                RETURNING tenant_id, id, organisation_id, version
            ), history AS (
                INSERT INTO lifecycle_history (tenant_id, organisation_id, resource_type, resource_id, version, action, from_state,
                                               to_state, details, free_text, key_id, request_id)
                SELECT tenant_id, organisation_id, \(resource.rawValue), id, version, \(transition.action.rawValue),
                       \(transition.from.rawValue), \(transition.to.rawValue), \(JSONValue.object(details).serialized)::jsonb,
                       \(freeText.isEmpty ? nil : JSONValue.object(freeText).serialized)::jsonb, \(principal.keyID), \(tx.requestID)
                  FROM changed
            )
            SELECT version FROM changed
            """)
        return try rows.first?.decode(Int.self, column: "version")
    }
}

extension Lifecycle where Action == State {
    /// A lifecycle of stages in `order`, each move named by the stage it goes to (`{"to": stage}`):
    /// forward one stage at a time, carrying `forward`; back to any earlier stage, carrying `back`
    /// (a required reason, say). Any other move is the 409 naming the allowed ones.
    static func stages(_ order: [State], resource: AuditResource, table: String, stateColumn: String = "stage",
                       conflict: ProblemType = .actionNotAllowed, dated: Bool = true, forward: [ActionField] = [],
                       back: [ActionField]) -> Lifecycle {
        var transitions: [Transition] = []
        for (index, stage) in order.enumerated() {
            if index + 1 < order.count { transitions.append(Transition(stage, order[index + 1], order[index + 1], fields: forward)) }
            for earlier in order[..<index].reversed() { transitions.append(Transition(stage, earlier, earlier, fields: back)) }
        }
        return Lifecycle(resource: resource, table: table, stateColumn: stateColumn, conflict: conflict, dated: dated, transitions)
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
        let values = self.fields(of: action, from: &body)
        try body.finish()
        let record = try await context.transaction { tx -> Record in
            guard let current = try await find(tx) else { throw notFound }
            let transition = try self.transition(action, from: state(current))
            try check(current, values.strings)
            try ifMatch?.check(current: current.etag)
            guard try await apply(transition, to: current.id, version: current.version, values: values, on: tx) != nil else {
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

/// A value an action carries.
enum ActionValue: Sendable, Equatable {
    case text(String)
    case date(CalendarDate)
    case integer(Int)

    var json: JSONValue {
        switch self {
        case .text(let text): .string(text)
        case .date(let date): .string(date.description)
        case .integer(let number): .number(String(number))
        }
    }

    /// `column = value`, the value bound.
    func assignment(to column: String) -> SQLFragment {
        switch self {
        case .text(let text): "\(unsafeRaw: column) = \(text)"
        case .date(let date): "\(unsafeRaw: column) = \(date)"
        case .integer(let number): "\(unsafeRaw: column) = \(number)"
        }
    }
}

/// What an action carried, as `Lifecycle.fields(of:from:today:)` read it.
struct ActionValues: Sendable {
    var values: [String: ActionValue] = [:]
    /// The day it happened (a dated lifecycle's).
    var on: CalendarDate?
    var note: String?

    subscript(name: String) -> ActionValue? { values[name] }

    /// The values as text (a day as `YYYY-MM-DD`), for checks that read them so.
    var strings: [String: String] {
        values.compactMapValues { value in
            switch value {
            case .text(let text): text
            case .date(let date): date.description
            case .integer(let number): String(number)
            }
        }
    }

    func text(_ name: String) -> String? {
        if case .text(let text) = values[name] { text } else { nil }
    }

    func date(_ name: String) -> CalendarDate? {
        if case .date(let date) = values[name] { date } else { nil }
    }

    func integer(_ name: String) -> Int? {
        if case .integer(let number) = values[name] { number } else { nil }
    }
}

/// One entry of a record's history as it is answered (`history`, oldest first): what was done,
/// on which day, from which state to which, by which key, when it was recorded, what it carried
/// (`details`; with `free_text:read` also its narrative fields) and its `note` (free text: only
/// with `free_text:read`). Read from `lifecycle_history`; an area adds the record's creation as
/// its first entry (`LifecycleEvent(created:...)`).
struct LifecycleEvent: StoredRecord {
    var action = ""
    var on: CalendarDate?
    var fromState: String?
    var toState = ""
    var details = JSONValue.object([])
    var keyId = UUID.zero
    var recordedAt = Date(timeIntervalSince1970: 0)
    var note: String?
    var version = 1
    var detailsText = "{}"
    var freeTextText: String?
    var includesFreeText = false

    static let table = Table<LifecycleEvent>("lifecycle_history h", [
        .column("action", "h.action", \.action), .column("on", "(h.details->>'on')::date", \.on),
        .column("from_state", "h.from_state", \.fromState), .column("to_state", "h.to_state", \.toState),
        .computed("details", \.details), .column("key_id", "h.key_id", \.keyId), .column("recorded_at", "h.occurred_at", \.recordedAt),
        .freeText("note", "h.free_text->>'note'", \.note), .column("version", "h.version", \.version),
        .column("details_text", "(h.details - 'on')::text", \.detailsText, hidden: true),
        .column("free_text_text", "(h.free_text - 'note')::text", \.freeTextText, hidden: true, freeText: true),
    ])

    /// The record's creation, as its history's first entry.
    init(created action: String, on day: CalendarDate?, state: String, keyID: UUID, at instant: Date, includesFreeText: Bool) {
        self.action = action
        self.on = day
        self.toState = state
        self.keyId = keyID
        self.recordedAt = instant
        self.includesFreeText = includesFreeText
    }

    init() {}

    /// What the action carried: its details, and its narrative fields when they were read.
    func detail(_ name: String) -> JSONValue? {
        guard case .object(let members) = details else { return nil }
        return members.first { $0.key == name }?.value
    }

    /// The history rows of `id` (a record of `resource`), oldest first.
    static func history(of resource: AuditResource, _ id: UUID, on tx: TenantTransaction, includeFreeText: Bool) async throws -> [LifecycleEvent] {
        try history(from: try await tx.query(historyQuery(of: resource, id, on: tx, includeFreeText: includeFreeText)), includeFreeText: includeFreeText)
    }

    /// The statement of `history`, to send with others; `history(from:)` reads its rows.
    static func historyQuery(of resource: AuditResource, _ id: UUID, on tx: TenantTransaction, includeFreeText: Bool) -> PostgresQuery {
        """
        \(unsafeRaw: table.select(includeFreeText: includeFreeText))
         WHERE h.tenant_id = \(tx.principal.tenantID) AND h.resource_type = \(resource.rawValue) AND h.resource_id = \(id)
         ORDER BY h.version
        """
    }

    static func history(from rows: [PostgresRow], includeFreeText: Bool) throws -> [LifecycleEvent] {
        try rows.map { row in
            var event = try table.decode(row, includeFreeText: includeFreeText)
            var members: [(key: String, value: JSONValue)] = []
            if case .object(let stored) = try JSONValue.parse(Array(event.detailsText.utf8)) { members = stored }
            if let text = event.freeTextText, case .object(let narrative) = try JSONValue.parse(Array(text.utf8)) { members += narrative }
            event.details = .object(members)
            return event
        }
    }
}

import Foundation
import HTTPServer
import Postgres

/// The ids a "you said" came from, by kind.
struct YouSaidSources: StoredRecord {
    var feedback: [String] = []
    var complaints: [String] = []
    var activities: [String] = []
    var groups: [String] = []

    static let table = Table<YouSaidSources>("you_said_items i", [
        .column("feedback", "i.feedback_ids::text[]", \.feedback), .column("complaints", "i.complaint_ids::text[]", \.complaints),
        .column("activities", "i.activity_ids::text[]", \.activities), .column("groups", "i.group_ids::text[]", \.groups),
    ])
}

/// What young people said (`said`, free text), where it came from, and the council's answer:
/// who owns it, its status, what was done (`we_did`, free text) or why it could not be
/// (`reason_not_possible`, free text), its target day and progress. `due_feedback` is true when
/// the answer changed after young people were last told, or they were never told of it.
struct YouSaidItem: AnsweredRecord {
    var id = UUID.zero
    var said: String?
    var theme = ""
    var serviceArea = ""
    var raisedOn = CalendarDate(daysSince1970: 0)
    var sources: YouSaidSources?
    var organisation: String?
    var ownerTeam: String?
    var status = YouSaidStatus.planned.rawValue
    var weDid: String?
    var reasonNotPossible: String?
    var targetOn: CalendarDate?
    var progressPercent = 0
    var dueFeedback = false
    var lastToldAt: Date?
    var answerChangedAt: Date?
    var publishedAt: Date?
    var version = 1
    var createdAt = Date(timeIntervalSince1970: 0)
    var updatedAt = Date(timeIntervalSince1970: 0)
    var includesFreeText = false

    var location: String { "/v1/you-said/\(id.lowercased)" }
    var state: YouSaidStatus { YouSaidStatus(rawValue: status) ?? .planned }
    var allowedActions: [String] { YouSaidLifecycle.machine.allowedActions(in: state).map(\.rawValue) }
    var allowedStatuses: [String] { YouSaidLifecycle.machine.allowedStates(from: state).map(\.rawValue) }
    /// Published, and changed since (a later round must publish it again for the feed to show it).
    var changedSincePublished: Bool { publishedAt.map { updatedAt > $0 } ?? false }

    static let table = Table<YouSaidItem>("you_said_items i LEFT JOIN organisations o ON o.tenant_id = i.tenant_id AND o.id = i.organisation_id", [
        .column("id", "i.id", \.id), .freeText("said", "i.said", \.said), .column("theme", "i.theme", \.theme),
        .column("service_area", "i.service_area", \.serviceArea), .column("raised_on", "i.raised_on", \.raisedOn),
        .nested("sources", \.sources, prefix: "sources_"), .column("organisation", "o.slug", \.organisation),
        .column("owner_team", "i.owner_team", \.ownerTeam), .column("status", "i.status", \.status),
        .computed("allowed_actions", \.allowedActions), .computed("allowed_statuses", \.allowedStatuses),
        .freeText("we_did", "i.we_did", \.weDid), .freeText("reason_not_possible", "i.reason_not_possible", \.reasonNotPossible),
        .column("target_on", "i.target_on", \.targetOn), .column("progress_percent", "i.progress_percent", \.progressPercent),
        .column("due_feedback", YouSaidItem.dueFeedbackSQL, \.dueFeedback),
        .column("last_told_at", "i.last_told_at", \.lastToldAt), .column("answer_changed_at", "i.answer_changed_at", \.answerChangedAt),
        .column("published_at", "(SELECT max(p.published_at) FROM you_said_publications p WHERE p.tenant_id = i.tenant_id AND p.item_id = i.id)",
                \.publishedAt),
        .computed("changed_since_published", \.changedSincePublished),
        .column("version", "i.version", \.version), .column("created_at", "i.created_at", \.createdAt),
        .column("updated_at", "i.updated_at", \.updatedAt),
    ])

    /// Whether young people are due to be told (constant SQL on the item `i`).
    static let dueFeedbackSQL = "(i.answer_changed_at IS NOT NULL AND (i.last_told_at IS NULL OR i.answer_changed_at > i.last_told_at))"

    static let maxTextLength = 4000
    static let maxSourcesPerKind = 100
}

/// The status as one state machine (state x action -> state): planned -> in_progress, done or
/// not_possible; in_progress -> done or not_possible; done and not_possible are final unless
/// reopened (to in_progress, with a `reopen_reason`). Not possible needs the reason given to
/// young people, kept on the item (`reason_not_possible`) until it is reopened.
enum YouSaidLifecycle {
    typealias Machine = Lifecycle<YouSaidStatus, YouSaidAction>

    static let reason = Machine.ActionField.text("reason_not_possible", YouSaidItem.maxTextLength, freeText: true)
    static let reopenReason = Machine.ActionField.text("reopen_reason", YouSaidItem.maxTextLength, freeText: true, stored: false)

    static let machine = Machine(resource: .youSaidItem, table: "you_said_items", [
        .init(.planned, .start, .inProgress),
        .init(.planned, .complete, .done),
        .init(.planned, .declareNotPossible, .notPossible, fields: [reason]),
        .init(.inProgress, .complete, .done),
        .init(.inProgress, .declareNotPossible, .notPossible, fields: [reason]),
        .init(.done, .reopen, .inProgress, fields: [reopenReason]),
        .init(.notPossible, .reopen, .inProgress, fields: [reopenReason]),
    ])
}

/// The fields of a create (`said`, `theme`, `service_area` and `raised_on` required) or a
/// `PATCH` (only those that change; `null` clears `owner_team`, `we_did` or `target_on`).
struct YouSaidFields {
    var said: String?
    var theme: String?
    var serviceArea: ServiceArea?
    var raisedOn: CalendarDate?
    /// Every kind's ids, when `sources` was given (a kind left out has none).
    var sources: [YouSaidSourceKind: [UUID]]?
    var ownerTeam: String??
    var weDid: String??
    var targetOn: CalendarDate??
    var progressPercent: Int?
    var progressNote: String?
    var status: YouSaidStatus?

    /// Reads them from `body`, which the caller finishes (a `PATCH` reads the status change's
    /// own fields once it knows the current status).
    static func read(_ body: inout FieldReader, creating: Bool) -> YouSaidFields {
        var fields = YouSaidFields()
        func present(_ name: String) -> Bool { creating || body.has(name) }
        if present("said") { fields.said = body.string("said", maxLength: YouSaidItem.maxTextLength) }
        if present("theme") { fields.theme = body.string("theme", maxLength: 100) }
        if present("service_area") { fields.serviceArea = body.vocabulary("service_area", ServiceArea.self) }
        if present("raised_on") { fields.raisedOn = body.date("raised_on") }
        if body.has("sources") { fields.sources = readSources(&body) }
        if body.has("owner_team") { fields.ownerTeam = .some(body.optionalString("owner_team", maxLength: 100)) }
        if body.has("we_did") { fields.weDid = .some(body.optionalString("we_did", maxLength: YouSaidItem.maxTextLength)) }
        if body.has("target_on") { fields.targetOn = .some(body.date("target_on", required: false)) }
        if !creating {
            if body.has("progress_percent") { fields.progressPercent = body.integer("progress_percent", in: 0...100) }
            fields.progressNote = body.optionalString("progress_note", maxLength: YouSaidItem.maxTextLength)
            if body.has("status") { fields.status = body.vocabulary("status", YouSaidStatus.self) }
        }
        return fields
    }

    private static func readSources(_ body: inout FieldReader) -> [YouSaidSourceKind: [UUID]]? {
        guard var nested = body.object("sources") else {
            if body.isNull("sources") { body.reject("sources", "must be an object (leave it out to keep the sources)") }
            return nil
        }
        var sources: [YouSaidSourceKind: [UUID]] = [:]
        for kind in YouSaidSourceKind.allCases {
            sources[kind] = nested.uuidList(kind.rawValue, maxCount: YouSaidItem.maxSourcesPerKind, minCount: 0, required: false,
                                            null: false) ?? []
        }
        body.absorb(nested)
        return sources
    }

    /// The 422 entries for sources that are not the caller's tenant's (`sources.feedback[2]`),
    /// one query per kind given.
    static func sourceErrors(_ sources: [YouSaidSourceKind: [UUID]], on tx: TenantTransaction) async throws -> [FieldError] {
        var errors: [FieldError] = []
        for kind in YouSaidSourceKind.allCases {
            errors += try await TenantRecords.errors(sources[kind] ?? [], in: kind.table, field: "sources.\(kind.rawValue)", noun: kind.noun, on: tx)
        }
        return errors
    }
}

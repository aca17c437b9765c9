import Foundation
import HTTPServer
import Postgres

/// A complaint as Heard answers it. `summary`, `late_acceptance_reason` and the history's notes
/// are present only for a key with `free_text:read`.
struct Complaint: StoredRecord {
    var id = UUID.zero
    var reference = ""
    var sourceSystem = ""
    var externalId = ""
    var procedure = ""
    var receivedOn = CalendarDate(utcDayOf: Date(timeIntervalSince1970: 0))
    var complainantRole = ""
    var subjectRef: String?
    var serviceArea = ""
    var team: String?
    var categories: [String] = []
    var summary: String?
    var matterDate: CalendarDate?
    var lateAcceptanceReason: String?
    var advocacyOffered: Bool?
    var organisation: String?
    var stage = 1
    var status = ""
    var stageStartedOn = CalendarDate(utcDayOf: Date(timeIntervalSince1970: 0))
    var clockStartedOn: CalendarDate?
    var acknowledgedOn: CalendarDate?
    var allowance = 1
    var suspendedOn: CalendarDate?
    var suspendedDays = 0
    var panelOn: CalendarDate?
    var panelReportOn: CalendarDate?
    var respondedOn: CalendarDate?
    var outcome: String?
    var acknowledgeDueOn: CalendarDate?
    var responseDueOn: CalendarDate?
    var panelDueOn: CalendarDate?
    var panelReportDueOn: CalendarDate?
    var workingDaysLeft: Int?
    var overdue = false
    var allowedActions: [String] = []
    /// Read for one complaint (`find`); null in lists.
    var suspensions: [Suspension]?
    var extensions: [Extension]?
    var history: [LifecycleEvent]?
    var version = 1
    var createdBy = UUID.zero
    var createdAt = Date(timeIntervalSince1970: 0)
    var updatedAt = Date(timeIntervalSince1970: 0)
    var contentHash = ""
    var timescales = ""
    /// `timescales`, decoded by `judge`.
    var timescaleStages: [ComplaintProcedure.Stage] = []
    var includesFreeText = false

    /// A stop of the clock: from its day up to, not including, the day it resumed (nil while it lasts).
    struct Suspension: Encodable, Sendable {
        var stage: Int
        var from: CalendarDate?
        var resumedOn: CalendarDate?
        var reason: String?
        enum CodingKeys: String, CodingKey { case stage, from, resumedOn = "resumed_on", reason }
    }

    /// An extension of a stage's response allowance to `working_days` in total; `reason` only
    /// with `free_text:read`.
    struct Extension: Encodable, Sendable {
        var stage: Int
        var on: CalendarDate?
        var workingDays: Int
        var reason: String?
        enum CodingKeys: String, CodingKey { case stage, on, workingDays = "working_days", reason }
    }

    var currentStage: ComplaintProcedure.Stage? { timescaleStages.first { $0.stage == stage } }
    var clock: ComplaintClock {
        ComplaintClock(stageStartedOn: stageStartedOn, clockStartedOn: clockStartedOn, acknowledgedOn: acknowledgedOn, allowance: allowance,
                       suspendedOn: suspendedOn, suspendedDays: suspendedDays, panelOn: panelOn, panelReportOn: panelReportOn)
    }

    var etag: String { ETag.of(version: version) }
    var state: ComplaintStatus { ComplaintStatus(rawValue: status) ?? .received }

    static let table = Table<Complaint>(
        "complaints c LEFT JOIN organisations o ON o.tenant_id = c.tenant_id AND o.id = c.organisation_id", [
            .column("id", "c.id", \.id), .column("reference", "c.reference", \.reference),
            .column("source_system", "c.source_system", \.sourceSystem), .column("external_id", "c.external_id", \.externalId),
            .column("procedure", "c.procedure", \.procedure), .column("received_on", "c.received_on", \.receivedOn),
            .column("complainant_role", "c.complainant_role", \.complainantRole), .column("subject_ref", "c.subject_ref", \.subjectRef),
            .column("service_area", "c.service_area", \.serviceArea), .column("team", "c.team", \.team),
            .column("categories", "c.categories", \.categories), .freeText("summary", "c.summary", \.summary),
            .column("matter_date", "c.matter_date", \.matterDate),
            .freeText("late_acceptance_reason", "c.late_acceptance_reason", \.lateAcceptanceReason),
            .column("advocacy_offered", "c.advocacy_offered", \.advocacyOffered), .column("organisation", "o.slug", \.organisation),
            .column("stage", "c.stage", \.stage), .column("status", "c.status", \.status),
            .column("stage_started_on", "c.stage_started_on", \.stageStartedOn),
            .column("response_clock_started_on", "c.clock_started_on", \.clockStartedOn),
            .column("acknowledged_on", "c.acknowledged_on", \.acknowledgedOn),
            .column("response_allowance", "c.allowance", \.allowance), .column("suspended_on", "c.suspended_on", \.suspendedOn),
            .column("suspended_working_days", "c.suspended_days", \.suspendedDays),
            .column("panel_on", "c.panel_on", \.panelOn), .column("panel_report_on", "c.panel_report_on", \.panelReportOn),
            .column("responded_on", "c.responded_on", \.respondedOn), .column("outcome", "c.outcome", \.outcome),
            .column("acknowledge_due_on", "c.acknowledge_due_on", \.acknowledgeDueOn),
            .column("response_due_on", "c.response_due_on", \.responseDueOn),
            .column("panel_due_on", "c.panel_due_on", \.panelDueOn), .column("panel_report_due_on", "c.panel_report_due_on", \.panelReportDueOn),
            .computed("working_days_left", \.workingDaysLeft), .computed("overdue", \.overdue),
            .computed("allowed_actions", \.allowedActions), .computed("suspensions", \.suspensions),
            .computed("extensions", \.extensions), .computed("history", \.history),
            .column("version", "c.version", \.version), .column("created_by", "c.created_by", \.createdBy, hidden: true),
            .column("created_at", "c.created_at", \.createdAt), .column("updated_at", "c.updated_at", \.updatedAt),
            .column("content_hash", "c.content_hash", \.contentHash, hidden: true),
            .column("timescales", "c.timescales::text", \.timescales, hidden: true),
        ])

    /// Fills in what is judged, not stored, as of `asOf`: days left, whether overdue, what can be done.
    mutating func judge(asOf: CalendarDate, calendar: WorkingDayCalendar) {
        if timescaleStages.isEmpty { timescaleStages = (try? ComplaintProcedures.decodeStages(timescales)) ?? [] }
        let running = ComplaintLifecycle.clockRuns(in: state)
        workingDaysLeft = running ? responseDueOn.map { ComplaintClock.workingDaysLeft(until: $0, asOf: asOf, calendar: calendar) } : nil
        overdue = running && respondedOn == nil && (responseDueOn.map { asOf > $0 } ?? false)
        allowedActions = ComplaintLifecycle.allowedActions(for: self).map(\.rawValue)
    }

    /// Fills in the history (after the receipt), what it tells, and what is judged as of `asOf`.
    mutating func complete(history events: [LifecycleEvent], asOf: CalendarDate, calendar: WorkingDayCalendar) {
        history = [receipt] + events
        readHistory()
        judge(asOf: asOf, calendar: calendar)
    }

    /// The suspensions and extensions, from the history.
    private mutating func readHistory() {
        var stage = 1
        var suspensions: [Suspension] = [], extensions: [Extension] = []
        defer {
            self.suspensions = suspensions
            self.extensions = extensions
        }
        for event in history ?? [] {
            if case .number(let text)? = event.detail("stage"), let number = Int(text) { stage = number }
            switch ComplaintAction(rawValue: event.action) {
            case .suspend?:
                var reason: String?
                if case .string(let text)? = event.detail("reason") { reason = text }
                suspensions.append(Suspension(stage: stage, from: event.on, resumedOn: nil, reason: reason))
            case .resume?:
                if let last = suspensions.indices.last { suspensions[last].resumedOn = event.on }
            case .extend?:
                var workingDays = 0, reason: String?
                if case .number(let text)? = event.detail("working_days") { workingDays = Int(text) ?? 0 }
                if case .string(let text)? = event.detail("reason") { reason = text }
                extensions.append(Extension(stage: stage, on: event.on, workingDays: workingDays, reason: reason))
            default:
                break
            }
        }
    }

    /// The receipt, as the history's first entry.
    var receipt: LifecycleEvent {
        LifecycleEvent(created: "receive", on: receivedOn, state: ComplaintStatus.received.rawValue, keyID: createdBy, at: createdAt,
                       includesFreeText: includesFreeText)
    }
}

/// The SQL for complaints.
enum ComplaintStore {
    /// Creates `complaint` unless its (source_system, external_id) exists, with the next
    /// reference number of its year and its first due dates, and the audit row of the creation,
    /// in one statement. Nil when the natural key is taken (no number is used up then, unless a
    /// concurrent create of the same key won the race).
    static func create(_ complaint: NewComplaint, procedure: ComplaintProcedure, organisationID: UUID?, calendar: WorkingDayCalendar,
                       on tx: TenantTransaction) async throws -> UUID? {
        let tenant = tx.principal.tenantID
        guard let first = procedure.stage(1) else { return nil }
        let clock = ComplaintClock(stageStartedOn: complaint.receivedOn,
                                   clockStartedOn: first.responseClock == .stageStart ? complaint.receivedOn : nil,
                                   allowance: first.respondWithin)
        let due = clock.dueDates(first, calendar: calendar)
        let year = complaint.receivedOn.year
        let rows = try await tx.query("""
            WITH number AS (
                INSERT INTO complaint_reference_counters (tenant_id, year, last)
                SELECT \(tenant), \(year), 1
                 WHERE NOT EXISTS (SELECT 1 FROM complaints
                                    WHERE tenant_id = \(tenant) AND source_system = \(complaint.sourceSystem)
                                      AND external_id = \(complaint.externalID))
                ON CONFLICT (tenant_id, year) DO UPDATE SET last = complaint_reference_counters.last + 1
                RETURNING last
            ), new AS (
                INSERT INTO complaints (tenant_id, organisation_id, source_system, external_id, reference, procedure, timescales,
                                        received_on, complainant_role, subject_ref, service_area, team, categories, summary,
                                        matter_date, late_acceptance_reason, advocacy_offered, stage, status, stage_started_on,
                                        clock_started_on, allowance, acknowledge_due_on, response_due_on, content_hash, created_by)
                SELECT \(tenant), \(organisationID), \(complaint.sourceSystem), \(complaint.externalID),
                       'CMP-' || lpad(\(year)::text, 4, '0') || '-' || lpad(number.last::text, greatest(5, length(number.last::text)), '0'),
                       \(complaint.procedure.rawValue), \(ComplaintProcedures.encodeStages(procedure.stages))::jsonb,
                       \(complaint.receivedOn), \(complaint.complainantRole.rawValue), \(complaint.subjectRef),
                       \(complaint.serviceArea.rawValue), \(complaint.team), \(complaint.categories)::text[],
                       \(complaint.summary), \(complaint.matterDate), \(complaint.lateAcceptanceReason), \(complaint.advocacyOffered),
                       1, \(ComplaintStatus.received.rawValue), \(clock.stageStartedOn), \(clock.clockStartedOn), \(clock.allowance),
                       \(due.acknowledge), \(due.response), \(complaint.contentHash), \(tx.principal.keyID)
                  FROM number
                ON CONFLICT (tenant_id, source_system, external_id) DO NOTHING
                RETURNING id
            )
            SELECT id FROM new
            """)
        guard let id = try rows.first?.decode(UUID.self, column: "id") else { return nil }
        tx.audit(.create, .complaint, id: id.lowercased)
        return id
    }

    /// The id and content hash of the complaint that holds `complaint`'s natural key, if this
    /// key can see it.
    static func existing(_ complaint: NewComplaint, on tx: TenantTransaction) async throws -> (id: UUID, contentHash: String)? {
        guard let row = try await tx.query("""
            SELECT id, content_hash FROM complaints
             WHERE tenant_id = \(tx.principal.tenantID) AND source_system = \(complaint.sourceSystem) AND external_id = \(complaint.externalID)
            """).first else { return nil }
        return (try row.decode(UUID.self, column: "id"), try row.decode(String.self, column: "content_hash"))
    }

    /// The council's calendar changed on `day` (a closure day added or removed): every complaint
    /// whose stage is open (clock running or suspended) and has a due date on or after that day
    /// has its due dates worked out afresh, in the same transaction; each one that moved is a new
    /// version. What a past step recorded (its working days, whether it was in time) stays.
    @Sendable static func reviseDueDates(from day: CalendarDate, on tx: TenantTransaction) async throws {
        let calendar = try await ClosureDays.calendar(on: tx)
        let open = (ComplaintList.runningStates + [.suspended]).map(\.rawValue)
        let rows = try await tx.query("""
            \(unsafeRaw: Complaint.table.select(includeFreeText: false))
             WHERE c.tenant_id = \(tx.principal.tenantID) AND c.status = ANY(\(open)::text[])
               AND greatest(c.acknowledge_due_on, c.response_due_on, c.panel_due_on, c.panel_report_due_on) >= \(day)
             ORDER BY c.id
               FOR UPDATE OF c
            """)
        for row in rows {
            var complaint = try Complaint.table.decode(row, includeFreeText: false)
            complaint.timescaleStages = try ComplaintProcedures.decodeStages(complaint.timescales)
            guard let stage = complaint.currentStage else { continue }
            let due = complaint.clock.dueDates(stage, calendar: calendar)
            guard due != ComplaintClock.DueDates(acknowledge: complaint.acknowledgeDueOn, response: complaint.responseDueOn,
                                                 panel: complaint.panelDueOn, panelReport: complaint.panelReportDueOn) else { continue }
            try await tx.execute("""
                UPDATE complaints
                   SET acknowledge_due_on = \(due.acknowledge), response_due_on = \(due.response), panel_due_on = \(due.panel),
                       panel_report_due_on = \(due.panelReport), version = version + 1, updated_at = now()
                 WHERE tenant_id = \(tx.principal.tenantID) AND id = \(complaint.id)
                """)
            tx.audit(.update, .complaint, id: complaint.id.lowercased)
        }
    }

    /// One complaint of the caller's tenant (and organisation) with its history, judged as of
    /// `asOf`, or nil.
    static func find(_ id: UUID, on tx: TenantTransaction, asOf: CalendarDate, calendar: WorkingDayCalendar) async throws -> Complaint? {
        let includeFreeText = tx.principal.has(.freeTextRead)
        guard var complaint = try await Complaint.table.find(id, on: tx, includeFreeText: includeFreeText) else { return nil }
        complaint.complete(history: try await LifecycleEvent.history(of: .complaint, id, on: tx, includeFreeText: includeFreeText),
                           asOf: asOf, calendar: calendar)
        return complaint
    }

    /// `GET /v1/complaints/{id}`: the council's calendar, the complaint with its audit row, and
    /// its history, in one unit, one round trip (see `Table.read`).
    static func read(_ id: UUID, on tx: TenantTransaction, asOf: CalendarDate) async throws -> Complaint? {
        let includeFreeText = tx.principal.has(.freeTextRead)
        guard var (complaint, rows) = try await Complaint.table.read(id, on: tx, includeFreeText: includeFreeText, audited: .complaint, with: [
            ClosureDays.allQuery(on: tx), LifecycleEvent.historyQuery(of: .complaint, id, on: tx, includeFreeText: includeFreeText),
        ]) else { return nil }
        complaint.complete(history: try LifecycleEvent.history(from: rows[1], includeFreeText: includeFreeText),
                           asOf: asOf, calendar: try ClosureDays.calendar(from: rows[0]))
        return complaint
    }
}

import Foundation
import HTTPServer
import Postgres

/// The stage machine of a commissioning project, declared with the kit's staged lifecycle:
/// forward one stage at a time (with an optional reason), back any number of stages with a
/// reason (free text: kept in the history's narrative, read only with `free_text:read`). The move
/// into `award` is made by `POST .../award`, which records the awarded bid.
enum ProjectLifecycle {
    typealias Machine = Lifecycle<ProjectStage, ProjectStage>
    typealias Transition = Machine.Transition

    static let reasonMaxLength = 2000

    static let machine = Machine.stages(
        ProjectStage.allCases, resource: .commissioningProject, table: "commissioning_projects",
        forward: [.text("reason", reasonMaxLength, freeText: true, required: false, stored: false)],
        back: [.text("reason", reasonMaxLength, freeText: true, stored: false)])

    /// Whether `POST .../transitions` makes `transition` (every move but the award's).
    static func byTransitions(_ transition: Transition) -> Bool {
        !(transition.from == .tenderEvaluation && transition.to == .award)
    }

    /// What a move does besides the stage: the day of the move; `closed_on` set going to closed
    /// and cleared leaving it; the award cleared going back before it.
    static func effects(of transition: Transition, on day: CalendarDate) -> [SQLFragment] {
        var set: [SQLFragment] = ["stage_since = \(day)", "updated_at = now()"]
        if transition.to == .closed { set.append("closed_on = \(day)") }
        if transition.from == .closed { set.append("closed_on = NULL") }
        if index(transition.to) < index(.award) {
            set += ["awarded_bid = NULL", "awarded_on = NULL", "award_matched_youth_ranking = NULL"]
        }
        return set
    }

    /// Makes the move on the project as it was read (412 when another change came first).
    static func apply(_ transition: Transition, to project: CommissioningProject, values: ActionValues, set: [SQLFragment],
                      details: [(String, JSONValue)] = [], on tx: TenantTransaction) async throws {
        guard try await machine.apply(transition, to: project.id, version: project.version, values: values, set: set, details: details,
                                      on: tx) != nil else {
            throw IfMatch.changedMeanwhile
        }
    }

    static func index(_ stage: ProjectStage) -> Int { ProjectStage.allCases.firstIndex(of: stage) ?? 0 }
}

/// A commissioning project as Heard answers it: what is commissioned, its stage and the day it
/// moved there, its award (`award_matched_youth_ranking` worked out by Heard), and, read alone,
/// its involvement per stage, its tender with totals and rankings, and its history.
struct CommissioningProject: AnsweredRecord {
    struct Award: StoredRecord {
        var bid = ""
        var on = CalendarDate(daysSince1970: 0)
        var matchedYouthRanking = false

        static let table = Table<Award>("commissioning_projects p", [
            .column("bid", "p.awarded_bid", \.bid), .column("on", "p.awarded_on", \.on),
            .column("matched_youth_ranking", "p.award_matched_youth_ranking", \.matchedYouthRanking),
        ])
    }

    var id = UUID.zero
    var title = ""
    var service = ""
    var serviceArea = ""
    var budgetBand = ""
    var stage = ""
    var stageSince = CalendarDate(daysSince1970: 0)
    var startedOn = CalendarDate(daysSince1970: 0)
    var closedOn: CalendarDate?
    var award: Award?
    var organisation: String?
    var version = 1
    var createdBy = UUID.zero
    var createdAt = Date(timeIntervalSince1970: 0)
    var updatedAt = Date(timeIntervalSince1970: 0)
    var storedTender: String?
    var youthWeightPercent: Int?
    var tenderRecordedOn: CalendarDate?
    var involvement: [StageInvolvement]?
    var tender: TenderAnswer?
    var history: [LifecycleEvent]?
    var includesFreeText = false

    var location: String { "/v1/commissioning-projects/\(id.lowercased)" }
    var state: ProjectStage { ProjectStage(rawValue: stage) ?? .needsAnalysis }
    /// The stages `POST .../transitions` may move it to now.
    var allowedActions: [String] {
        ProjectLifecycle.machine.allowedActions(in: state, where: ProjectLifecycle.byTransitions).map(\.rawValue)
    }

    static let table = Table<CommissioningProject>(
        "commissioning_projects p LEFT JOIN organisations o ON o.tenant_id = p.tenant_id AND o.id = p.organisation_id", [
            .column("id", "p.id", \.id), .column("title", "p.title", \.title), .column("service", "p.service", \.service),
            .column("service_area", "p.service_area", \.serviceArea), .column("budget_band", "p.budget_band", \.budgetBand),
            .column("stage", "p.stage", \.stage), .column("stage_since", "p.stage_since", \.stageSince),
            .column("started_on", "p.started_on", \.startedOn), .column("closed_on", "p.closed_on", \.closedOn),
            .nested("award", \.award, prefix: "award_"), .computed("allowed_actions", \.allowedActions),
            .column("organisation", "o.slug", \.organisation), .column("version", "p.version", \.version),
            .column("created_by", "p.created_by", \.createdBy, hidden: true),
            .column("created_at", "p.created_at", \.createdAt), .column("updated_at", "p.updated_at", \.updatedAt),
            .column("stored_tender", "p.tender::text", \.storedTender, hidden: true),
            .column("youth_weight_percent", "p.youth_weight_percent", \.youthWeightPercent, hidden: true),
            .column("tender_recorded_on", "p.tender_recorded_on", \.tenderRecordedOn, hidden: true),
            .computed("involvement", \.involvement), .computed("tender", \.tender), .computed("history", \.history),
        ])

    /// Its creation, as its history's first entry.
    var creation: LifecycleEvent {
        LifecycleEvent(created: "start", on: startedOn, state: ProjectStage.needsAnalysis.rawValue, keyID: createdBy, at: createdAt,
                       includesFreeText: includesFreeText)
    }
}

/// The SQL for commissioning projects.
enum ProjectStore {
    static let notFound = HTTPError(.notFound, detail: "There is no commissioning project with this id.")

    static func projectID(_ request: Request) throws(HTTPError) -> UUID {
        guard let id = UUID(uuidString: request.parameter("id")) else { throw notFound }
        return id
    }

    /// One project of the caller's tenant (and organisation), whole: its involvement per stage,
    /// its tender and its history; nil when the key cannot see it.
    static func find(_ id: UUID, on tx: TenantTransaction) async throws -> CommissioningProject? {
        guard let project = try await CommissioningProject.table.find(id, on: tx, includeFreeText: tx.principal.has(.freeTextRead))
        else { return nil }
        return try complete(project, completion: try await tx.query(completionQueries(of: id, on: tx)), on: tx)
    }

    /// `GET /v1/commissioning-projects/{id}`: the project with its audit row, its involvement,
    /// young commissioners and history, in one unit, one round trip (see `Table.read`).
    static func read(_ id: UUID, on tx: TenantTransaction) async throws -> CommissioningProject? {
        guard let (project, rows) = try await CommissioningProject.table.read(
            id, on: tx, includeFreeText: tx.principal.has(.freeTextRead), audited: .commissioningProject,
            with: completionQueries(of: id, on: tx))
        else { return nil }
        return try complete(project, completion: rows, on: tx)
    }

    /// The statements whose rows complete the project `id`: involvement by stage, the tender's
    /// young commissioners, the history, in the order `complete` reads them.
    private static func completionQueries(of id: UUID, on tx: TenantTransaction) -> [PostgresQuery] {
        let includeFreeText = tx.principal.has(.freeTextRead)
        return [Involvement.byStageQuery(of: id, on: tx), CommissioningTender.panelQuery(of: id, on: tx, includeFreeText: includeFreeText),
                LifecycleEvent.historyQuery(of: .commissioningProject, id, on: tx, includeFreeText: includeFreeText)]
    }

    private static func complete(_ project: CommissioningProject, completion: [[PostgresRow]], on tx: TenantTransaction) throws
        -> CommissioningProject {
        let includeFreeText = tx.principal.has(.freeTextRead)
        var project = project
        project.involvement = try Involvement.byStage(from: completion[0])
        project.tender = try CommissioningTender.answer(for: project, panel: completion[1], includeFreeText: includeFreeText)
        project.history = [project.creation] + (try LifecycleEvent.history(from: completion[2], includeFreeText: includeFreeText))
        return project
    }

    /// Audits the change of the project and reads it as it now stands.
    static func changed(_ id: UUID, on tx: TenantTransaction) async throws -> CommissioningProject {
        tx.audit(.update, .commissioningProject, id: id.lowercased)
        guard let project = try await find(id, on: tx) else { throw notFound }
        return project
    }

    /// The project as stored (without its involvement, tender answer or history), or the 404
    /// (another tenant's included).
    static func current(_ id: UUID, on tx: TenantTransaction) async throws -> CommissioningProject {
        guard let project = try await CommissioningProject.table.find(id, on: tx) else { throw notFound }
        return project
    }

    /// The 422 for a move's `on` before the project's last move.
    static func rejectBefore(_ project: CommissioningProject, _ on: CalendarDate?) throws(HTTPError) {
        guard let on, on < project.stageSince else { return }
        throw HTTPError.validation([FieldError(field: "on", message: "must not be before \(project.stageSince), the day of the project's last move")])
    }
}

import Foundation
import HTTPServer
import Postgres

/// `/v1/commissioning-projects`: projects from needs analysis to contract monitoring, the young
/// people involved at each stage, the tender they scored, the award, and the monitoring visits
/// (DOMAIN.md §4). Reading needs `involvement:read`, recording `involvement:write`; every change
/// of a project needs `If-Match` (its version goes up by one with each).
struct CommissioningRoutes {
    let access: AccessControl

    func add(to router: inout RouterBuilder) {
        router.post("/v1/commissioning-projects", access.secure(.involvementWrite, resource: .commissioningProject, Idempotency.wrap(Self.create)))
        router.get("/v1/commissioning-projects", access.secure(.involvementRead, resource: .commissioningProject, Self.list.respond))
        router.get("/v1/commissioning-projects/{id}", access.secure(.involvementRead, resource: .commissioningProject, Self.read))
        router.patch("/v1/commissioning-projects/{id}", access.secure(.involvementWrite, resource: .commissioningProject, Self.change))
        router.post("/v1/commissioning-projects/{id}/transitions", access.secure(.involvementWrite, resource: .commissioningProject, Self.move))
        router.post("/v1/commissioning-projects/{id}/involvement", access.secure(.involvementWrite, resource: .commissioningProject, Involvement.link))
        router.put("/v1/commissioning-projects/{id}/tender", access.secure(.involvementWrite, resource: .commissioningProject, CommissioningTender.put))
        router.post("/v1/commissioning-projects/{id}/award", access.secure(.involvementWrite, resource: .commissioningProject, Self.award))
        VisitRoutes(access: access).add(to: &router)
        router.get("/v1/reports/commissioning", access.secure(.reportsRead, resource: .commissioningReport, CommissioningReport.respond))
    }

    static let list = ListEndpoint<CommissioningProject, Void>(
        resource: .commissioningProject,
        filters: [
            .vocabulary("stage", ProjectStage.self, "p.stage"), .vocabulary("service_area", ServiceArea.self, "p.service_area"),
            .vocabulary("budget_band", BudgetBand.self, "p.budget_band"),
        ],
        days: DayRange(column: "p.started_on", zone: .date),
        order: ListOrder(ascending: [("p.seq", .bigint)]),
        csvFilename: "commissioning-projects.csv")

    static func create(_ request: Request, _ context: AccessContext) async throws -> Response {
        let today = WorkingDayCalendar.localDay(of: context.now)
        let fields = try ProjectFields.read(request.body, creating: true, today: today)
        guard let title = fields.title, let service = fields.service, let area = fields.serviceArea, let band = fields.budgetBand,
              let started = fields.startedOn else { throw HTTPError.validation([]) }
        let project = try await context.transaction { tx -> CommissioningProject in
            let principal = tx.principal
            let rows = try await tx.query("""
                INSERT INTO commissioning_projects (tenant_id, organisation_id, title, service, service_area, budget_band, started_on,
                                                    stage_since, created_by)
                VALUES (\(principal.tenantID), \(principal.organisationID), \(title), \(service), \(area.rawValue), \(band.rawValue),
                        \(started), \(started), \(principal.keyID))
                RETURNING id
                """)
            guard let id = try rows.first?.decode(UUID.self, column: "id") else { throw ProjectStore.notFound }
            tx.audit(.create, .commissioningProject, id: id.lowercased)
            guard let project = try await ProjectStore.find(id, on: tx) else { throw ProjectStore.notFound }
            return project
        }
        return project.response(status: .created)
    }

    static func read(_ request: Request, _ context: AccessContext) async throws -> Response {
        let id = try ProjectStore.projectID(request)
        try QueryReader(request.query, allowed: [], paged: false).finish()
        let project = try await context.readTransaction { tx in try await ProjectStore.read(id, on: tx) }
        return try CommissioningProject.answer(project, request, notFound: ProjectStore.notFound)
    }

    /// `PATCH` with `If-Match`: the title, service, service area and budget band.
    static func change(_ request: Request, _ context: AccessContext) async throws -> Response {
        let id = try ProjectStore.projectID(request)
        let ifMatch = IfMatch(request)
        let fields = try ProjectFields.read(request.body, creating: false, today: WorkingDayCalendar.localDay(of: context.now))
        let project = try await context.transaction { tx -> CommissioningProject in
            let current = try await ProjectStore.current(id, on: tx)
            try (ifMatch ?? IfMatch.required(request)).check(current: current.etag)
            var assignments: [SQLFragment] = ["version = version + 1", "updated_at = now()"]
            if let title = fields.title { assignments.append("title = \(title)") }
            if let service = fields.service { assignments.append("service = \(service)") }
            if let area = fields.serviceArea { assignments.append("service_area = \(area.rawValue)") }
            if let band = fields.budgetBand { assignments.append("budget_band = \(band.rawValue)") }
            let updated = try await tx.execute("""
                UPDATE commissioning_projects SET \(SQLFragment.joined(assignments, separator: ", "))
                 WHERE tenant_id = \(tx.principal.tenantID) AND id = \(id) AND version = \(current.version)
                """)
            guard updated == 1 else { throw IfMatch.changedMeanwhile }
            return try await ProjectStore.changed(id, on: tx)
        }
        return project.response(status: .ok)
    }

    /// `POST .../transitions` with `If-Match` and `{"to", "on", "reason"}`. In this order: 404,
    /// 428 without `If-Match`, 409 naming the allowed moves (a skip forward; the move to award,
    /// which `POST .../award` makes), 422 naming each field at fault (a move back without a
    /// reason, an `on` before the last move), 412 when `If-Match` is stale.
    static func move(_ request: Request, _ context: AccessContext) async throws -> Response {
        let id = try ProjectStore.projectID(request)
        let ifMatch = IfMatch(request)
        let today = WorkingDayCalendar.localDay(of: context.now)
        var body = try FieldReader(body: request.body)
        let to = body.vocabulary("to", ProjectStage.self)
        let project = try await context.transaction { tx -> CommissioningProject in
            let current = try await ProjectStore.current(id, on: tx)
            let ifMatch = try ifMatch ?? IfMatch.required(request)
            guard let to else {
                try body.finish()
                throw HTTPError.validation([FieldError(field: "to", message: "is required")])
            }
            let transition: ProjectLifecycle.Transition
            do throws(HTTPError) {
                transition = try ProjectLifecycle.machine.transition(to, from: current.state, where: ProjectLifecycle.byTransitions)
            } catch {
                var problem = error
                if current.state == .tenderEvaluation && to == .award {
                    problem.detail = "The move to award is made with POST /v1/commissioning-projects/\(id.lowercased)/award, which records the awarded bid."
                }
                problem.extensions["project_id"] = .text(id.lowercased)
                throw problem
            }
            let values = ProjectLifecycle.machine.fields(of: transition, from: &body, today: today)
            try body.finish()
            try ProjectStore.rejectBefore(current, values.on)
            try ifMatch.check(current: current.etag)
            let day = values.on ?? today
            try await ProjectLifecycle.apply(transition, to: current, values: values, set: ProjectLifecycle.effects(of: transition, on: day), on: tx)
            return try await ProjectStore.changed(id, on: tx)
        }
        return project.response(status: .ok)
    }

    /// `POST .../award` with `If-Match` and `{"bid", "on"}`: from tender evaluation, a bid of the
    /// recorded tender; Heard works out whether the young people ranked it first.
    static func award(_ request: Request, _ context: AccessContext) async throws -> Response {
        let id = try ProjectStore.projectID(request)
        let ifMatch = IfMatch(request)
        let today = WorkingDayCalendar.localDay(of: context.now)
        var body = try FieldReader(body: request.body)
        let bid = body.string("bid", maxLength: CommissioningTender.maxRefLength)
        ProjectFields.refuseWorkedOut(&body)
        let project = try await context.transaction { tx -> CommissioningProject in
            let current = try await ProjectStore.current(id, on: tx)
            let ifMatch = try ifMatch ?? IfMatch.required(request)
            let transition = try ProjectLifecycle.machine.transition(.award, from: current.state)
            let values = ProjectLifecycle.machine.fields(of: transition, from: &body, today: today)
            guard let stored = try current.storedTender.map(CommissioningTender.Stored.decode) else {
                throw HTTPError(.actionNotAllowed, detail: "No tender is recorded for this project: PUT its tender first.")
            }
            let results = CommissioningTender.evaluate(stored)
            if let bid, !results.contains(where: { $0.ref == bid }) {
                body.reject("bid", "is not a bid of the project's tender (\(stored.bids.map(\.ref).joined(separator: ", ")))")
            }
            try body.finish()
            try ProjectStore.rejectBefore(current, values.on)
            try ifMatch.check(current: current.etag)
            guard let bid, let day = values.on else { throw HTTPError.validation([]) }
            let matched = results.first { $0.ref == bid }?.youthRank == 1
            let set: [SQLFragment] = ProjectLifecycle.effects(of: transition, on: day)
                + ["awarded_bid = \(bid)", "awarded_on = \(day)", "award_matched_youth_ranking = \(matched)"]
            try await ProjectLifecycle.apply(transition, to: current, values: values, set: set,
                                             details: [("bid", .string(bid)), ("award_matched_youth_ranking", .bool(matched))], on: tx)
            return try await ProjectStore.changed(id, on: tx)
        }
        return project.response(status: .ok)
    }
}

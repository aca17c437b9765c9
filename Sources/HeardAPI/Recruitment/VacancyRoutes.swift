import Foundation
import HTTPServer
import Postgres

/// `/v1/vacancies`: posts young people help to recruit to (DOMAIN.md §3), their youth panels,
/// candidates, scores, decisions and the day young people were told. A sender's optional
/// (`source_system`, `external_id`) is the natural key, as for feedback: the same content again
/// answers 200 with the vacancy, different content 409 with `existing_id`.
struct VacancyRoutes {
    let access: AccessControl

    func add(to router: inout RouterBuilder) {
        router.post("/v1/vacancies", access.secure(.involvementWrite, resource: .vacancy, Idempotency.wrap(Self.create)))
        router.get("/v1/vacancies", access.secure(.involvementRead, resource: .vacancy, Self.list.respond))
        router.get("/v1/vacancies/{id}", access.secure(.involvementRead, resource: .vacancy) { request, context in
            guard let id = UUID(uuidString: request.parameter("id")) else { throw VacancyStore.notFound }
            let vacancy = try await context.readTransaction { tx in try await VacancyStore.read(id, on: tx) }
            return try Vacancy.answer(vacancy, request, notFound: VacancyStore.notFound)
        })
        router.patch("/v1/vacancies/{id}", access.secure(.involvementWrite, resource: .vacancy, Self.correct))
        router.put("/v1/vacancies/{id}/youth-panel", access.secure(.involvementWrite, resource: .vacancy, YouthPanelRoutes.put))
        router.put("/v1/vacancies/{id}/youth-panel/scores", access.secure(.involvementWrite, resource: .youthPanelScore, PanelScores.put))
        router.get("/v1/vacancies/{id}/youth-panel/scores", access.secure(.involvementRead, resource: .youthPanelScore, PanelScores.list.respond))
        router.post("/v1/vacancies/{id}/candidates", access.secure(.involvementWrite, resource: .vacancyCandidate, Idempotency.wrap(Candidates.create)))
        router.get("/v1/vacancies/{id}/candidates", access.secure(.involvementRead, resource: .vacancyCandidate, Candidates.list.respond))
        router.post("/v1/vacancies/{id}/decision", access.secure(.involvementWrite, resource: .vacancy, Self.decide))
        router.post("/v1/vacancies/{id}/youth-told", access.secure(.involvementWrite, resource: .vacancy, Self.told))
        router.get("/v1/reports/recruitment", access.secure(.reportsRead, resource: .recruitmentReport, RecruitmentReport.respond))
    }

    /// The day a vacancy falls in a period by: its panel's, or without one the day it was recorded.
    static let day = "coalesce(v.panel_held_on, v.recorded_on)"

    /// `GET /v1/vacancies`: newest recorded first, filtered, JSON or CSV.
    static let list = ListEndpoint<Vacancy, WorkingDayCalendar>(
        resource: .vacancy,
        filters: [
            .vocabulary("seniority", Seniority.self, "v.seniority"),
            .custom("senior", read: { $0.bool($1) }, condition: { senior, _ in
                "(v.seniority = ANY(\(Seniority.allCases.filter(\.isSenior).map(\.rawValue))::text[])) = \(senior)"
            }),
            .vocabulary("service_area", ServiceArea.self, "v.service_area"), .text("team", "v.team"),
            .custom("youth_panel", read: { $0.bool($1) }, condition: { held, _ in "(v.panel_held_on IS NOT NULL) = \(held)" }),
            .custom("decided", read: { $0.bool($1) }, condition: { decided, _ in "(v.decided_on IS NOT NULL) = \(decided)" }),
            .text("source_system", "v.source_system"), .text("external_id", "v.external_id", maxLength: 200),
        ],
        days: DayRange(column: day, zone: .date),
        order: ListOrder(descending: [("v.seq", .bigint)]),
        csvFilename: "vacancies.csv",
        prepare: { tx, _ in try await ClosureDays.calendar(on: tx) }
    ).completing { vacancies, calendar, tx in
        try await VacancyStore.complete(&vacancies, calendar: calendar, on: tx)
    }.exporting { columns, _ in
        columns + [
            CSVColumn("interviews_with_youth_panel") { String($0.youthRanking.count) },
            CSVColumn("youth_choice_appointed") { $0.youthChoiceAppointed.map { $0 ? "true" : "false" } },
            CSVColumn("days_to_tell") { $0.daysToTell.map(String.init) },
        ]
    }

    static func create(_ request: Request, _ context: AccessContext) async throws -> Response {
        var fields = try FieldReader(body: request.body)
        let vacancy = try NewVacancy.parse(&fields)
        let today = WorkingDayCalendar.localDay(of: context.now)
        let created = try await context.transaction { tx -> Vacancy? in
            guard let id = try await VacancyStore.create(vacancy, recordedOn: today, on: tx) else { return nil }
            return try await VacancyStore.find(id, on: tx)
        }
        if let created { return created.response(status: .created) }

        // The natural key was taken: a retry (the same content: 200 with the vacancy) or a conflict.
        let existing = try await NaturalKey.settle(context, .vacancy, noun: "vacancy") { tx -> NaturalKey.Holder<Vacancy>? in
            guard let id = try await VacancyStore.existing(vacancy, on: tx), let found = try await VacancyStore.find(id, on: tx) else { return nil }
            return NaturalKey.Holder(found, id: found.id, sameContent: found.contentHash == vacancy.contentHash)
        }
        return existing.response(status: .ok)
    }

    /// `PATCH /v1/vacancies/{id}`: the fields that change (JSON merge patch), with `If-Match`;
    /// validated whole. The sender's key cannot be corrected.
    static func correct(_ request: Request, _ context: AccessContext) async throws -> Response {
        guard case .object(let patch) = try JSONValue.parse(request.body) else {
            throw HTTPError.validation([FieldError(field: "(body)", message: "must be a JSON object of the fields to correct")])
        }
        let refused = patch.compactMap { member -> FieldError? in
            switch member.key {
            case "team": nil
            case "title", "seniority", "service_area": member.value == .null ? FieldError(field: member.key, message: "cannot be cleared") : nil
            case "source_system", "external_id": FieldError(field: member.key, message: "cannot be corrected: it identifies the vacancy in the sending system")
            case _ where VacancyFields.computed.contains(member.key):
                FieldError(field: member.key, message: "is worked out by Heard (from the youth panel's scores, the decision and the day young people were told), never sent")
            default: FieldError(field: member.key, message: "is not a field that can be corrected")
            }
        }
        guard refused.isEmpty else { throw HTTPError.validation(refused) }
        let vacancy = try await VacancyStore.change(request, context, ifMatchRequired: true) { current, tx in
            var merged = current.inputMembers
            for member in patch {
                if let index = merged.firstIndex(where: { $0.key == member.key }) { merged[index].value = member.value }
            }
            var fields = FieldReader(members: merged, prefix: "")
            let corrected = try NewVacancy.parse(&fields)
            if corrected.serviceArea.rawValue != current.serviceArea, let panel = current.youthPanel, let activity = panel.activityId,
               let heldOn = panel.heldOn {
                try await ActivityRoutes.reschedule(activity, heldOn: heldOn, serviceArea: corrected.serviceArea,
                                                    rung: RecruitmentPanelRules.rung(weightPercent: panel.weightPercent ?? 0).rawValue, on: tx)
            }
            let before = Dictionary(uniqueKeysWithValues: current.inputMembers.map { ($0.key, $0.value) })
            return VacancyStore.Change(
                name: "corrected",
                set: ["title = \(corrected.title)", "seniority = \(corrected.seniority.rawValue)", "service_area = \(corrected.serviceArea.rawValue)",
                      "team = \(corrected.team)", "content_hash = \(corrected.contentHash)"],
                details: .object(patch.filter { before[$0.key] ?? .null != $0.value }.map { change in
                    (change.key, .object([("from", before[change.key] ?? .null), ("to", change.value)]))
                }))
        }
        return vacancy.response(status: .ok)
    }

    /// `POST /v1/vacancies/{id}/decision`: the day it was decided and the candidate appointed
    /// (`null`: nobody). Sent again, it replaces the decision.
    static func decide(_ request: Request, _ context: AccessContext) async throws -> Response {
        var fields = try FieldReader(body: request.body)
        let today = WorkingDayCalendar.localDay(of: context.now)
        let decidedOn = fields.date("decided_on", notAfter: today)
        let appointedGiven = fields.has("appointed")
        let appointed = fields.optionalString("appointed", maxLength: 100)
        if !appointedGiven { fields.reject("appointed", "is required: the appointed candidate's ref, or null when nobody was appointed") }
        VacancyFields.refuseComputed(&fields)
        let vacancy = try await VacancyStore.change(request, context) { current, tx in
            var fields = fields
            if let appointed, try await !VacancyStore.candidateRefs(of: current.id, on: tx).contains(appointed) {
                fields.reject("appointed", "is not a candidate of this vacancy (POST /v1/vacancies/{id}/candidates)")
            }
            if let decidedOn, let told = current.youthTold?.on, decidedOn > told {
                fields.reject("decided_on", "must not be after \(told), the day young people were told the outcome")
            }
            try fields.finish()
            guard let decidedOn else { throw HTTPError.validation([FieldError(field: "(body)", message: "is incomplete")]) }
            return VacancyStore.Change(
                name: "decision", set: ["decided_on = \(decidedOn)", "appointed = \(appointed)"],
                details: .object([("decided_on", .string(decidedOn.description)), ("appointed", appointed.map(JSONValue.string) ?? .null)]))
        }
        return vacancy.response(status: .ok)
    }

    /// `POST /v1/vacancies/{id}/youth-told`: the day young people were told the outcome, and how.
    static func told(_ request: Request, _ context: AccessContext) async throws -> Response {
        var fields = try FieldReader(body: request.body)
        let today = WorkingDayCalendar.localDay(of: context.now)
        let on = fields.date("on", notAfter: today)
        let how = fields.vocabulary("how", ToldHow.self)
        VacancyFields.refuseComputed(&fields)
        let vacancy = try await VacancyStore.change(request, context) { current, _ in
            var fields = fields
            if let on {
                if let decided = current.decision?.decidedOn {
                    if on < decided { fields.reject("on", "must not be before \(decided), the day it was decided") }
                } else {
                    fields.reject("on", "needs the decision first (POST /v1/vacancies/{id}/decision)")
                }
            }
            try fields.finish()
            guard let on, let how else { throw HTTPError.validation([FieldError(field: "(body)", message: "is incomplete")]) }
            return VacancyStore.Change(name: "youth_told", set: ["told_on = \(on)", "told_how = \(how.rawValue)"],
                                       details: .object([("on", .string(on.description)), ("how", .string(how.rawValue))]))
        }
        return vacancy.response(status: .ok)
    }
}

import Foundation
import HTTPServer
import Postgres

/// A youth panel as sent (`PUT /v1/vacancies/{id}/youth-panel`).
struct NewYouthPanel: Sendable {
    struct Member: Sendable {
        var participantID: UUID
        var waiverReason: String?
    }

    struct Question: Sendable {
        var code: String
        var wording: String
    }

    var heldOn: CalendarDate
    var weightPercent: Int
    var scaleMax: Int
    var members: [Member]
    var questions: [Question]

    static let maxMembers = 30
    static let maxQuestions = 50

    /// A question's code: a lower-case letter, then up to 62 lower-case letters, digits or underscores.
    static func isCode(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard (1...63).contains(bytes.count), let first = bytes.first, (97...122).contains(first) else { return false }
        return bytes.allSatisfy { (97...122).contains($0) || (48...57).contains($0) || $0 == 95 }
    }

    /// Reads the body; problems in `fields` (finished by the caller, once the members are checked).
    static func read(_ fields: inout FieldReader, today: CalendarDate) -> NewYouthPanel? {
        let heldOn = fields.date("held_on", notAfter: today)
        let weight = fields.integer("weight_percent", in: 0...100)
        let scaleMax = fields.integer("scale_max", in: 2...10, required: false) ?? RecruitmentPanelRules.defaultScaleMax
        var members: [Member] = []
        if let readers = fields.objects("members", maxCount: maxMembers) {
            if readers.isEmpty { fields.reject("members", "must name at least one member") }
            var seen = Set<UUID>()
            for var member in readers {
                let id = member.uuid("participant_id")
                var reason: String?
                if var waiver = member.object("waiver") {
                    reason = waiver.string("reason", maxLength: 2000)
                    member.absorb(waiver)
                }
                if let id, !seen.insert(id).inserted { member.reject("participant_id", "appears more than once") }
                fields.absorb(member)
                if let id { members.append(Member(participantID: id, waiverReason: reason)) }
            }
        } else if !fields.has("members") || fields.isNull("members") {
            fields.reject("members", "is required")
        }
        var questions: [Question] = []
        if let readers = fields.objects("questions", maxCount: maxQuestions) {
            if readers.isEmpty { fields.reject("questions", "must name at least one question") }
            var seen = Set<String>()
            for var question in readers {
                let code = question.string("code", maxLength: 63)
                if let code, !isCode(code) {
                    question.reject("code", "must be a code: a lower-case letter, then up to 62 lower-case letters, digits or underscores")
                } else if let code, !seen.insert(code).inserted {
                    question.reject("code", "appears more than once")
                }
                let wording = question.string("wording", maxLength: 500)
                fields.absorb(question)
                if let code, let wording { questions.append(Question(code: code, wording: wording)) }
            }
        } else if !fields.has("questions") || fields.isNull("questions") {
            fields.reject("questions", "is required")
        }
        guard let heldOn, let weight else { return nil }
        return NewYouthPanel(heldOn: heldOn, weightPercent: weight, scaleMax: scaleMax, members: members, questions: questions)
    }
}

/// What `PUT /v1/vacancies/{id}/youth-panel` answers: the panel as it now stands, and the
/// consultation fatigue warnings for its members (never an error).
struct YouthPanelAnswer: Encodable, Sendable {
    var vacancyId: UUID
    var youthPanel: Vacancy.YouthPanel
    var warnings: [FatigueWarning]

    enum CodingKeys: String, CodingKey { case vacancyId = "vacancy_id", youthPanel = "youth_panel", warnings }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(vacancyId.lowercased, forKey: .vacancyId)
        try container.encode(youthPanel, forKey: .youthPanel)
        try container.encode(warnings, forKey: .warnings)
    }
}

enum YouthPanelRoutes {
    /// `PUT /v1/vacancies/{id}/youth-panel`: the panel, replaced whole. Each member must be the
    /// tenant's, active, and hold consent for recruitment panels in force on `held_on` (a
    /// waiver never replaces consent), and be trained for recruitment panels on that day or
    /// carry a waiver: otherwise a 422 naming `members[i]` and the rule. The panel is one
    /// activity of kind `interview_panel` in Participation, updated when the panel is sent again.
    static func put(_ request: Request, _ context: AccessContext) async throws -> Response {
        var fields = try FieldReader(body: request.body)
        let panel = NewYouthPanel.read(&fields, today: WorkingDayCalendar.localDay(of: context.now))
        var warnings: [FatigueWarning] = []
        let vacancy = try await VacancyStore.change(request, context) { current, tx in
            var fields = fields
            let trained = try await check(panel, for: current, &fields, on: tx)
            try fields.finish()
            guard let panel, let serviceArea = ServiceArea(rawValue: current.serviceArea) else {
                throw HTTPError.validation([FieldError(field: "(body)", message: "is incomplete")])
            }
            let rung = RecruitmentPanelRules.rung(weightPercent: panel.weightPercent).rawValue
            let activity: UUID
            if let existing = current.youthPanel?.activityId {
                activity = existing
                try await ActivityRoutes.reschedule(activity, heldOn: panel.heldOn, serviceArea: serviceArea, rung: rung, on: tx)
            } else {
                activity = try await ActivityRoutes.insert(kind: .interviewPanel, topic: RecruitmentPanelRules.topic, serviceArea: serviceArea,
                                                           heldOn: panel.heldOn, rung: rung, organisationID: current.organisationId, on: tx)
            }
            try await store(panel, trained: trained, of: current, on: tx)
            warnings = try await ActivityRoutes.setParticipants(panel.members.map(\.participantID), of: activity, on: tx)
            return VacancyStore.Change(
                name: "youth_panel",
                set: ["panel_held_on = \(panel.heldOn)", "panel_weight_percent = \(panel.weightPercent)", "panel_scale_max = \(panel.scaleMax)",
                      "panel_activity_id = \(activity)"],
                details: .object([
                    ("held_on", .string(panel.heldOn.description)), ("weight_percent", .number(String(panel.weightPercent))),
                    ("scale_max", .number(String(panel.scaleMax))), ("members", .number(String(panel.members.count))),
                    ("waived", .number(String(panel.members.filter { $0.waiverReason != nil }.count))),
                    ("questions", .array(panel.questions.map { .string($0.code) })),
                ]))
        }
        guard let youthPanel = vacancy.youthPanel else { throw VacancyStore.notFound }
        var response = Response.json(YouthPanelAnswer(vacancyId: vacancy.id, youthPanel: youthPanel, warnings: warnings))
        response.headers.add(name: "ETag", value: vacancy.etag)
        response.headers.add(name: "Location", value: vacancy.location)
        return response
    }

    /// Checks each member against Participation's rules on the panel's day (problems named
    /// `members[i]` in `fields`); whether each was trained that day, by participant.
    private static func check(_ panel: NewYouthPanel?, for vacancy: Vacancy, _ fields: inout FieldReader,
                              on tx: TenantTransaction) async throws -> [UUID: Bool] {
        guard let panel, !panel.members.isEmpty else { return [:] }
        let tenant = tx.principal.tenantID
        let day: SQLFragment = "\(panel.heldOn)::date"
        let consented = ParticipationRules.consentInForce(tenant: "\(tenant)", participant: "i.id", purpose: RecruitmentPanelRules.consent, on: day)
        let trained = ParticipationRules.trainedFor(tenant: "\(tenant)", participant: "i.id", course: RecruitmentPanelRules.course, on: day)
        let rows = try await tx.query("""
            SELECT i.n, p.id IS NOT NULL AS found, coalesce(p.active, false) AS active, \(consented) AS consented, \(trained) AS trained
              FROM unnest(\(panel.members.map(\.participantID))::uuid[]) WITH ORDINALITY AS i (id, n)
              LEFT JOIN participants p ON p.tenant_id = \(tenant) AND p.id = i.id
             ORDER BY i.n
            """)
        var result: [UUID: Bool] = [:]
        for row in rows {
            let index = try row.decode(Int.self, column: "n") - 1
            let member = panel.members[index]
            let field = "members[\(index)]"
            let isTrained = try row.decode(Bool.self, column: "trained")
            result[member.participantID] = isTrained
            if try !row.decode(Bool.self, column: "found") {
                fields.reject(field, "is not a participant of this tenant")
            } else if try !row.decode(Bool.self, column: "active") {
                fields.reject(field, "is not active")
            } else if try !row.decode(Bool.self, column: "consented") {
                fields.reject(field, "holds no consent for \(RecruitmentPanelRules.consent.rawValue) in force on \(panel.heldOn), the panel's day (a waiver never replaces consent)")
            } else if !isTrained && member.waiverReason == nil {
                fields.reject(field, "holds no \(RecruitmentPanelRules.course.rawValue) training current on \(panel.heldOn), the panel's day, and carries no waiver")
            }
        }
        if let current = try await tx.query("""
            SELECT max(score)::int AS top FROM youth_panel_scores WHERE tenant_id = \(tenant) AND vacancy_id = \(vacancy.id)
            """).first?.decode(Int?.self, column: "top"), current > panel.scaleMax {
            fields.reject("scale_max", "is below scores already given (up to \(current)): send the scores again on the new scale first")
        }
        return result
    }

    /// The panel's members and questions, replacing those it had (scores of a member or
    /// question taken off go with them). A waiver sent again with the same reason keeps the key
    /// that first recorded it.
    private static func store(_ panel: NewYouthPanel, trained: [UUID: Bool], of vacancy: Vacancy, on tx: TenantTransaction) async throws {
        let tenant = tx.principal.tenantID
        let ids = panel.members.map(\.participantID)
        try await tx.execute("""
            DELETE FROM youth_panel_members
             WHERE tenant_id = \(tenant) AND vacancy_id = \(vacancy.id) AND NOT participant_id = ANY(\(ids)::uuid[])
            """)
        try await tx.execute("""
            INSERT INTO youth_panel_members AS m (tenant_id, organisation_id, vacancy_id, participant_id, position, trained, waiver_reason,
                                                  waiver_recorded_by)
            SELECT v.tenant_id, v.organisation_id, v.id, i.id, i.n, i.trained, i.reason,
                   CASE WHEN i.reason IS NULL THEN NULL ELSE \(tx.principal.keyID)::uuid END
              FROM vacancies v
             CROSS JOIN unnest(\(ids)::uuid[], \(ids.map { trained[$0] ?? false })::boolean[], \(panel.members.map(\.waiverReason))::text[])
                        WITH ORDINALITY AS i (id, trained, reason, n)
             WHERE v.tenant_id = \(tenant) AND v.id = \(vacancy.id)
            ON CONFLICT (tenant_id, vacancy_id, participant_id) DO UPDATE
               SET position = EXCLUDED.position, trained = EXCLUDED.trained, waiver_reason = EXCLUDED.waiver_reason,
                   waiver_recorded_by = CASE WHEN m.waiver_reason IS NOT DISTINCT FROM EXCLUDED.waiver_reason THEN m.waiver_recorded_by
                                             ELSE EXCLUDED.waiver_recorded_by END
            """)
        let codes = panel.questions.map(\.code)
        try await tx.execute("""
            DELETE FROM youth_panel_questions WHERE tenant_id = \(tenant) AND vacancy_id = \(vacancy.id) AND NOT code = ANY(\(codes)::text[])
            """)
        try await tx.execute("""
            INSERT INTO youth_panel_questions (tenant_id, organisation_id, vacancy_id, code, wording, position)
            SELECT v.tenant_id, v.organisation_id, v.id, q.code, q.wording, q.n
              FROM vacancies v CROSS JOIN unnest(\(codes)::text[], \(panel.questions.map(\.wording))::text[]) WITH ORDINALITY AS q (code, wording, n)
             WHERE v.tenant_id = \(tenant) AND v.id = \(vacancy.id)
            ON CONFLICT (tenant_id, vacancy_id, code) DO UPDATE SET wording = EXCLUDED.wording, position = EXCLUDED.position
            """)
    }
}

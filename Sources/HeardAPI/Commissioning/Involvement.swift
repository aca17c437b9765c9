import Foundation
import HTTPServer
import Postgres

/// One stage of a project as it answers it: whether young people were involved (any activity
/// linked), whether any of it was participation (a rung from 4 up: 1-3 are shown, honestly, as
/// non-participation), the highest rung, the distinct participants and the hours they gave.
struct StageInvolvement: Encodable, Sendable {
    struct Activity: Encodable, Sendable {
        var involvementId: UUID
        var activityId: UUID
        var hartsRung: Int
        var hartsRungName: String
        var participants: Int
        var hours: ExactDecimal

        enum CodingKeys: String, CodingKey {
            case involvementId = "involvement_id", activityId = "activity_id", hartsRung = "harts_rung"
            case hartsRungName = "harts_rung_name", participants, hours
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(involvementId.lowercased, forKey: .involvementId)
            try container.encode(activityId.lowercased, forKey: .activityId)
            try container.encode(hartsRung, forKey: .hartsRung)
            try container.encode(hartsRungName, forKey: .hartsRungName)
            try container.encode(participants, forKey: .participants)
            try container.encode(hours, forKey: .hours)
        }
    }

    var stage: String
    var involved: Bool
    var participation: Bool
    var highestRung: Int?
    var participants: Int
    var hours: ExactDecimal
    var activities: [Activity]

    enum CodingKeys: String, CodingKey {
        case stage, involved, participation, highestRung = "highest_rung", participants, hours, activities
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(stage, forKey: .stage)
        try container.encode(involved, forKey: .involved)
        try container.encode(participation, forKey: .participation)
        try container.encodeOrNull(highestRung, forKey: .highestRung)
        try container.encode(participants, forKey: .participants)
        try container.encode(hours, forKey: .hours)
        try container.encode(activities, forKey: .activities)
    }
}

/// `POST /v1/commissioning-projects/{id}/involvement`: an activity of Participation (kind
/// `commissioning`) linked to a stage the project has reached, with the hours each participant
/// gave (`[{"participant_id", "hours"}]`, each a participant of the activity; hours up to 2
/// decimal places).
enum Involvement {
    static let maxParticipants = 500

    static func link(_ request: Request, _ context: AccessContext) async throws -> Response {
        let id = try ProjectStore.projectID(request)
        var body = try FieldReader(body: request.body)
        let activityID = body.uuid("activity_id")
        let stage = body.vocabulary("stage", ProjectStage.self)
        if stage == .closed { body.reject("stage", "must be a stage young people take part in: \(ProjectStage.involving.map(\.rawValue).joined(separator: ", "))") }
        var hours: [(participant: UUID, hundredths: Int)] = []
        var hourFields: [String] = []
        for var reader in body.requiredObjects("hours", maxCount: maxParticipants) ?? [] {
            let participant = reader.uuid("participant_id")
            let given = reader.decimal("hours", in: 0...1000, places: 2)
            if given == 0 { reader.reject("hours", "must be more than 0") }
            if let participant, hours.contains(where: { $0.participant == participant }) { reader.reject("participant_id", "appears more than once") }
            if let participant, let given { hours.append((participant, given)) }
            hourFields.append(reader.path("participant_id"))
            body.absorb(reader)
        }
        let answer = try await context.transaction { tx -> CommissioningProject in
            let project = try await ProjectStore.current(id, on: tx)
            var activity: ActivityRecord?
            if let activityID {
                activity = try await ActivityRecord.find([activityID], on: tx)[activityID]
                if activity == nil { body.reject("activity_id", "is not an activity of this tenant") }
            }
            if let activity, activity.kind != ActivityKind.commissioning.rawValue {
                body.reject("activity_id", "must be an activity of kind commissioning (this one is \(activity.kind))")
            }
            if let stage, ProjectLifecycle.index(stage) > ProjectLifecycle.index(project.state) {
                body.reject("stage", "has not been reached: the project is at \(project.stage)")
            }
            if let activity, activity.kind == ActivityKind.commissioning.rawValue {
                let tookPart = try await activity.participantIDs(on: tx)
                for (index, entry) in hours.enumerated() where !tookPart.contains(entry.participant) {
                    body.reject(hourFields[index], "did not take part in the activity")
                }
            }
            try body.finish()
            guard let activityID, let stage else { throw HTTPError.validation([]) }
            let principal = tx.principal
            guard let row = try await tx.query("""
                INSERT INTO commissioning_involvement (tenant_id, organisation_id, project_id, activity_id, stage, created_by)
                SELECT tenant_id, organisation_id, id, \(activityID), \(stage.rawValue), \(principal.keyID)
                  FROM commissioning_projects WHERE tenant_id = \(principal.tenantID) AND id = \(id)
                ON CONFLICT (tenant_id, project_id, activity_id, stage) DO NOTHING
                RETURNING id
                """).first else {
                throw HTTPError(.involvementRecorded, detail: "This activity is already linked to the project's \(stage.rawValue) stage.")
            }
            let involvementID = try row.decode(UUID.self, column: "id")
            try await tx.execute("""
                INSERT INTO commissioning_involvement_hours (tenant_id, organisation_id, involvement_id, participant_id, hours)
                SELECT i.tenant_id, i.organisation_id, i.id, h.participant, h.hundredths / 100.0
                  FROM commissioning_involvement i
                 CROSS JOIN unnest(\(hours.map(\.participant))::uuid[], \(hours.map(\.hundredths))::bigint[]) AS h (participant, hundredths)
                 WHERE i.tenant_id = \(principal.tenantID) AND i.id = \(involvementID)
                """)
            // The project answers its involvement: a new version, so a cached copy is not current.
            try await tx.execute("""
                UPDATE commissioning_projects SET version = version + 1, updated_at = now()
                 WHERE tenant_id = \(principal.tenantID) AND id = \(id)
                """)
            return try await ProjectStore.changed(id, on: tx)
        }
        return answer.response(status: .created)
    }

    /// The project's involvement at each stage young people take part in, in stage order.
    /// The statement of it, to send with others; `byStage(from:)` reads its rows. An activity
    /// the key cannot see (row-level security) counts at rung 0.
    static func byStageQuery(of project: UUID, on tx: TenantTransaction) -> PostgresQuery {
        """
        SELECT i.id, i.activity_id, i.stage, a.harts_rung, count(h.participant_id)::int AS participants,
               coalesce(sum(h.hours), 0)::numeric(12, 2)::text AS hours,
               array_agg(h.participant_id) FILTER (WHERE h.participant_id IS NOT NULL) AS who
          FROM commissioning_involvement i
          LEFT JOIN activities a ON a.tenant_id = i.tenant_id AND a.id = i.activity_id
          LEFT JOIN commissioning_involvement_hours h ON h.tenant_id = i.tenant_id AND h.involvement_id = i.id
         WHERE i.tenant_id = \(tx.principal.tenantID) AND i.project_id = \(project)
         GROUP BY i.id, i.activity_id, i.stage, i.seq, a.harts_rung
         ORDER BY i.seq
        """
    }

    static func byStage(from rows: [PostgresRow]) throws -> [StageInvolvement] {
        struct Link {
            var id: UUID, activity: UUID, stage: String, rung: Int, participants: Int, hours: Int, who: [UUID]
        }
        let links = try rows.map { row in
            Link(id: try row.decode(UUID.self, column: "id"), activity: try row.decode(UUID.self, column: "activity_id"),
                 stage: try row.decode(String.self, column: "stage"), rung: try row.decode(Int?.self, column: "harts_rung") ?? 0,
                 participants: try row.decode(Int.self, column: "participants"),
                 hours: FieldReader.scaled(try row.decode(String.self, column: "hours"), places: 2) ?? 0,
                 who: try row.decode([UUID]?.self, column: "who") ?? [])
        }
        return ProjectStage.involving.map { stage in
            let here = links.filter { $0.stage == stage.rawValue }
            let entries = here.map { link in
                StageInvolvement.Activity(
                    involvementId: link.id, activityId: link.activity, hartsRung: link.rung,
                    hartsRungName: HartsRung(rawValue: link.rung)?.code ?? "", participants: link.participants,
                    hours: Fraction(scaled: link.hours, places: 2).decimal())
            }
            let highest = entries.map(\.hartsRung).max()
            return StageInvolvement(
                stage: stage.rawValue, involved: !entries.isEmpty,
                participation: entries.contains { HartsRung(rawValue: $0.hartsRung)?.isParticipation == true },
                highestRung: highest, participants: Set(here.flatMap(\.who)).count,
                hours: Fraction(scaled: here.map(\.hours).reduce(0, +), places: 2).decimal(), activities: entries)
        }
    }
}

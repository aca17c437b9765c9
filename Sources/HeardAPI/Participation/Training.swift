import Foundation
import HTTPServer
import Postgres

/// A course a participant completed: current from `completed_on` to `expires_on`, both
/// included (none: it does not expire). See `ParticipationRules.trainedFor`.
struct TrainingRecord: BelongsToParticipant {
    var id = UUID.zero
    var participantId = UUID.zero
    var course = ""
    var completedOn = CalendarDate(daysSince1970: 0)
    var expiresOn: CalendarDate?
    var version = 1
    var createdAt = Date(timeIntervalSince1970: 0)

    var location: String { "/v1/participants/\(participantId.lowercased)/training/\(id.lowercased)" }

    static let table = Table<TrainingRecord>("training_records t", [
        .column("id", "t.id", \.id), .column("participant_id", "t.participant_id", \.participantId), .column("course", "t.course", \.course),
        .column("completed_on", "t.completed_on", \.completedOn), .column("expires_on", "t.expires_on", \.expiresOn),
        .column("version", "t.version", \.version), .column("created_at", "t.created_at", \.createdAt),
    ])
}

/// Thanks and rewards given to a participant, optionally for an activity.
struct RewardRecord: BelongsToParticipant {
    var id = UUID.zero
    var participantId = UUID.zero
    var kind = ""
    var valuePence: Int?
    var givenOn = CalendarDate(daysSince1970: 0)
    var activityId: UUID?
    var version = 1
    var createdAt = Date(timeIntervalSince1970: 0)

    var location: String { "/v1/participants/\(participantId.lowercased)/rewards/\(id.lowercased)" }

    static let table = Table<RewardRecord>("rewards r", [
        .column("id", "r.id", \.id), .column("participant_id", "r.participant_id", \.participantId), .column("kind", "r.kind", \.kind),
        .column("value_pence", "r.value_pence", \.valuePence), .column("given_on", "r.given_on", \.givenOn),
        .column("activity_id", "r.activity_id", \.activityId), .column("version", "r.version", \.version),
        .column("created_at", "r.created_at", \.createdAt),
    ])
}

enum TrainingRoutes {
    static let notFound = HTTPError(.notFound, detail: "There is no training record with this id for this participant.")

    static let endpoints = ParticipantChild<TrainingRecord>(
        path: "training", idParameter: "training_id", resource: .trainingRecord, notFound: notFound,
        list: ListEndpoint<TrainingRecord, Void>(
            resource: .trainingRecord, filters: [.vocabulary("course", TrainingCourse.self, "t.course")],
            order: ListOrder(ascending: [("t.created_at", .timestamptz), ("t.id", .uuid)])
        ).below(ListParent(table: "participants", column: "t.participant_id", notFound: ParticipantRoutes.notFound))
    ) { fields, participant, tx in
        let course = fields.vocabulary("course", TrainingCourse.self)
        let completedOn = fields.date("completed_on")
        let expiresOn = fields.date("expires_on", required: false)
        if let completedOn, let expiresOn, expiresOn < completedOn { fields.reject("expires_on", "must not be before completed_on") }
        try fields.finish()
        guard let course, let completedOn else { return nil }
        return try await tx.query("""
            INSERT INTO training_records (tenant_id, organisation_id, participant_id, course, completed_on, expires_on, created_by)
            SELECT tenant_id, organisation_id, id, \(course.rawValue), \(completedOn), \(expiresOn), \(tx.principal.keyID)
              FROM participants WHERE tenant_id = \(tx.principal.tenantID) AND id = \(participant)
            RETURNING id
            """).first?.decode(UUID.self, column: "id")
    }
}

enum RewardRoutes {
    static let notFound = HTTPError(.notFound, detail: "There is no reward with this id for this participant.")
    static let maxValuePence = 100_000_000

    static let endpoints = ParticipantChild<RewardRecord>(
        path: "rewards", idParameter: "reward_id", resource: .reward, notFound: notFound,
        list: ListEndpoint<RewardRecord, Void>(
            resource: .reward, filters: [.vocabulary("kind", RewardKind.self, "r.kind")],
            days: DayRange(column: "r.given_on", zone: .date),
            order: ListOrder(ascending: [("r.created_at", .timestamptz), ("r.id", .uuid)])
        ).below(ListParent(table: "participants", column: "r.participant_id", notFound: ParticipantRoutes.notFound))
    ) { fields, participant, tx in
        let kind = fields.vocabulary("kind", RewardKind.self)
        let value = fields.integer("value_pence", in: 0...maxValuePence, required: false)
        let givenOn = fields.date("given_on")
        let activity = fields.uuid("activity_id", required: false)
        if let activity, try await tx.query("SELECT 1 FROM activities WHERE tenant_id = \(tx.principal.tenantID) AND id = \(activity)").isEmpty {
            fields.reject("activity_id", "is not an activity of this tenant")
        }
        try fields.finish()
        guard let kind, let givenOn else { return nil }
        return try await tx.query("""
            INSERT INTO rewards (tenant_id, organisation_id, participant_id, kind, value_pence, given_on, activity_id, created_by)
            SELECT tenant_id, organisation_id, id, \(kind.rawValue), \(value), \(givenOn), \(activity), \(tx.principal.keyID)
              FROM participants WHERE tenant_id = \(tx.principal.tenantID) AND id = \(participant)
            RETURNING id
            """).first?.decode(UUID.self, column: "id")
    }
}

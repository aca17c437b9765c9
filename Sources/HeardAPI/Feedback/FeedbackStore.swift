import Foundation
import HTTPServer
import Postgres

/// Feedback as Heard answers it. `comment` is present only for a key with `free_text:read`.
struct FeedbackRecord: Encodable, Sendable {
    struct ScoredResponse: Encodable, Sendable {
        var measure: String
        var score: Int
        /// The measure's wording when this response was given, and its version.
        var wording: String
        var measureVersion: Int
        var agrees: Bool
    }

    struct Equality: Encodable, Sendable {
        var gender: String?
        var ethnicity: String?
        var disability: String?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(gender, forKey: .gender)
            try container.encode(ethnicity, forKey: .ethnicity)
            try container.encode(disability, forKey: .disability)
        }

        enum CodingKeys: String, CodingKey { case gender, ethnicity, disability }
    }

    struct AlertSummary: Encodable, Sendable {
        var id: String
        var status: String
    }

    var id: UUID
    var sourceSystem: String
    var externalId: String
    var channel: String
    var respondentRole: String
    var ageBand: String
    var serviceArea: String
    var team: String?
    var stage: String
    var kind: String
    var givenAt: Date
    var subjectRef: String?
    var responses: [ScoredResponse]
    var comment: String?
    var includesFreeText: Bool
    var anonymous: Bool
    var consentToFollowUp: Bool
    var safeguardingConcern: Bool
    var safeguardingAlert: AlertSummary?
    var equality: Equality?
    var organisation: String?
    var version: Int
    var createdAt: Date
    var updatedAt: Date
    var contentHash: String

    /// The strong entity tag of this version.
    var etag: String { "\"\(version)\"" }

    enum CodingKeys: String, CodingKey {
        case id, sourceSystem, externalId, channel, respondentRole, ageBand, serviceArea, team, stage, kind, givenAt
        case subjectRef, responses, comment, anonymous, consentToFollowUp, safeguardingConcern, safeguardingAlert
        case equality, organisation, version, createdAt, updatedAt
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id.lowercased, forKey: .id)
        try container.encode(sourceSystem, forKey: .sourceSystem)
        try container.encode(externalId, forKey: .externalId)
        try container.encode(channel, forKey: .channel)
        try container.encode(respondentRole, forKey: .respondentRole)
        try container.encode(ageBand, forKey: .ageBand)
        try container.encode(serviceArea, forKey: .serviceArea)
        try container.encode(team, forKey: .team)
        try container.encode(stage, forKey: .stage)
        try container.encode(kind, forKey: .kind)
        try container.encode(givenAt, forKey: .givenAt)
        try container.encode(subjectRef, forKey: .subjectRef)
        try container.encode(responses, forKey: .responses)
        // Narrative is the riskiest field: without the scope it is absent, not empty.
        if includesFreeText { try container.encode(comment, forKey: .comment) }
        try container.encode(anonymous, forKey: .anonymous)
        try container.encode(consentToFollowUp, forKey: .consentToFollowUp)
        try container.encode(safeguardingConcern, forKey: .safeguardingConcern)
        try container.encode(safeguardingAlert, forKey: .safeguardingAlert)
        try container.encode(equality, forKey: .equality)
        try container.encode(organisation, forKey: .organisation)
        try container.encode(version, forKey: .version)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(updatedAt, forKey: .updatedAt)
    }
}

/// The SQL for feedback.
enum FeedbackStore {
    enum Outcome {
        case created(FeedbackRecord)
        /// The same (source_system, external_id) was already there; the record as it stands.
        case existing(FeedbackRecord)
        /// The natural key is taken by a record this key cannot see (another organisation's).
        case hidden
    }

    /// Stores `feedback` unless its (source_system, external_id) exists, in one statement: the
    /// record, its scored responses and, for a safeguarding concern, the alert are written
    /// together or not at all. Returns the new id, or the existing record's id and hash.
    static func store(_ feedback: NewFeedback, organisationID: UUID?, on tx: TenantTransaction) async throws -> (id: UUID, created: Bool, contentHash: String)? {
        let tenant = tx.principal.tenantID
        let inserted = try await tx.query("""
            WITH new AS (
                INSERT INTO feedback (tenant_id, organisation_id, source_system, external_id, channel, respondent_role, age_band,
                                      service_area, team, stage, kind, given_at, subject_ref, comment, anonymous,
                                      consent_to_follow_up, safeguarding_concern, gender, ethnicity, disability, content_hash, created_by)
                VALUES (\(tenant), \(organisationID), \(feedback.sourceSystem), \(feedback.externalID), \(feedback.channel.rawValue),
                        \(feedback.respondentRole.rawValue), \(feedback.ageBand.rawValue), \(feedback.serviceArea.rawValue),
                        \(feedback.team), \(feedback.stage.rawValue), \(feedback.kind.rawValue), \(feedback.givenAt),
                        \(feedback.subjectRef), \(feedback.comment), \(feedback.anonymous), \(feedback.consentToFollowUp),
                        \(feedback.safeguardingConcern), \(feedback.equality?.gender?.rawValue), \(feedback.equality?.ethnicity?.rawValue),
                        \(feedback.equality?.disability?.rawValue), \(feedback.contentHash), \(tx.principal.keyID))
                ON CONFLICT (tenant_id, source_system, external_id) DO NOTHING
                RETURNING id, organisation_id, safeguarding_concern
            ), responses AS (
                INSERT INTO feedback_responses (tenant_id, feedback_id, measure_id, measure_version, score)
                SELECT \(tenant), new.id, r.measure_id, r.measure_version, r.score
                  FROM new, unnest(\(feedback.responses.map(\.measure.id))::uuid[], \(feedback.responses.map(\.measure.version))::int[],
                                   \(feedback.responses.map(\.score))::int[]) AS r (measure_id, measure_version, score)
            ), alert AS (
                INSERT INTO safeguarding_alerts (tenant_id, feedback_id, organisation_id)
                SELECT \(tenant), new.id, new.organisation_id FROM new WHERE new.safeguarding_concern
            )
            SELECT id FROM new
            """)
        if let id = try inserted.first?.decode(UUID.self, column: "id") {
            return (id, true, feedback.contentHash)
        }
        let existing = try await tx.query("""
            SELECT id, content_hash FROM feedback
             WHERE tenant_id = \(tenant) AND source_system = \(feedback.sourceSystem) AND external_id = \(feedback.externalID)
            """)
        guard let row = existing.first else { return nil }
        return (try row.decode(UUID.self, column: "id"), false, try row.decode(String.self, column: "content_hash"))
    }

    /// Stores `feedback` and reads back the record it created, or the one already there.
    static func insert(_ feedback: NewFeedback, organisationID: UUID?, on tx: TenantTransaction, includeFreeText: Bool) async throws -> Outcome {
        guard let stored = try await store(feedback, organisationID: organisationID, on: tx),
              let record = try await find(stored.id, on: tx, includeFreeText: includeFreeText) else { return .hidden }
        return stored.created ? .created(record) : .existing(record)
    }

    /// The columns of a record with its organisation and alert: constant SQL (no values), with
    /// `comment` read from the table only when the key may see it.
    static func recordSelect(includeFreeText: Bool) -> String {
        """
        SELECT f.seq, f.id, f.source_system, f.external_id, f.channel, f.respondent_role, f.age_band, f.service_area, f.team,
               f.stage, f.kind, f.given_at, f.subject_ref, \(includeFreeText ? "f.comment" : "NULL::text") AS comment,
               f.anonymous, f.consent_to_follow_up, f.safeguarding_concern, f.gender, f.ethnicity, f.disability, f.version,
               f.created_at, f.updated_at, f.content_hash, o.slug AS organisation, a.id AS alert_id, a.status AS alert_status
          FROM feedback f
          LEFT JOIN organisations o ON o.tenant_id = f.tenant_id AND o.id = f.organisation_id
          LEFT JOIN safeguarding_alerts a ON a.tenant_id = f.tenant_id AND a.feedback_id = f.id
        """
    }

    /// One record of the caller's tenant (and organisation), or nil.
    static func find(_ id: UUID, on tx: TenantTransaction, includeFreeText: Bool) async throws -> FeedbackRecord? {
        guard let row = try await tx.query("""
            \(unsafeRaw: recordSelect(includeFreeText: includeFreeText))
             WHERE f.tenant_id = \(tx.principal.tenantID) AND f.id = \(id)
            """).first else { return nil }
        let responses = try await responses(of: [id], on: tx)
        return try record(from: row, responses: responses[id] ?? [], includeFreeText: includeFreeText)
    }

    static let responsesSelect = """
        SELECT r.feedback_id, m.code, r.score, r.measure_version, v.wording, r.score >= v.agree_from AS agrees
          FROM feedback_responses r
          JOIN measures m ON m.tenant_id = r.tenant_id AND m.id = r.measure_id
          JOIN measure_versions v ON v.tenant_id = r.tenant_id AND v.measure_id = r.measure_id AND v.version = r.measure_version
        """

    /// The scored responses of `ids`, in one query, with the wording each was given against.
    static func responses(of ids: [UUID], on tx: TenantTransaction) async throws -> [UUID: [FeedbackRecord.ScoredResponse]] {
        guard !ids.isEmpty else { return [:] }
        let tenant = tx.principal.tenantID
        // One id is compared with `=`: PostgreSQL plans `= ANY($1)` afresh on every call.
        let rows = ids.count == 1
            ? try await tx.query("\(unsafeRaw: responsesSelect) WHERE r.tenant_id = \(tenant) AND r.feedback_id = \(ids[0]) ORDER BY m.code")
            : try await tx.query("""
                \(unsafeRaw: responsesSelect) WHERE r.tenant_id = \(tenant) AND r.feedback_id = ANY(\(ids)::uuid[])
                ORDER BY r.feedback_id, m.code
                """)
        var responses: [UUID: [FeedbackRecord.ScoredResponse]] = [:]
        for row in rows {
            responses[try row.decode(UUID.self, column: "feedback_id"), default: []].append(FeedbackRecord.ScoredResponse(
                measure: try row.decode(String.self, column: "code"), score: try row.decode(Int.self, column: "score"),
                wording: try row.decode(String.self, column: "wording"), measureVersion: try row.decode(Int.self, column: "measure_version"),
                agrees: try row.decode(Bool.self, column: "agrees")))
        }
        return responses
    }

    /// A row of `recordSelect` as a record.
    static func record(from row: PostgresRow, responses: [FeedbackRecord.ScoredResponse], includeFreeText: Bool) throws -> FeedbackRecord {
        let gender = try row.decode(String?.self, column: "gender"), ethnicity = try row.decode(String?.self, column: "ethnicity")
        let disability = try row.decode(String?.self, column: "disability")
        let alertID = try row.decode(UUID?.self, column: "alert_id")
        return FeedbackRecord(
            id: try row.decode(UUID.self, column: "id"), sourceSystem: try row.decode(String.self, column: "source_system"),
            externalId: try row.decode(String.self, column: "external_id"), channel: try row.decode(String.self, column: "channel"),
            respondentRole: try row.decode(String.self, column: "respondent_role"), ageBand: try row.decode(String.self, column: "age_band"),
            serviceArea: try row.decode(String.self, column: "service_area"), team: try row.decode(String?.self, column: "team"),
            stage: try row.decode(String.self, column: "stage"), kind: try row.decode(String.self, column: "kind"),
            givenAt: try row.decode(Date.self, column: "given_at"), subjectRef: try row.decode(String?.self, column: "subject_ref"),
            responses: responses, comment: try row.decode(String?.self, column: "comment"), includesFreeText: includeFreeText,
            anonymous: try row.decode(Bool.self, column: "anonymous"),
            consentToFollowUp: try row.decode(Bool.self, column: "consent_to_follow_up"),
            safeguardingConcern: try row.decode(Bool.self, column: "safeguarding_concern"),
            safeguardingAlert: try alertID.map { FeedbackRecord.AlertSummary(id: $0.lowercased, status: try row.decode(String.self, column: "alert_status")) },
            equality: gender == nil && ethnicity == nil && disability == nil
                ? nil : FeedbackRecord.Equality(gender: gender, ethnicity: ethnicity, disability: disability),
            organisation: try row.decode(String?.self, column: "organisation"), version: try row.decode(Int.self, column: "version"),
            createdAt: try row.decode(Date.self, column: "created_at"), updatedAt: try row.decode(Date.self, column: "updated_at"),
            contentHash: try row.decode(String.self, column: "content_hash"))
    }
}

import Foundation
import HTTPServer
import Postgres

/// Feedback as Heard answers it. `comment` is present only for a key with `free_text:read`.
struct FeedbackRecord: StoredRecord {
    struct ScoredResponse: Encodable, Sendable {
        var measure: String
        var score: Int
        /// The measure's wording when this response was given, and its version.
        var wording: String
        var measureVersion: Int
        var agrees: Bool

        enum CodingKeys: String, CodingKey {
            case measure, score, wording, measureVersion = "measure_version", agrees
        }
    }

    struct Equality: StoredRecord {
        var gender: String?
        var ethnicity: String?
        var disability: String?

        static let table = Table<Equality>("feedback f", [
            .column("gender", "f.gender", \.gender), .column("ethnicity", "f.ethnicity", \.ethnicity),
            .column("disability", "f.disability", \.disability),
        ])
    }

    struct AlertSummary: StoredRecord {
        var id = UUID.zero
        var status = ""

        static let table = Table<AlertSummary>("safeguarding_alerts a", [.column("id", "a.id", \.id), .column("status", "a.status", \.status)])
    }

    var id = UUID.zero
    var sourceSystem = ""
    var externalId = ""
    var channel = ""
    var respondentRole = ""
    var ageBand = ""
    var serviceArea = ""
    var team: String?
    var stage = ""
    var kind = ""
    var givenAt = Date(timeIntervalSince1970: 0)
    var subjectRef: String?
    var responses: [ScoredResponse] = []
    var comment: String?
    var includesFreeText = false
    var anonymous = false
    var consentToFollowUp = false
    var safeguardingConcern = false
    var safeguardingAlert: AlertSummary?
    var equality: Equality?
    var organisation: String?
    var complaintId: UUID?
    var version = 1
    var createdAt = Date(timeIntervalSince1970: 0)
    var updatedAt = Date(timeIntervalSince1970: 0)
    var contentHash = ""
    /// The responses as stored: measure, version and score, position by position.
    var stored = StoredResponses()

    struct StoredResponses: Sendable {
        var measures: [UUID] = []
        var versions: [Int] = []
        var scores: [Int] = []
    }

    var etag: String { ETag.of(version: version) }

    static let table = Table<FeedbackRecord>("""
        feedback f
          LEFT JOIN organisations o ON o.tenant_id = f.tenant_id AND o.id = f.organisation_id
          LEFT JOIN safeguarding_alerts a ON a.tenant_id = f.tenant_id AND a.feedback_id = f.id
        """, [
            .column("id", "f.id", \.id), .column("source_system", "f.source_system", \.sourceSystem),
            .column("external_id", "f.external_id", \.externalId), .column("channel", "f.channel", \.channel),
            .column("respondent_role", "f.respondent_role", \.respondentRole), .column("age_band", "f.age_band", \.ageBand),
            .column("service_area", "f.service_area", \.serviceArea), .column("team", "f.team", \.team),
            .column("stage", "f.stage", \.stage), .column("kind", "f.kind", \.kind), .column("given_at", "f.given_at", \.givenAt),
            .column("subject_ref", "f.subject_ref", \.subjectRef), .computed("responses", \.responses),
            .freeText("comment", "f.comment", \.comment), .column("anonymous", "f.anonymous", \.anonymous),
            .column("consent_to_follow_up", "f.consent_to_follow_up", \.consentToFollowUp),
            .column("safeguarding_concern", "f.safeguarding_concern", \.safeguardingConcern),
            .nested("safeguarding_alert", \.safeguardingAlert, prefix: "safeguarding_alert_"), .nested("equality", \.equality),
            .column("organisation", "o.slug", \.organisation), .column("complaint_id", "f.complaint_id", \.complaintId),
            .column("version", "f.version", \.version),
            .column("created_at", "f.created_at", \.createdAt), .column("updated_at", "f.updated_at", \.updatedAt),
            .column("content_hash", "f.content_hash", \.contentHash, hidden: true),
            .stored("stored_measures", "f.response_measures", \.stored.measures),
            .stored("stored_versions", "f.response_versions::int8[]", \.stored.versions),
            .stored("stored_scores", "f.response_scores::int8[]", \.stored.scores),
        ])
}

/// The SQL for feedback.
enum FeedbackStore {
    /// Creates `feedback` unless its (source_system, external_id) exists, in one statement: the
    /// record with its scored responses, for a safeguarding concern the alert, and the audit row of
    /// the creation are written together or not at all, and committed in the same round trip
    /// (the transaction holds its locks only while PostgreSQL works). The statement returns
    /// what only the database knows (id, times, organisation, alert); the rest of the record is
    /// what was sent, so creating needs no read-back. Nil when the natural key is taken: see
    /// `existing(_:on:)`, in a transaction of its own.
    static func create(_ feedback: NewFeedback, organisationID: UUID?, on tx: TenantTransaction, includeFreeText: Bool) async throws -> FeedbackRecord? {
        let tenant = tx.principal.tenantID
        let inserted = try await tx.queryAndCommit("""
            WITH new AS (
                INSERT INTO feedback (tenant_id, organisation_id, source_system, external_id, channel, respondent_role, age_band,
                                      service_area, team, stage, kind, given_at, subject_ref, comment, anonymous,
                                      consent_to_follow_up, safeguarding_concern, gender, ethnicity, disability, content_hash, created_by,
                                      response_measures, response_versions, response_scores, complaint_id)
                VALUES (\(tenant), \(organisationID), \(feedback.sourceSystem), \(feedback.externalID), \(feedback.channel.rawValue),
                        \(feedback.respondentRole.rawValue), \(feedback.ageBand.rawValue), \(feedback.serviceArea.rawValue),
                        \(feedback.team), \(feedback.stage.rawValue), \(feedback.kind.rawValue), \(feedback.givenAt),
                        \(feedback.subjectRef), \(feedback.comment), \(feedback.anonymous), \(feedback.consentToFollowUp),
                        \(feedback.safeguardingConcern), \(feedback.equality?.gender?.rawValue), \(feedback.equality?.ethnicity?.rawValue),
                        \(feedback.equality?.disability?.rawValue), \(feedback.contentHash), \(tx.principal.keyID),
                        \(feedback.responses.map(\.measure.id)), \(feedback.responses.map(\.measure.version)), \(feedback.responses.map(\.score)),
                        \(feedback.complaintID))
                ON CONFLICT (tenant_id, source_system, external_id) DO NOTHING
                RETURNING id, organisation_id, safeguarding_concern, given_at, version, created_at, updated_at
            ), alert AS (
                INSERT INTO safeguarding_alerts (tenant_id, feedback_id, organisation_id)
                SELECT \(tenant), new.id, new.organisation_id FROM new WHERE new.safeguarding_concern
                RETURNING id, status
            ), audited AS (
                -- The audit row of the creation, in the same statement: so the transaction is
                -- the settings and this, sent as one unit on a shared connection
                -- (PostgresPool.transaction), and nothing else.
                \(AuditTrail.recordEach(of: "new", resourceID: "new.id::text", principal: tx.principal, requestID: "\(tx.requestID)",
                                        action: .create, resourceType: .feedback))
            )
            SELECT new.id, new.given_at, new.version, new.created_at, new.updated_at, o.slug AS organisation,
                   alert.id AS alert_id, alert.status AS alert_status
              FROM new
              LEFT JOIN organisations o ON o.tenant_id = \(tenant) AND o.id = new.organisation_id
              LEFT JOIN alert ON true
            """)
        guard let row = inserted.first else { return nil }
        return try createdRecord(feedback, row: row, includeFreeText: includeFreeText)
    }

    /// The id, content hash and comment of the record that holds `feedback`'s natural key, if
    /// this key can see it. The comment is for comparing a retry (`NewFeedback.matches`), never
    /// for an answer.
    static func existing(_ feedback: NewFeedback, on tx: TenantTransaction) async throws -> (id: UUID, contentHash: String, comment: String?)? {
        guard let row = try await tx.query("""
            SELECT id, content_hash, comment FROM feedback
             WHERE tenant_id = \(tx.principal.tenantID) AND source_system = \(feedback.sourceSystem) AND external_id = \(feedback.externalID)
            """).first else { return nil }
        return (try row.decode(UUID.self, column: "id"), try row.decode(String.self, column: "content_hash"),
                try row.decode(String?.self, column: "comment"))
    }

    /// The record `create` stored: what was sent, with what the database added.
    private static func createdRecord(_ feedback: NewFeedback, row: PostgresRow, includeFreeText: Bool) throws -> FeedbackRecord {
        let alertID = try row.decode(UUID?.self, column: "alert_id")
        let equality = feedback.equality.flatMap { equality in
            equality.gender == nil && equality.ethnicity == nil && equality.disability == nil ? nil
                : FeedbackRecord.Equality(gender: equality.gender?.rawValue, ethnicity: equality.ethnicity?.rawValue,
                                          disability: equality.disability?.rawValue)
        }
        return FeedbackRecord(
            id: try row.decode(UUID.self, column: "id"), sourceSystem: feedback.sourceSystem, externalId: feedback.externalID,
            channel: feedback.channel.rawValue, respondentRole: feedback.respondentRole.rawValue, ageBand: feedback.ageBand.rawValue,
            serviceArea: feedback.serviceArea.rawValue, team: feedback.team, stage: feedback.stage.rawValue, kind: feedback.kind.rawValue,
            givenAt: try row.decode(Date.self, column: "given_at"), subjectRef: feedback.subjectRef,
            // As a read answers them: by measure code, with the wording and version they were given against.
            responses: feedback.responses.sorted { $0.measure.code < $1.measure.code }.map { response in
                FeedbackRecord.ScoredResponse(measure: response.measure.code, score: response.score, wording: response.measure.wording,
                                              measureVersion: response.measure.version, agrees: response.score >= response.measure.scale.agreeFrom)
            },
            comment: includeFreeText ? feedback.comment : nil, includesFreeText: includeFreeText, anonymous: feedback.anonymous,
            consentToFollowUp: feedback.consentToFollowUp, safeguardingConcern: feedback.safeguardingConcern,
            safeguardingAlert: try alertID.map { FeedbackRecord.AlertSummary(id: $0, status: try row.decode(String.self, column: "alert_status")) },
            equality: equality, organisation: try row.decode(String?.self, column: "organisation"), complaintId: feedback.complaintID,
            version: try row.decode(Int.self, column: "version"), createdAt: try row.decode(Date.self, column: "created_at"),
            updatedAt: try row.decode(Date.self, column: "updated_at"), contentHash: feedback.contentHash)
    }

    /// What `storeMany` did with one record.
    enum StoredInBatch: Equatable {
        case created(UUID)
        /// The natural key was already there: that record's id, content hash and comment (for
        /// comparing, never for an answer).
        case existing(UUID, contentHash: String, comment: String?)
    }

    /// A new record of a batch or a group: what was sent, the organisation it is attributed
    /// to, and the request it came in (its audit row names that request).
    struct Insert: Sendable {
        var feedback: NewFeedback
        var organisationID: UUID?
        var requestID: String
    }

    /// Stores many records in two statements, whatever their number: one inserts every record
    /// whose (source_system, external_id) is new, with its responses, any alert and its audit
    /// row (`insertQuery`); one reads the id and content hash of those already there. Answers
    /// per record, in order; nil where the natural key is taken by a record this key cannot
    /// see. The records' natural keys must differ from one another.
    static func storeMany(_ records: [Insert], on tx: TenantTransaction) async throws -> [StoredInBatch?] {
        guard !records.isEmpty else { return [] }
        let created = try await tx.query(insertQuery(records, on: tx))
        var answers = [StoredInBatch?](repeating: nil, count: records.count)
        for row in created {
            answers[try row.decode(Int.self, column: "n") - 1] = .created(try row.decode(UUID.self, column: "id"))
        }
        let others = answers.indices.filter { answers[$0] == nil }
        guard !others.isEmpty else { return answers }
        let feedback = records.map(\.feedback)
        let existing = try await tx.query("""
            SELECT i.n, f.id, f.content_hash, f.comment
              FROM unnest(\(others.map { feedback[$0].sourceSystem })::text[], \(others.map { feedback[$0].externalID })::text[],
                          \(others.map { $0 + 1 })::bigint[]) AS i (source_system, external_id, n)
              JOIN feedback f ON f.tenant_id = \(tx.principal.tenantID) AND f.source_system = i.source_system AND f.external_id = i.external_id
            """)
        for row in existing {
            answers[try row.decode(Int.self, column: "n") - 1] = .existing(try row.decode(UUID.self, column: "id"),
                                                                          contentHash: try row.decode(String.self, column: "content_hash"),
                                                                          comment: try row.decode(String?.self, column: "comment"))
        }
        return answers
    }

    /// Creates `records` (single POSTs that came together: see `FeedbackRoutes.creates`) in one
    /// statement, committed in the same round trip: each record as `create` answers it, or nil
    /// where its natural key was taken. Their natural keys must differ from one another.
    static func createAll(_ records: [Insert], on tx: TenantTransaction, includeFreeText: Bool) async throws -> [FeedbackRecord?] {
        var answers = [FeedbackRecord?](repeating: nil, count: records.count)
        for row in try await tx.queryAndCommit(insertQuery(records, on: tx)) {
            let index = try row.decode(Int.self, column: "n") - 1
            answers[index] = try createdRecord(records[index].feedback, row: row, includeFreeText: includeFreeText)
        }
        return answers
    }

    /// One statement that inserts every record of `records` whose (source_system, external_id)
    /// is new, with its responses, any alert, and the audit row of its creation naming its own
    /// request; it returns, for each record created, its position (`n`, 1-based) and what
    /// `createdRecord` needs. Rows are inserted in natural-key order, so two statements that
    /// overlap wait for each other instead of deadlocking.
    private static func insertQuery(_ records: [Insert], on tx: TenantTransaction) -> PostgresQuery {
        let tenant = tx.principal.tenantID
        let feedback = records.map(\.feedback)
        // Every record's responses in three flat arrays; record n's are at first[n] ..< first[n] + count[n] (1-based).
        let responses = feedback.flatMap(\.responses)
        let responseCounts = feedback.map(\.responses.count)
        var responseFirst: [Int] = []
        responseFirst.reserveCapacity(feedback.count)
        var next = 1
        for count in responseCounts {
            responseFirst.append(next)
            next += count
        }
        return """
            WITH input AS (
                SELECT *
                  FROM unnest(\(records.map(\.organisationID))::uuid[], \(feedback.map(\.sourceSystem))::text[],
                              \(feedback.map(\.externalID))::text[], \(feedback.map(\.channel.rawValue))::text[],
                              \(feedback.map(\.respondentRole.rawValue))::text[], \(feedback.map(\.ageBand.rawValue))::text[],
                              \(feedback.map(\.serviceArea.rawValue))::text[], \(feedback.map(\.team))::text[],
                              \(feedback.map(\.stage.rawValue))::text[], \(feedback.map(\.kind.rawValue))::text[],
                              \(feedback.map(\.givenAt))::timestamptz[], \(feedback.map(\.subjectRef))::text[],
                              \(feedback.map(\.comment))::text[], \(feedback.map(\.anonymous))::boolean[],
                              \(feedback.map(\.consentToFollowUp))::boolean[], \(feedback.map(\.safeguardingConcern))::boolean[],
                              \(feedback.map { $0.equality?.gender?.rawValue })::text[], \(feedback.map { $0.equality?.ethnicity?.rawValue })::text[],
                              \(feedback.map { $0.equality?.disability?.rawValue })::text[], \(feedback.map(\.contentHash))::text[],
                              \(responseFirst)::int[], \(responseCounts)::int[], \(feedback.map(\.complaintID))::uuid[],
                              \(records.map(\.requestID))::text[])
                       WITH ORDINALITY AS i (organisation_id, source_system, external_id, channel, respondent_role, age_band,
                                             service_area, team, stage, kind, given_at, subject_ref, comment, anonymous,
                                             consent_to_follow_up, safeguarding_concern, gender, ethnicity, disability, content_hash,
                                             response_first, response_count, complaint_id, request_id, n)
            ), new AS (
                INSERT INTO feedback (tenant_id, organisation_id, source_system, external_id, channel, respondent_role, age_band,
                                      service_area, team, stage, kind, given_at, subject_ref, comment, anonymous,
                                      consent_to_follow_up, safeguarding_concern, gender, ethnicity, disability, content_hash, created_by,
                                      complaint_id, response_measures, response_versions, response_scores)
                SELECT \(tenant), organisation_id, source_system, external_id, channel, respondent_role, age_band,
                       service_area, team, stage, kind, given_at, subject_ref, comment, anonymous,
                       consent_to_follow_up, safeguarding_concern, gender, ethnicity, disability, content_hash, \(tx.principal.keyID),
                       complaint_id,
                       -- Sliced as bound, then cast: a cast of the whole array would run once a row.
                       (\(responses.map(\.measure.id)))[response_first : response_first + response_count - 1],
                       (\(responses.map(\.measure.version)))[response_first : response_first + response_count - 1]::int[],
                       (\(responses.map(\.score)))[response_first : response_first + response_count - 1]::int[]
                  FROM input
                 ORDER BY source_system, external_id
                ON CONFLICT (tenant_id, source_system, external_id) DO NOTHING
                RETURNING id, source_system, external_id, organisation_id, safeguarding_concern, given_at, version, created_at, updated_at
            ), numbered AS (
                SELECT input.n, input.request_id, new.*
                  FROM new JOIN input USING (source_system, external_id)
            ), alert AS (
                INSERT INTO safeguarding_alerts (tenant_id, feedback_id, organisation_id)
                SELECT \(tenant), id, organisation_id FROM numbered WHERE safeguarding_concern
                RETURNING id, status, feedback_id
            ), audited AS (
                \(AuditTrail.recordEach(of: "numbered", resourceID: "numbered.id::text", principal: tx.principal,
                                        requestID: "numbered.request_id", action: .create, resourceType: .feedback))
            )
            SELECT numbered.n, numbered.id, numbered.given_at, numbered.version, numbered.created_at, numbered.updated_at,
                   o.slug AS organisation, alert.id AS alert_id, alert.status AS alert_status
              FROM numbered
              LEFT JOIN organisations o ON o.tenant_id = \(tenant) AND o.id = numbered.organisation_id
              LEFT JOIN alert ON alert.feedback_id = numbered.id
            """
    }

    /// One record of the caller's tenant (and organisation), with its responses, or nil.
    static func find(_ id: UUID, on tx: TenantTransaction, includeFreeText: Bool) async throws -> FeedbackRecord? {
        guard var record = try await FeedbackRecord.table.find(id, on: tx, includeFreeText: includeFreeText) else { return nil }
        record.responses = try await responses(of: [id], on: tx)[id] ?? []
        return record
    }

    /// Fills in the scored responses of `records`, in one query.
    /// (The transaction's last statement: it commits with it.)
    static func completeResponses(_ records: inout [FeedbackRecord], on tx: TenantTransaction) async throws {
        guard !records.isEmpty else { return }
        let responses = try responses(in: try await tx.queryAndCommit([responsesQuery(of: records.map(\.id), tenant: tx.principal.tenantID)])[0])
        for index in records.indices { records[index].responses = responses[records[index].id] ?? [] }
    }

    static let responsesSelect = """
        SELECT f.id AS feedback_id, m.code, r.score, r.measure_version, v.wording, r.score >= v.agree_from AS agrees
          FROM feedback f
         CROSS JOIN unnest(f.response_measures, f.response_versions, f.response_scores) AS r (measure_id, measure_version, score)
          JOIN measures m ON m.tenant_id = f.tenant_id AND m.id = r.measure_id
          JOIN measure_versions v ON v.tenant_id = f.tenant_id AND v.measure_id = r.measure_id AND v.version = r.measure_version
        """

    /// The scored responses of `ids`, in one query, with the wording each was given against.
    static func responses(of ids: [UUID], on tx: TenantTransaction) async throws -> [UUID: [FeedbackRecord.ScoredResponse]] {
        guard !ids.isEmpty else { return [:] }
        return try responses(in: try await tx.query(responsesQuery(of: ids, tenant: tx.principal.tenantID)))
    }

    static func responsesQuery(of ids: [UUID], tenant: UUID) -> PostgresQuery {
        // One id is compared with `=`: PostgreSQL plans `= ANY($1)` afresh on every call.
        ids.count == 1
            ? "\(unsafeRaw: responsesSelect) WHERE f.tenant_id = \(tenant) AND f.id = \(ids[0]) ORDER BY m.code"
            : """
                \(unsafeRaw: responsesSelect) WHERE f.tenant_id = \(tenant) AND f.id = ANY(\(ids)::uuid[])
                ORDER BY f.id, m.code
                """
    }

    static func responses(in rows: [PostgresRow]) throws -> [UUID: [FeedbackRecord.ScoredResponse]] {
        var responses: [UUID: [FeedbackRecord.ScoredResponse]] = [:]
        for row in rows {
            responses[try row.decode(UUID.self, column: "feedback_id"), default: []].append(FeedbackRecord.ScoredResponse(
                measure: try row.decode(String.self, column: "code"), score: try row.decode(Int.self, column: "score"),
                wording: try row.decode(String.self, column: "wording"), measureVersion: try row.decode(Int.self, column: "measure_version"),
                agrees: try row.decode(Bool.self, column: "agrees")))
        }
        return responses
    }

    /// `GET /v1/feedback/{id}`: the record and its audit row in one unit, one round trip (see
    /// `Table.read`), with the other reads of the same key that come meanwhile (`reads`); its
    /// responses' wording from `versions`, which asks PostgreSQL (a second round trip, no record
    /// data in it) only for a version this instance has not read before.
    static func read(_ id: UUID, in context: AccessContext, includeFreeText: Bool, versions: MeasureVersions,
                     together reads: ReadsTogether<FeedbackRecord>) async throws -> FeedbackRecord? {
        guard var record = try await reads.read(id, in: context, includeFreeText: includeFreeText) else { return nil }
        let tenant = context.principal.tenantID
        if let responses = versions.responses(record.stored, tenant: tenant) {
            record.responses = responses
        } else {
            let missing = versions.unknown(in: record.stored, tenant: tenant)
            let rows = try await context.readTransaction { tx in try await tx.queryAndCommit(MeasureVersions.query(missing, tenant: tenant)) }
            try versions.learn(from: rows, tenant: tenant)
            record.responses = versions.responses(record.stored, tenant: tenant, droppingUnknown: true) ?? []
        }
        return record
    }
}

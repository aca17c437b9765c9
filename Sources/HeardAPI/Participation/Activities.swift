import Foundation
import HTTPServer
import Postgres

/// An activity as Heard answers it: what kind, on what topic, when, and how much influence it
/// gave (`harts_rung`, 1-8; 1-3 are non-participation, recorded honestly). `summary` only for a
/// key with `free_text:read`.
struct ActivityRecord: AnsweredRecord {
    var id = UUID.zero
    var kind = ""
    var topic = ""
    var serviceArea = ""
    var heldOn = CalendarDate(daysSince1970: 0)
    var hartsRung = 5
    var groupId: UUID?
    var summary: String?
    var participantCount = 0
    var organisation: String?
    var version = 1
    var createdAt = Date(timeIntervalSince1970: 0)
    var includesFreeText = false

    var location: String { "/v1/activities/\(id.lowercased)" }
    var rung: HartsRung { HartsRung(rawValue: hartsRung) ?? .consultedAndInformed }
    var hartsRungName: String { rung.code }
    var isParticipation: Bool { rung.isParticipation }

    static let table = Table<ActivityRecord>("activities a LEFT JOIN organisations o ON o.tenant_id = a.tenant_id AND o.id = a.organisation_id", [
        .column("id", "a.id", \.id), .column("kind", "a.kind", \.kind), .column("topic", "a.topic", \.topic),
        .column("service_area", "a.service_area", \.serviceArea), .column("held_on", "a.held_on", \.heldOn),
        .column("harts_rung", "a.harts_rung", \.hartsRung), .computed("harts_rung_name", \.hartsRungName),
        .computed("participation", \.isParticipation), .column("group_id", "a.group_id", \.groupId),
        .freeText("summary", "a.summary", \.summary),
        .column("participant_count", "(SELECT count(*)::int FROM activity_participants ap WHERE ap.tenant_id = a.tenant_id AND ap.activity_id = a.id)",
                \.participantCount),
        .column("organisation", "o.slug", \.organisation), .column("version", "a.version", \.version),
        .column("created_at", "a.created_at", \.createdAt),
    ])
}

extension ActivityRecord {
    /// The caller's activities among `ids`, by id: for an area that links to activities.
    static func find(_ ids: [UUID], on tx: TenantTransaction) async throws -> [UUID: ActivityRecord] {
        guard !ids.isEmpty else { return [:] }
        let rows = try await tx.query("""
            \(unsafeRaw: table.select(includeFreeText: false)) WHERE a.tenant_id = \(tx.principal.tenantID) AND a.id = ANY(\(ids)::uuid[])
            """)
        return try Dictionary(rows.map { row in let activity = try table.decode(row, includeFreeText: false); return (activity.id, activity) },
                              uniquingKeysWith: { first, _ in first })
    }

    /// The participants who took part in the activity.
    func participantIDs(on tx: TenantTransaction) async throws -> Set<UUID> {
        Set(try await tx.query("""
            SELECT participant_id FROM activity_participants WHERE tenant_id = \(tx.principal.tenantID) AND activity_id = \(id)
            """).map { try $0.decode(UUID.self, column: "participant_id") })
    }
}

/// A warning that adding a participant may be asking too much of them (seeds 000 and 003):
/// never an error.
struct FatigueWarning: Encodable, Sendable {
    enum Code: String, Encodable, Sendable {
        case sameTopicRecently = "same_topic_recently", tooManyRecently = "too_many_recently"
    }

    var participantId: UUID
    var code: Code
    var message: String

    enum CodingKeys: String, CodingKey {
        case participantId = "participant_id", code, message
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(participantId.lowercased, forKey: .participantId)
        try container.encode(code, forKey: .code)
        try container.encode(message, forKey: .message)
    }
}

/// What `POST /v1/activities/{id}/participants` answers.
struct ParticipantsJoined: Encodable, Sendable {
    var activityId: UUID
    var added: [UUID]
    var alreadyJoined: [UUID]
    var warnings: [FatigueWarning]

    enum CodingKeys: String, CodingKey {
        case activityId = "activity_id", added, alreadyJoined = "already_joined", warnings
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(activityId.lowercased, forKey: .activityId)
        try container.encode(added.map(\.lowercased), forKey: .added)
        try container.encode(alreadyJoined.map(\.lowercased), forKey: .alreadyJoined)
        try container.encode(warnings, forKey: .warnings)
    }
}

/// `/v1/activities`: involvement work and who took part.
struct ActivityRoutes {
    let access: AccessControl

    static let notFound = HTTPError(.notFound, detail: "There is no activity with this id.")
    static let maxParticipants = 500
    static let maxSummaryLength = 8000
    /// The window of the "too many" rule, in days before the activity's day.
    static let recentDays = 30

    func add(to router: inout RouterBuilder) {
        router.post("/v1/activities", access.secure(.involvementWrite, resource: .activity, Idempotency.wrap(Self.create)))
        router.get("/v1/activities", access.secure(.involvementRead, resource: .activity, Self.list.respond))
        router.get("/v1/activities/{id}", ActivityRecord.readByID(access, .involvementRead, resource: .activity, notFound: Self.notFound))
        router.post("/v1/activities/{id}/participants", access.secure(.involvementWrite, resource: .activity, Self.join))
        router.get("/v1/activities/{id}/participants", access.secure(.involvementRead, resource: .participant, Self.participants.respond))
    }

    static let list = ListEndpoint<ActivityRecord, Void>(
        resource: .activity,
        filters: [
            .vocabulary("kind", ActivityKind.self, "a.kind"), .text("topic", "a.topic", maxLength: 63),
            .vocabulary("service_area", ServiceArea.self, "a.service_area"),
            .integer("harts_rung", "a.harts_rung", in: 1...8),
            .uuid("group", "a.group_id"),
        ],
        days: DayRange(column: "a.held_on", zone: .date),
        order: ListOrder(descending: [("a.seq", .bigint)]),
        csvFilename: "activities.csv")

    /// The participants who took part in an activity.
    static let participants = ParticipantRoutes.list.below(ListParent(table: "activities", notFound: notFound) { activity in
        """
        EXISTS (SELECT 1 FROM activity_participants ap
                 WHERE ap.tenant_id = p.tenant_id AND ap.activity_id = \(activity) AND ap.participant_id = p.id)
        """
    })

    static func create(_ request: Request, _ context: AccessContext) async throws -> Response {
        var fields = try FieldReader(body: request.body)
        let kind = fields.vocabulary("kind", ActivityKind.self)
        let topic = fields.string("topic", maxLength: 63)
        if let topic, !isTopicCode(topic) {
            fields.reject("topic", "must be a code: a lower-case letter, then 1 to 62 lower-case letters, digits or underscores")
        }
        let serviceArea = fields.vocabulary("service_area", ServiceArea.self)
        let heldOn = fields.date("held_on")
        let rung = fields.integer("harts_rung", in: 1...8)
        let group = fields.uuid("group_id", required: false)
        let summary = fields.optionalString("summary", maxLength: maxSummaryLength)
        let principal = context.principal
        let record = try await context.transaction { tx -> ActivityRecord in
            if let group, try await tx.query("SELECT 1 FROM participant_groups WHERE tenant_id = \(principal.tenantID) AND id = \(group)").isEmpty {
                fields.reject("group_id", "is not a group of this tenant")
            }
            try fields.finish()
            guard let kind, let topic, let serviceArea, let heldOn, let rung else {
                throw HTTPError.validation([FieldError(field: "(body)", message: "is incomplete")])
            }
            let id = try await insert(kind: kind, topic: topic, serviceArea: serviceArea, heldOn: heldOn, rung: rung, group: group,
                                      summary: summary, organisationID: principal.organisationID, on: tx)
            guard let record = try await ActivityRecord.table.find(id, on: tx, includeFreeText: principal.has(.freeTextRead)) else {
                throw notFound
            }
            return record
        }
        return record.response(status: .created)
    }

    /// Records an activity of the caller's tenant, audited; its id. Other areas whose records
    /// are activities (a recruitment panel) record them here, so every figure counts them.
    static func insert(kind: ActivityKind, topic: String, serviceArea: ServiceArea, heldOn: CalendarDate, rung: Int, group: UUID? = nil,
                       summary: String? = nil, organisationID: UUID?, on tx: TenantTransaction) async throws -> UUID {
        let principal = tx.principal
        let rows = try await tx.query("""
            INSERT INTO activities (tenant_id, organisation_id, kind, topic, service_area, held_on, harts_rung, group_id, summary, created_by)
            VALUES (\(principal.tenantID), \(organisationID), \(kind.rawValue), \(topic), \(serviceArea.rawValue), \(heldOn),
                    \(rung), \(group), \(summary), \(principal.keyID))
            RETURNING id
            """)
        guard let id = try rows.first?.decode(UUID.self, column: "id") else { throw notFound }
        tx.audit(.create, .activity, id: id.lowercased)
        return id
    }

    /// Moves an activity recorded through `insert` to another day, service area or rung.
    static func reschedule(_ id: UUID, heldOn: CalendarDate, serviceArea: ServiceArea, rung: Int, on tx: TenantTransaction) async throws {
        let changed = try await tx.execute("""
            UPDATE activities SET held_on = \(heldOn), service_area = \(serviceArea.rawValue), harts_rung = \(rung), version = version + 1
             WHERE tenant_id = \(tx.principal.tenantID) AND id = \(id)
               AND (held_on, service_area, harts_rung) IS DISTINCT FROM (\(heldOn), \(serviceArea.rawValue), \(rung))
            """)
        if changed > 0 { tx.audit(.update, .activity, id: id.lowercased) }
    }

    /// Makes `ids` exactly who took part in `activity` (an activity another area records, whose
    /// own rules chose them): those missing join, those not named leave. The fatigue warnings
    /// for all of them, as joining would give.
    static func setParticipants(_ ids: [UUID], of activity: UUID, on tx: TenantTransaction) async throws -> [FatigueWarning] {
        guard let record = try await ActivityRecord.table.find(activity, on: tx) else { throw notFound }
        let left = try await tx.execute("""
            DELETE FROM activity_participants
             WHERE tenant_id = \(tx.principal.tenantID) AND activity_id = \(activity) AND NOT participant_id = ANY(\(ids)::uuid[])
            """)
        let added = try await addParticipants(ids, to: activity, on: tx)
        if left > 0 || !added.isEmpty { tx.audit(.update, .activity, id: activity.lowercased) }
        return try await fatigueWarnings(ids, joining: record, on: tx)
    }

    /// Adds `ids` to `activity` (those already in it stay as they are); the ids added.
    private static func addParticipants(_ ids: [UUID], to activity: UUID, on tx: TenantTransaction) async throws -> [UUID] {
        try await tx.query("""
            INSERT INTO activity_participants (tenant_id, organisation_id, activity_id, participant_id, added_by)
            SELECT a.tenant_id, a.organisation_id, a.id, i.id, \(tx.principal.keyID)
              FROM activities a CROSS JOIN unnest(\(ids)::uuid[]) AS i (id)
             WHERE a.tenant_id = \(tx.principal.tenantID) AND a.id = \(activity)
             ORDER BY i.id
            ON CONFLICT (tenant_id, activity_id, participant_id) DO NOTHING
            RETURNING participant_id
            """).map { try $0.decode(UUID.self, column: "participant_id") }
    }

    static func isTopicCode(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard (2...63).contains(bytes.count), let first = bytes.first, (97...122).contains(first) else { return false }
        return bytes.allSatisfy { (97...122).contains($0) || (48...57).contains($0) || $0 == 95 }
    }

    /// `POST /v1/activities/{id}/participants` with `{"participants": [ids]}`, all or none: each
    /// must be the caller's, active, and hold consent for `involvement` in force on the
    /// activity's day, else a 422 naming `participants[i]` and why. 201 when any joined, 200
    /// when all had already; with consultation fatigue `warnings`, never an error.
    static func join(_ request: Request, _ context: AccessContext) async throws -> Response {
        guard let activityID = UUID(uuidString: request.parameter("id")) else { throw notFound }
        var fields = try FieldReader(body: request.body)
        let ids = fields.uuidList("participants", maxCount: maxParticipants)
        try fields.finish()
        guard let ids else { throw HTTPError.validation([FieldError(field: "participants", message: "is required")]) }
        let principal = context.principal
        let tenant = principal.tenantID
        let answer = try await context.transaction { tx -> ParticipantsJoined in
            guard let activity = try await ActivityRecord.table.find(activityID, on: tx) else { throw notFound }
            let consented = ParticipationRules.consentInForce(tenant: "\(tenant)", participant: "i.id", purpose: .involvement, on: "\(activity.heldOn)::date")
            let rows = try await tx.query("""
                SELECT i.n, p.id IS NOT NULL AS found, coalesce(p.active, false) AS active, \(consented) AS consented,
                       EXISTS (SELECT 1 FROM activity_participants ap
                                WHERE ap.tenant_id = \(tenant) AND ap.activity_id = \(activityID) AND ap.participant_id = i.id) AS joined
                  FROM unnest(\(ids)::uuid[]) WITH ORDINALITY AS i (id, n)
                  LEFT JOIN participants p ON p.tenant_id = \(tenant) AND p.id = i.id
                 ORDER BY i.n
                """)
            var errors: [FieldError] = []
            var alreadyJoined: [UUID] = []
            for row in rows {
                let index = try row.decode(Int.self, column: "n") - 1
                let field = "participants[\(index)]"
                if try !row.decode(Bool.self, column: "found") {
                    errors.append(FieldError(field: field, message: "is not a participant of this tenant"))
                } else if try !row.decode(Bool.self, column: "active") {
                    errors.append(FieldError(field: field, message: "is not active"))
                } else if try !row.decode(Bool.self, column: "consented") {
                    errors.append(FieldError(field: field, message: "holds no consent for involvement in force on \(activity.heldOn), the activity's day"))
                } else if try row.decode(Bool.self, column: "joined") {
                    alreadyJoined.append(ids[index])
                }
            }
            guard errors.isEmpty else { throw HTTPError.validation(errors) }
            let added = try await addParticipants(ids, to: activityID, on: tx)
            let warnings = try await fatigueWarnings(ids, joining: activity, on: tx)
            if !added.isEmpty { tx.audit(.update, .activity, id: activityID.lowercased) }
            let addedSet = Set(added)
            return ParticipantsJoined(activityId: activityID, added: ids.filter(addedSet.contains),
                                      alreadyJoined: alreadyJoined.filter { !addedSet.contains($0) }, warnings: warnings)
        }
        return Response.json(answer, status: answer.added.isEmpty ? .ok : .created)
    }

    /// Consultation fatigue: a participant who took part in an activity on the same topic in the
    /// tenant's `fatigue_topic_days` before the activity's day, or in more than
    /// `fatigue_max_per_30_days` activities in the 30 days before it (its own day not counted).
    static func fatigueWarnings(_ ids: [UUID], joining activity: ActivityRecord, on tx: TenantTransaction) async throws -> [FatigueWarning] {
        let settings = try await TenantSettings.current(on: tx)
        let day = activity.heldOn
        let topicFrom = day.adding(days: -settings.fatigueTopicDays), recentFrom = day.adding(days: -recentDays)
        let rows = try await tx.query("""
            SELECT ap.participant_id,
                   count(*) FILTER (WHERE a.topic = \(activity.topic) AND a.held_on >= \(topicFrom))::int AS same_topic,
                   count(*) FILTER (WHERE a.held_on >= \(recentFrom))::int AS recent
              FROM activity_participants ap
              JOIN activities a ON a.tenant_id = ap.tenant_id AND a.id = ap.activity_id
             WHERE ap.tenant_id = \(tx.principal.tenantID) AND ap.participant_id = ANY(\(ids)::uuid[]) AND a.id <> \(activity.id)
               AND a.held_on >= \(min(topicFrom, recentFrom)) AND a.held_on < \(day)
             GROUP BY ap.participant_id
            """)
        var found: [UUID: (sameTopic: Int, recent: Int)] = [:]
        for row in rows {
            found[try row.decode(UUID.self, column: "participant_id")] = (try row.decode(Int.self, column: "same_topic"), try row.decode(Int.self, column: "recent"))
        }
        var warnings: [FatigueWarning] = []
        for id in ids {
            guard let counts = found[id] else { continue }
            if counts.sameTopic > 0 {
                warnings.append(FatigueWarning(participantId: id, code: .sameTopicRecently, message: """
                    took part in \(counts.sameTopic) activit\(counts.sameTopic == 1 ? "y" : "ies") on \(activity.topic) in the \(settings.fatigueTopicDays) days before \(day)
                    """))
            }
            if counts.recent > settings.fatigueMaxPer30Days {
                warnings.append(FatigueWarning(participantId: id, code: .tooManyRecently, message: """
                    took part in \(counts.recent) activities in the \(recentDays) days before \(day), more than \(settings.fatigueMaxPer30Days)
                    """))
            }
        }
        return warnings
    }
}

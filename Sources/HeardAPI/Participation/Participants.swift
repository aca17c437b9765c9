import Foundation
import HTTPServer
import Postgres

/// A participant as sent: the pseudonymous reference from the council's systems (never a name),
/// the age band, optional equality data, free-text notes and whether they take part now.
struct NewParticipant: Sendable {
    var ref: String
    var ageBand: AgeBand
    var equality: NewFeedback.Equality?
    var notes: String?
    var active: Bool
    private(set) var contentHash = ""

    static let maxNotesLength = 4000

    static func parse(_ fields: inout FieldReader) throws(HTTPError) -> NewParticipant {
        let ref = fields.string("ref", maxLength: 100)
        let ageBand = fields.vocabulary("age_band", AgeBand.self)
        let equality = NewFeedback.Equality.read(&fields)
        let notes = fields.optionalString("notes", maxLength: maxNotesLength)
        let active = fields.bool("active", required: false) ?? true
        try fields.finish()
        guard let ref, let ageBand else { throw HTTPError.validation([FieldError(field: "(body)", message: "is incomplete")]) }
        var participant = NewParticipant(ref: ref, ageBand: ageBand, equality: equality?.nonEmpty, notes: notes, active: active)
        var canonical = ContentHash()
        for part in [ref, ageBand.rawValue, participant.equality?.gender?.rawValue, participant.equality?.ethnicity?.rawValue,
                     participant.equality?.disability?.rawValue, notes, String(active)] {
            canonical.add(part)
        }
        participant.contentHash = canonical.hexDigest
        return participant
    }
}

/// A participant as Heard answers it. `notes` only for a key with `free_text:read`.
struct ParticipantRecord: AnsweredRecord {
    struct Equality: StoredRecord {
        var gender: String?
        var ethnicity: String?
        var disability: String?

        static let table = Table<Equality>("participants p", [
            .column("gender", "p.gender", \.gender), .column("ethnicity", "p.ethnicity", \.ethnicity),
            .column("disability", "p.disability", \.disability),
        ])
    }

    var id = UUID.zero
    var ref = ""
    var ageBand = ""
    var equality: Equality?
    var notes: String?
    var active = true
    var organisation: String?
    var version = 1
    var createdAt = Date(timeIntervalSince1970: 0)
    var updatedAt = Date(timeIntervalSince1970: 0)
    var contentHash = ""
    var includesFreeText = false

    var location: String { "/v1/participants/\(id.lowercased)" }

    static let table = Table<ParticipantRecord>("participants p LEFT JOIN organisations o ON o.tenant_id = p.tenant_id AND o.id = p.organisation_id", [
        .column("id", "p.id", \.id), .column("ref", "p.ref", \.ref), .column("age_band", "p.age_band", \.ageBand),
        .nested("equality", \.equality), .freeText("notes", "p.notes", \.notes), .column("active", "p.active", \.active),
        .column("organisation", "o.slug", \.organisation), .column("version", "p.version", \.version),
        .column("created_at", "p.created_at", \.createdAt), .column("updated_at", "p.updated_at", \.updatedAt),
        .column("content_hash", "p.content_hash", \.contentHash, hidden: true),
    ])

    /// The correctable fields as a sender would send them.
    var inputMembers: [(key: String, value: JSONValue)] {
        func text(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
        return [
            ("ref", .string(ref)), ("age_band", .string(ageBand)),
            ("equality", equality.map { .object([("gender", text($0.gender)), ("ethnicity", text($0.ethnicity)), ("disability", text($0.disability))]) } ?? .null),
            ("notes", text(notes)), ("active", .bool(active)),
        ]
    }
}

/// `/v1/participants`: who takes part in involvement work. `ref` is the natural key within the
/// tenant: the same content again answers 200 with the record, different content 409 naming it.
struct ParticipantRoutes {
    let access: AccessControl

    static let notFound = HTTPError(.notFound, detail: "There is no participant with this id.")

    func add(to router: inout RouterBuilder) {
        router.post("/v1/participants", access.secure(.involvementWrite, resource: .participant, Idempotency.wrap(Self.create)))
        router.get("/v1/participants", access.secure(.involvementRead, resource: .participant, Self.list.respond))
        router.get("/v1/participants/{id}", ParticipantRecord.readByID(access, .involvementRead, resource: .participant, notFound: Self.notFound))
        router.patch("/v1/participants/{id}", access.secure(.involvementWrite, resource: .participant, Self.correct))
    }

    static func create(_ request: Request, _ context: AccessContext) async throws -> Response {
        var fields = try FieldReader(body: request.body)
        let participant = try NewParticipant.parse(&fields)
        let principal = context.principal
        let includeFreeText = principal.has(.freeTextRead)
        let created = try await context.transaction { tx -> ParticipantRecord? in
            let rows = try await tx.query("""
                INSERT INTO participants (tenant_id, organisation_id, ref, age_band, gender, ethnicity, disability, notes, active,
                                          content_hash, created_by)
                VALUES (\(principal.tenantID), \(principal.organisationID), \(participant.ref), \(participant.ageBand.rawValue),
                        \(participant.equality?.gender?.rawValue), \(participant.equality?.ethnicity?.rawValue),
                        \(participant.equality?.disability?.rawValue), \(participant.notes), \(participant.active),
                        \(participant.contentHash), \(principal.keyID))
                ON CONFLICT (tenant_id, ref) DO NOTHING
                RETURNING id
                """)
            guard let id = try rows.first?.decode(UUID.self, column: "id") else { return nil }
            tx.audit(.create, .participant, id: id.lowercased)
            return try await ParticipantRecord.table.find(id, on: tx, includeFreeText: includeFreeText)
        }
        if let created { return created.response(status: .created) }

        // The ref is taken: a retry (the same content: 200 with the record) or a conflict.
        let record = try await NaturalKey.settle(context, .participant, noun: "participant", key: "ref") { tx -> NaturalKey.Holder<ParticipantRecord>? in
            guard let row = try await tx.query("""
                    SELECT id FROM participants WHERE tenant_id = \(principal.tenantID) AND ref = \(participant.ref)
                    """).first,
                  let record = try await ParticipantRecord.table.find(try row.decode(UUID.self, column: "id"), on: tx, includeFreeText: includeFreeText)
            else { return nil }
            return NaturalKey.Holder(record, id: record.id, sameContent: record.contentHash == participant.contentHash)
        }
        return record.response(status: .ok)
    }

    /// `PATCH /v1/participants/{id}`: the fields that change (JSON merge patch), with `If-Match`;
    /// validated whole, each change kept in `participant_history` (the notes' text never).
    static func correct(_ request: Request, _ context: AccessContext) async throws -> Response {
        guard let id = UUID(uuidString: request.parameter("id")) else { throw notFound }
        let ifMatch = try IfMatch.required(request)
        guard case .object(let patch) = try JSONValue.parse(request.body) else {
            throw HTTPError.validation([FieldError(field: "(body)", message: "must be a JSON object of the fields to correct")])
        }
        let refused = patch.compactMap { member -> FieldError? in
            switch member.key {
            case "equality", "notes": nil
            case "age_band", "active": member.value == .null ? FieldError(field: member.key, message: "cannot be cleared") : nil
            case "ref": FieldError(field: member.key, message: "cannot be corrected: it identifies the participant")
            default: FieldError(field: member.key, message: "is not a field that can be corrected")
            }
        }
        guard refused.isEmpty else { throw HTTPError.validation(refused) }
        let principal = context.principal
        let record = try await context.transaction { tx -> ParticipantRecord in
            guard let current = try await ParticipantRecord.table.find(id, on: tx, includeFreeText: true) else { throw notFound }
            var merged = current.inputMembers
            for member in patch {
                if let index = merged.firstIndex(where: { $0.key == member.key }) { merged[index].value = member.value }
            }
            var fields = FieldReader(members: merged, prefix: "")
            let corrected = try NewParticipant.parse(&fields)
            try ifMatch.check(current: current.etag)
            let before = Dictionary(uniqueKeysWithValues: current.inputMembers.map { ($0.key, $0.value) })
            let changes = patch.filter { before[$0.key] ?? .null != $0.value }
            guard !changes.isEmpty else { return current }
            let updated = try await tx.execute("""
                UPDATE participants
                   SET age_band = \(corrected.ageBand.rawValue), gender = \(corrected.equality?.gender?.rawValue),
                       ethnicity = \(corrected.equality?.ethnicity?.rawValue), disability = \(corrected.equality?.disability?.rawValue),
                       notes = \(corrected.notes), active = \(corrected.active), content_hash = \(corrected.contentHash),
                       version = version + 1, updated_at = now()
                 WHERE tenant_id = \(principal.tenantID) AND id = \(id) AND version = \(current.version)
                """)
            guard updated == 1 else { throw IfMatch.changedMeanwhile }
            // Free text stays out of history: that the notes changed is kept, not what they say.
            let history = JSONValue.object(changes.map { change in
                change.key == "notes" ? (change.key, .object([("changed", .bool(true))]))
                    : (change.key, .object([("from", before[change.key] ?? .null), ("to", change.value)]))
            })
            try await tx.execute("""
                INSERT INTO participant_history (tenant_id, organisation_id, participant_id, version, key_id, request_id, changes)
                SELECT tenant_id, organisation_id, id, version, \(principal.keyID), \(request.requestID), \(history.serialized)::jsonb
                  FROM participants WHERE tenant_id = \(principal.tenantID) AND id = \(id)
                """)
            tx.audit(.update, .participant, id: id.lowercased)
            guard let record = try await ParticipantRecord.table.find(id, on: tx, includeFreeText: true) else { throw notFound }
            return record
        }
        var answer = record
        if !principal.has(.freeTextRead) {
            answer.notes = nil
            answer.includesFreeText = false
        }
        return answer.response(status: .ok)
    }

    /// `GET /v1/participants`: newest recorded first, filtered; `trained_for`, `consent_for` and
    /// `group` are judged on `as_of` (default today in England).
    static let list = ListEndpoint<ParticipantRecord, Void>(
        resource: .participant,
        filters: [
            .vocabulary("age_band", AgeBand.self, "p.age_band"), .bool("active", "p.active"),
            .onDay("group", read: { $0.uuid($1) }) { group, day in
                """
                EXISTS (SELECT 1 FROM group_memberships m
                         WHERE m.tenant_id = p.tenant_id AND m.participant_id = p.id AND m.group_id = \(group)
                           AND m.joined_on <= \(day) AND (m.left_on IS NULL OR m.left_on > \(day)))
                """
            },
            .onDay("trained_for", read: { $0.vocabulary($1, TrainingCourse.self) }) { course, day in
                ParticipationRules.trainedFor(tenant: "p.tenant_id", participant: "p.id", course: course, on: "\(day)")
            },
            .onDay("consent_for", read: { $0.vocabulary($1, ConsentPurpose.self) }) { purpose, day in
                ParticipationRules.consentInForce(tenant: "p.tenant_id", participant: "p.id", purpose: purpose, on: "\(day)")
            },
        ],
        order: ListOrder(descending: [("p.seq", .bigint)]),
        csvFilename: "participants.csv")
}

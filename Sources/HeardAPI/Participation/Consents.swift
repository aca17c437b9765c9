import Foundation
import HTTPServer
import Postgres

/// Consent as Heard answers it: in force from `given_on` up to, not including, `withdrawn_on`.
struct ConsentRecord: AnsweredRecord {
    var id = UUID.zero
    var participantId = UUID.zero
    var givenBy = ""
    var givenOn = CalendarDate(daysSince1970: 0)
    var purposes: [String] = []
    var status = ""
    var withdrawnOn: CalendarDate?
    var version = 1
    var createdAt = Date(timeIntervalSince1970: 0)
    var allowedActions: [String] = []

    var location: String { "/v1/participants/\(participantId.lowercased)/consents/\(id.lowercased)" }

    static let table = Table<ConsentRecord>("consents c", [
        .column("id", "c.id", \.id), .column("participant_id", "c.participant_id", \.participantId),
        .column("given_by", "c.given_by", \.givenBy), .column("given_on", "c.given_on", \.givenOn),
        .column("purposes", "c.purposes", \.purposes), .column("status", "c.status", \.status),
        .column("withdrawn_on", "c.withdrawn_on", \.withdrawnOn), .column("version", "c.version", \.version),
        .column("created_at", "c.created_at", \.createdAt), .computed("allowed_actions", \.allowedActions),
    ])

    /// Given, then withdrawn on a day: a dated change, kept in the lifecycle history, never a delete.
    static let lifecycle = Lifecycle<ConsentStatus, ConsentAction>(resource: .consent, table: "consents", [
        .init(.given, .withdraw, .withdrawn, fields: [.date("on", column: "withdrawn_on")]),
    ])

    mutating func judge() {
        allowedActions = Self.lifecycle.allowedActions(in: ConsentStatus(rawValue: status) ?? .given).map(\.rawValue)
    }
}

enum ConsentStatus: String, CaseIterable, Sendable {
    case given, withdrawn
}

enum ConsentAction: String, CaseIterable, Sendable {
    case withdraw
}

/// `/v1/participants/{id}/consents`: who consented, from when, for what; withdrawn by a dated
/// change. A participant under 13, or of unknown age, needs consent from a parent, carer or
/// person with parental responsibility: `self` is refused.
struct ConsentRoutes {
    let access: AccessControl

    static let notFound = HTTPError(.notFound, detail: "There is no consent with this id for this participant.")

    func add(to router: inout RouterBuilder) {
        router.post("/v1/participants/{id}/consents", access.secure(.involvementWrite, resource: .consent, Idempotency.wrap(Self.create)))
        router.get("/v1/participants/{id}/consents", access.secure(.involvementRead, resource: .consent, Self.list.respond))
        router.get("/v1/participants/{id}/consents/{consent_id}", access.secure(.involvementRead, resource: .consent) { request, context in
            let (participant, id) = try Self.ids(request)
            return try await ConsentRecord.read(request, context, resource: .consent, notFound: Self.notFound) { tx, _ in
                try await Self.find(id, of: participant, on: tx)
            }
        })
        router.post("/v1/participants/{id}/consents/{consent_id}/withdraw", access.secure(.involvementWrite, resource: .consent, Self.withdraw))
    }

    static let list = ListEndpoint<ConsentRecord, Void>(
        resource: .consent,
        filters: [.custom("purpose", read: { $0.vocabulary($1, ConsentPurpose.self) }) { purpose, _ in "\(purpose.rawValue)::text = ANY(c.purposes)" }],
        order: ListOrder(ascending: [("c.created_at", .timestamptz), ("c.id", .uuid)])
    ).below(ListParent(table: "participants", column: "c.participant_id", notFound: ParticipantRoutes.notFound))
    .completing { records, _, _ in
        for index in records.indices { records[index].judge() }
    }

    static func ids(_ request: Request) throws(HTTPError) -> (participant: UUID, consent: UUID) {
        guard let participant = UUID(uuidString: request.parameter("id")), let consent = UUID(uuidString: request.parameter("consent_id")) else {
            throw notFound
        }
        return (participant, consent)
    }

    static func find(_ id: UUID, of participant: UUID, on tx: TenantTransaction) async throws -> ConsentRecord? {
        guard var record = try await ConsentRecord.table.find(id, on: tx), record.participantId == participant else { return nil }
        record.judge()
        return record
    }

    static func create(_ request: Request, _ context: AccessContext) async throws -> Response {
        guard let participant = UUID(uuidString: request.parameter("id")) else { throw ParticipantRoutes.notFound }
        var fields = try FieldReader(body: request.body)
        let givenBy = fields.vocabulary("given_by", ConsentGiver.self)
        let givenOn = fields.date("given_on")
        let purposes = fields.vocabularyList("purposes", ConsentPurpose.self)
        if purposes?.isEmpty == true { fields.reject("purposes", "must name at least one purpose") }
        try fields.finish()
        guard let givenBy, let givenOn, let purposes else { throw HTTPError.validation([FieldError(field: "(body)", message: "is incomplete")]) }

        let principal = context.principal
        let record = try await context.transaction { tx -> ConsentRecord in
            guard let row = try await tx.query("""
                SELECT age_band FROM participants WHERE tenant_id = \(principal.tenantID) AND id = \(participant)
                """).first else { throw ParticipantRoutes.notFound }
            let ageBand = AgeBand(rawValue: try row.decode(String.self, column: "age_band")) ?? .unknown
            if givenBy == .self && ageBand.needsAdultConsent {
                throw HTTPError.validation([FieldError(
                    field: "given_by",
                    message: "must be parent_carer or person_with_parental_responsibility: the participant's age band is \(ageBand.rawValue), and a child under 13 (or of unknown age) cannot consent for themselves")])
            }
            let rows = try await tx.query("""
                INSERT INTO consents (tenant_id, organisation_id, participant_id, given_by, given_on, purposes, created_by)
                SELECT tenant_id, organisation_id, id, \(givenBy.rawValue), \(givenOn), \(purposes.map(\.rawValue)), \(principal.keyID)
                  FROM participants WHERE tenant_id = \(principal.tenantID) AND id = \(participant)
                RETURNING id
                """)
            guard let id = try rows.first?.decode(UUID.self, column: "id"), let record = try await find(id, of: participant, on: tx) else {
                throw ParticipantRoutes.notFound
            }
            tx.audit(.create, .consent, id: id.lowercased)
            return record
        }
        return record.response(status: .created)
    }

    /// `POST .../withdraw` with `on`: consent stops being in force from that day (which may not
    /// be before it was given). `If-Match` is honoured when sent.
    static func withdraw(_ request: Request, _ context: AccessContext) async throws -> Response {
        let (participant, id) = try ids(request)
        let ifMatch = IfMatch(request)
        var body = try FieldReader(body: request.body)
        let fields = ConsentRecord.lifecycle.fields(of: .withdraw, from: &body)
        try body.finish()
        let record = try await context.transaction { tx -> ConsentRecord in
            guard let current = try await find(id, of: participant, on: tx) else { throw notFound }
            let transition = try ConsentRecord.lifecycle.transition(.withdraw, from: ConsentStatus(rawValue: current.status) ?? .given)
            if let on = fields["on"].flatMap(CalendarDate.init), on < current.givenOn {
                throw HTTPError.validation([FieldError(field: "on", message: "must not be before the consent was given (\(current.givenOn))")])
            }
            try ifMatch?.check(current: current.etag)
            guard try await ConsentRecord.lifecycle.apply(transition, to: id, version: current.version, fields: fields, on: tx) != nil else {
                throw IfMatch.changedMeanwhile
            }
            tx.audit(.update, .consent, id: id.lowercased)
            guard let record = try await find(id, of: participant, on: tx) else { throw notFound }
            return record
        }
        return record.response(status: .ok)
    }
}

import Foundation
import HTTPServer
import Postgres

/// A time young people were told what became of what they said: on which day, how, and which
/// groups and participants were told (ids of the tenant's). `note` is free text.
struct YouSaidFeedbackGiven: StoredRecord {
    var id = UUID.zero
    var itemId = UUID.zero
    var on = CalendarDate(daysSince1970: 0)
    var how = ""
    var groups: [String] = []
    var participants: [String] = []
    var note: String?
    var keyId = UUID.zero
    var recordedAt = Date(timeIntervalSince1970: 0)
    var includesFreeText = false

    /// Where the item's list of them is (each is recorded once, never changed).
    var location: String { "/v1/you-said/\(itemId.lowercased)/feedback-given" }

    static let table = Table<YouSaidFeedbackGiven>("you_said_feedback_given g", [
        .column("id", "g.id", \.id), .column("item_id", "g.item_id", \.itemId), .column("on", "g.given_on", \.on),
        .column("how", "g.how", \.how), .column("groups", "g.group_ids::text[]", \.groups),
        .column("participants", "g.participant_ids::text[]", \.participants), .freeText("note", "g.note", \.note),
        .column("key_id", "g.key_id", \.keyId), .column("recorded_at", "g.recorded_at", \.recordedAt),
    ])

    static let maxTold = 500
}

/// `POST /v1/you-said/{id}/feedback-given` (the item is no longer due feedback until its answer
/// changes again) and `GET` of every time it was given, oldest first.
struct YouSaidFeedbackGivenRoutes {
    let access: AccessControl

    func add(to router: inout RouterBuilder) {
        router.get("/v1/you-said/{id}/feedback-given", access.secure(.involvementRead, resource: .youSaidFeedbackGiven, Self.list.respond))
        router.post("/v1/you-said/{id}/feedback-given",
                    access.secure(.involvementWrite, resource: .youSaidFeedbackGiven, Idempotency.wrap(Self.create)))
    }

    static let list = ListEndpoint<YouSaidFeedbackGiven, Void>(resource: .youSaidFeedbackGiven, order: ListOrder(ascending: [("g.seq", .bigint)]))
        .below(ListParent(table: "you_said_items", column: "g.item_id", notFound: YouSaidRoutes.notFound))

    static func create(_ request: Request, _ context: AccessContext) async throws -> Response {
        guard let itemID = UUID(uuidString: request.parameter("id")) else { throw YouSaidRoutes.notFound }
        var body = try FieldReader(body: request.body)
        let on = body.date("on")
        let how = body.vocabulary("how", FeedbackGivenHow.self)
        let groups = body.uuidList("groups", maxCount: YouSaidFeedbackGiven.maxTold, minCount: 0, required: false, null: false) ?? []
        let participants = body.uuidList("participants", maxCount: YouSaidFeedbackGiven.maxTold, minCount: 0, required: false, null: false) ?? []
        let note = body.optionalString("note", maxLength: YouSaidItem.maxTextLength)
        let principal = context.principal
        let given = try await context.transaction { tx -> YouSaidFeedbackGiven in
            guard try await YouSaidRoutes.exists(itemID, on: tx) else { throw YouSaidRoutes.notFound }
            var errors = try await TenantRecords.errors(groups, in: "participant_groups", field: "groups", noun: "group", on: tx)
            errors += try await TenantRecords.errors(participants, in: "participants", field: "participants", noun: "participant", on: tx)
            for error in errors { body.reject(error.field, error.message) }
            try body.finish()
            guard let on, let how else { throw HTTPError.validation([FieldError(field: "(body)", message: "is incomplete")]) }
            guard let row = try await tx.query("""
                WITH given AS (
                    INSERT INTO you_said_feedback_given (tenant_id, organisation_id, item_id, given_on, how, group_ids, participant_ids, note, key_id)
                    SELECT i.tenant_id, i.organisation_id, i.id, \(on), \(how.rawValue), \(groups)::uuid[], \(participants)::uuid[], \(note),
                           \(principal.keyID)
                      FROM you_said_items i WHERE i.tenant_id = \(principal.tenantID) AND i.id = \(itemID)
                    RETURNING id, recorded_at
                )
                UPDATE you_said_items i SET last_told_at = given.recorded_at, version = i.version + 1
                  FROM given WHERE i.tenant_id = \(principal.tenantID) AND i.id = \(itemID)
                RETURNING given.id
                """).first else { throw YouSaidRoutes.notFound }
            let id = try row.decode(UUID.self, column: "id")
            try await YouSaidTimeline.record(.feedbackGiven, item: itemID, details: [
                ("feedback_given_id", .string(id.lowercased)), ("on", .string(on.description)), ("how", .string(how.rawValue)),
                ("groups", .array(groups.map { .string($0.lowercased) })), ("participants", .number(String(participants.count))),
            ], freeText: note.map { [("note", .string($0))] } ?? [], on: tx)
            tx.audit(.create, .youSaidFeedbackGiven, id: id.lowercased)
            guard let given = try await YouSaidFeedbackGiven.table.find(id, on: tx, includeFreeText: principal.has(.freeTextRead)) else {
                throw YouSaidRoutes.notFound
            }
            return given
        }
        var response = Response.json(given, status: .created)
        response.headers.add(name: "Location", value: given.location)
        return response
    }
}

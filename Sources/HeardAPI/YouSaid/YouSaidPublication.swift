import Foundation
import HTTPServer
import Postgres

/// A round of answers a board published at once: its title, the day, and the items it published.
struct YouSaidRound: AnsweredRecord {
    var id = UUID.zero
    var title = ""
    var publishedOn = CalendarDate(daysSince1970: 0)
    var items: [String] = []
    var keyId = UUID.zero
    var createdAt = Date(timeIntervalSince1970: 0)

    /// A round is never changed.
    var version: Int { 1 }
    var location: String { "/v1/you-said/rounds/\(id.lowercased)" }

    static let table = Table<YouSaidRound>("you_said_rounds r", [
        .column("id", "r.id", \.id), .column("title", "r.title", \.title), .column("published_on", "r.published_on", \.publishedOn),
        .column("items", "r.item_ids::text[]", \.items), .column("key_id", "r.key_id", \.keyId),
        .column("created_at", "r.created_at", \.createdAt),
    ])
}

/// `POST /v1/you-said/publish` (scope admin): a round, all or nothing. Each item is stored as it
/// stands, its public fields only (`you_said_publications`): the public feed shows that until a
/// later round publishes the item again.
struct YouSaidPublication {
    let access: AccessControl

    static let notFound = HTTPError(.notFound, detail: "There is no round with this id.")
    static let maxItems = 500

    func add(to router: inout RouterBuilder) {
        router.post("/v1/you-said/publish", access.secure(.admin, resource: .youSaidRound, Idempotency.wrap(Self.publish)))
        router.get("/v1/you-said/rounds", access.secure(.involvementRead, resource: .youSaidRound, Self.list.respond))
        router.get("/v1/you-said/rounds/{id}", YouSaidRound.readByID(access, .involvementRead, resource: .youSaidRound, notFound: Self.notFound))
    }

    static let list = ListEndpoint<YouSaidRound, Void>(
        resource: .youSaidRound, days: DayRange(column: "r.published_on", zone: .date), order: ListOrder(descending: [("r.seq", .bigint)]))

    static func publish(_ request: Request, _ context: AccessContext) async throws -> Response {
        var body = try FieldReader(body: request.body)
        let title = body.string("title", maxLength: 200)
        let publishedOn = body.date("published_on")
        let items = body.uuidList("items", maxCount: maxItems)
        let round = try await context.transaction { tx -> YouSaidRound in
            let principal = tx.principal
            for index in try await TenantRecords.missing(items ?? [], in: "you_said_items", on: tx) {
                body.reject("items[\(index)]", "is not a \"you said\" item of this council")
            }
            try body.finish()
            guard let title, let publishedOn, let items else { throw HTTPError.validation([FieldError(field: "(body)", message: "is incomplete")]) }
            guard let row = try await tx.query("""
                WITH round AS (
                    INSERT INTO you_said_rounds (tenant_id, organisation_id, title, published_on, item_ids, key_id)
                    VALUES (\(principal.tenantID), \(principal.organisationID), \(title), \(publishedOn), \(items)::uuid[], \(principal.keyID))
                    RETURNING tenant_id, id, seq, title, published_on
                ), published AS (
                    INSERT INTO you_said_publications (tenant_id, round_id, round_seq, item_id, organisation_id, item_version, said, we_did, theme,
                                                       service_area, owner_team, status, progress_percent, reason_not_possible, raised_on,
                                                       target_on, round_title, published_on)
                    SELECT r.tenant_id, r.id, r.seq, i.id, i.organisation_id, i.version, i.said, i.we_did, i.theme, i.service_area, i.owner_team,
                           i.status, i.progress_percent, i.reason_not_possible, i.raised_on, i.target_on, r.title, r.published_on
                      FROM round r JOIN you_said_items i ON i.tenant_id = r.tenant_id AND i.id = ANY(\(items)::uuid[])
                )
                SELECT id FROM round
                """).first else { throw notFound }
            let id = try row.decode(UUID.self, column: "id")
            try await tx.execute("""
                UPDATE you_said_items SET version = version + 1 WHERE tenant_id = \(principal.tenantID) AND id = ANY(\(items)::uuid[])
                """)
            try await YouSaidTimeline.record(.published, items: items, details: [
                ("round_id", .string(id.lowercased)), ("title", .string(title)), ("published_on", .string(publishedOn.description)),
            ], on: tx)
            tx.audit(.create, .youSaidRound, id: id.lowercased)
            guard let round = try await YouSaidRound.table.find(id, on: tx) else { throw notFound }
            return round
        }
        return round.response(status: .created)
    }
}

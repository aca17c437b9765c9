import Foundation
import HTTPServer
import Postgres

/// A step towards a "we did": a title, the day it is due and the day it was done. A milestone
/// done (or undone) changes the answer young people are owed news of.
struct YouSaidMilestone: AnsweredRecord {
    var id = UUID.zero
    var itemId = UUID.zero
    var title = ""
    var dueOn: CalendarDate?
    var doneOn: CalendarDate?
    var version = 1
    var createdAt = Date(timeIntervalSince1970: 0)
    var updatedAt = Date(timeIntervalSince1970: 0)

    var location: String { "/v1/you-said/\(itemId.lowercased)/milestones/\(id.lowercased)" }

    static let table = Table<YouSaidMilestone>("you_said_milestones m", [
        .column("id", "m.id", \.id), .column("item_id", "m.item_id", \.itemId), .column("title", "m.title", \.title),
        .column("due_on", "m.due_on", \.dueOn), .column("done_on", "m.done_on", \.doneOn), .column("version", "m.version", \.version),
        .column("created_at", "m.created_at", \.createdAt), .column("updated_at", "m.updated_at", \.updatedAt),
    ])

    /// The fields of a create (`title` required) or a `PATCH` (only those that change; `null`
    /// clears `due_on` or `done_on`).
    struct Fields {
        var title: String?
        var dueOn: CalendarDate??
        var doneOn: CalendarDate??

        static func read(_ body: [UInt8], creating: Bool) throws(HTTPError) -> Fields {
            var reader = try FieldReader(body: body)
            var fields = Fields()
            if creating || reader.has("title") { fields.title = reader.string("title", maxLength: 200) }
            if reader.has("due_on") { fields.dueOn = .some(reader.date("due_on", required: false)) }
            if reader.has("done_on") { fields.doneOn = .some(reader.date("done_on", required: false)) }
            try reader.finish()
            return fields
        }
    }

    /// What the timeline keeps of it.
    var details: [(String, JSONValue)] {
        [("milestone_id", .string(id.lowercased)), ("title", .string(title)), ("due_on", dueOn.map { .string($0.description) } ?? .null),
         ("done_on", doneOn.map { .string($0.description) } ?? .null)]
    }
}

/// `/v1/you-said/{id}/milestones`: list and add, read and change one with `If-Match`.
struct YouSaidMilestoneRoutes {
    let access: AccessControl

    static let notFound = HTTPError(.notFound, detail: "There is no milestone with this id on this item.")

    func add(to router: inout RouterBuilder) {
        router.get("/v1/you-said/{id}/milestones", access.secure(.involvementRead, resource: .youSaidMilestone, Self.list.respond))
        router.post("/v1/you-said/{id}/milestones", access.secure(.involvementWrite, resource: .youSaidMilestone, Idempotency.wrap(Self.create)))
        router.get("/v1/you-said/{id}/milestones/{milestone_id}", access.secure(.involvementRead, resource: .youSaidMilestone) { request, context in
            let (itemID, id) = try Self.ids(request)
            return try await YouSaidMilestone.read(id, below: ParentKey("item_id", itemID), request, context,
                                                   resource: .youSaidMilestone, notFound: Self.notFound)
        })
        router.patch("/v1/you-said/{id}/milestones/{milestone_id}", access.secure(.involvementWrite, resource: .youSaidMilestone, Self.change))
    }

    static let list = ListEndpoint<YouSaidMilestone, Void>(resource: .youSaidMilestone, order: ListOrder(ascending: [("m.seq", .bigint)]))
        .below(ListParent(table: "you_said_items", column: "m.item_id", notFound: YouSaidRoutes.notFound))

    static func ids(_ request: Request) throws(HTTPError) -> (item: UUID, milestone: UUID) {
        guard let item = UUID(uuidString: request.parameter("id")) else { throw YouSaidRoutes.notFound }
        guard let milestone = UUID(uuidString: request.parameter("milestone_id")) else { throw notFound }
        return (item, milestone)
    }

    /// Marks the item's answer changed (a milestone done or undone) and gives it a new version.
    static func answerChanged(_ item: UUID, on tx: TenantTransaction) async throws {
        try await tx.execute("""
            UPDATE you_said_items SET answer_changed_at = now(), version = version + 1
             WHERE tenant_id = \(tx.principal.tenantID) AND id = \(item)
            """)
    }

    static func create(_ request: Request, _ context: AccessContext) async throws -> Response {
        guard let itemID = UUID(uuidString: request.parameter("id")) else { throw YouSaidRoutes.notFound }
        let fields = try YouSaidMilestone.Fields.read(request.body, creating: true)
        let milestone = try await context.transaction { tx -> YouSaidMilestone in
            let principal = tx.principal
            guard let row = try await tx.query("""
                INSERT INTO you_said_milestones (tenant_id, organisation_id, item_id, title, due_on, done_on)
                SELECT i.tenant_id, i.organisation_id, i.id, \(fields.title), \(fields.dueOn ?? nil), \(fields.doneOn ?? nil)
                  FROM you_said_items i WHERE i.tenant_id = \(principal.tenantID) AND i.id = \(itemID)
                RETURNING id
                """).first else { throw YouSaidRoutes.notFound }
            let id = try row.decode(UUID.self, column: "id")
            guard let milestone = try await YouSaidMilestone.table.find(id, on: tx) else { throw notFound }
            if milestone.doneOn != nil { try await answerChanged(itemID, on: tx) }
            try await YouSaidTimeline.record(.milestoneAdded, item: itemID, details: milestone.details, on: tx)
            tx.audit(.create, .youSaidMilestone, id: id.lowercased)
            return milestone
        }
        return milestone.response(status: .created)
    }

    static func change(_ request: Request, _ context: AccessContext) async throws -> Response {
        let (itemID, id) = try ids(request)
        let ifMatch = IfMatch(request)
        let fields = try YouSaidMilestone.Fields.read(request.body, creating: false)
        let milestone = try await context.transaction { tx -> YouSaidMilestone in
            guard let current = try await YouSaidMilestone.table.find(id, on: tx), current.itemId == itemID else { throw notFound }
            try (ifMatch ?? IfMatch.required(request)).check(current: current.etag)
            var assignments: [SQLFragment] = []
            if let title = fields.title, title != current.title { assignments.append("title = \(title)") }
            if let due = fields.dueOn, due != current.dueOn { assignments.append("due_on = \(due)") }
            if let done = fields.doneOn, done != current.doneOn { assignments.append("done_on = \(done)") }
            guard !assignments.isEmpty else { return current }
            let updated = try await tx.execute("""
                UPDATE you_said_milestones SET version = version + 1, updated_at = now(), \(SQLFragment.joined(assignments, separator: ", "))
                 WHERE tenant_id = \(tx.principal.tenantID) AND id = \(id) AND version = \(current.version)
                """)
            guard updated == 1 else { throw IfMatch.changedMeanwhile }
            guard let changed = try await YouSaidMilestone.table.find(id, on: tx) else { throw notFound }
            if changed.doneOn != current.doneOn { try await answerChanged(itemID, on: tx) }
            try await YouSaidTimeline.record(.milestoneChanged, item: itemID, details: changed.details, on: tx)
            tx.audit(.update, .youSaidMilestone, id: id.lowercased)
            return changed
        }
        return milestone.response(status: .ok)
    }
}

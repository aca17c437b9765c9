import Foundation
import HTTPServer
import Postgres

/// A group: a Children in Care Council, a Care Leavers Forum, a Youth Council...
struct GroupRecord: AnsweredRecord {
    var id = UUID.zero
    var name = ""
    var kind = ""
    var serviceArea: String?
    var organisation: String?
    var version = 1
    var createdAt = Date(timeIntervalSince1970: 0)

    var location: String { "/v1/groups/\(id.lowercased)" }

    static let table = Table<GroupRecord>("participant_groups g LEFT JOIN organisations o ON o.tenant_id = g.tenant_id AND o.id = g.organisation_id", [
        .column("id", "g.id", \.id), .column("name", "g.name", \.name), .column("kind", "g.kind", \.kind),
        .column("service_area", "g.service_area", \.serviceArea), .column("organisation", "o.slug", \.organisation),
        .column("version", "g.version", \.version), .column("created_at", "g.created_at", \.createdAt),
    ])
}

/// A participant's time in a group: joined on a day, left on a later one.
struct MembershipRecord: AnsweredRecord {
    var id = UUID.zero
    var groupId = UUID.zero
    var participantId = UUID.zero
    var joinedOn = CalendarDate(daysSince1970: 0)
    var status = ""
    var leftOn: CalendarDate?
    var version = 1
    var createdAt = Date(timeIntervalSince1970: 0)

    var location: String { "/v1/groups/\(groupId.lowercased)/members/\(id.lowercased)" }
    var state: MembershipStatus { MembershipStatus(rawValue: status) ?? .member }
    var allowedActions: [String] { Self.lifecycle.allowedActions(in: state).map(\.rawValue) }

    static let table = Table<MembershipRecord>("group_memberships m", [
        .column("id", "m.id", \.id), .column("group_id", "m.group_id", \.groupId), .column("participant_id", "m.participant_id", \.participantId),
        .column("joined_on", "m.joined_on", \.joinedOn), .column("status", "m.status", \.status), .column("left_on", "m.left_on", \.leftOn),
        .column("version", "m.version", \.version), .column("created_at", "m.created_at", \.createdAt),
        .computed("allowed_actions", \.allowedActions),
    ])

    /// A member leaves on a day: a dated change, kept in the lifecycle history.
    static let lifecycle = Lifecycle<MembershipStatus, MembershipAction>(resource: .groupMembership, table: "group_memberships", [
        .init(.member, .leave, .left, fields: [.date("on", column: "left_on")]),
    ])
}

enum MembershipStatus: String, CaseIterable, Sendable {
    case member, left
}

enum MembershipAction: String, CaseIterable, Sendable {
    case leave
}

/// `/v1/groups` and their members; a participant's memberships at `/v1/participants/{id}/groups`.
struct GroupRoutes {
    let access: AccessControl

    static let notFound = HTTPError(.notFound, detail: "There is no group with this id.")
    static let membershipNotFound = HTTPError(.notFound, detail: "There is no membership with this id in this group.")

    func add(to router: inout RouterBuilder) {
        router.post("/v1/groups", access.secure(.involvementWrite, resource: .participantGroup, Idempotency.wrap(Self.create)))
        router.get("/v1/groups", access.secure(.involvementRead, resource: .participantGroup, Self.list.respond))
        router.get("/v1/groups/{id}", GroupRecord.readByID(access, .involvementRead, resource: .participantGroup, notFound: Self.notFound))
        router.post("/v1/groups/{id}/members", access.secure(.involvementWrite, resource: .groupMembership, Idempotency.wrap(Self.join)))
        router.get("/v1/groups/{id}/members", access.secure(.involvementRead, resource: .groupMembership, Self.members.respond))
        router.get("/v1/groups/{id}/members/{membership_id}", access.secure(.involvementRead, resource: .groupMembership) { request, context in
            let (group, id) = try Self.ids(request)
            return try await MembershipRecord.read(id, below: ParentKey("group_id", group), request, context,
                                                   resource: .groupMembership, notFound: Self.membershipNotFound)
        })
        router.post("/v1/groups/{id}/members/{membership_id}/leave", access.secure(.involvementWrite, resource: .groupMembership) { request, context in
            let (group, id) = try Self.ids(request)
            return try await MembershipRecord.lifecycle.perform(.leave, request, context, notFound: Self.membershipNotFound, state: \.state,
                                                                check: { current, fields in
                try MembershipRecord.lifecycle.rejectDay(fields["on"], before: current.joinedOn, "the participant joined")
            }, find: { tx in try await Self.findMembership(id, in: group, on: tx) })
        })
        router.get("/v1/participants/{id}/groups", access.secure(.involvementRead, resource: .groupMembership, Self.memberships.respond))
    }

    static let list = ListEndpoint<GroupRecord, Void>(
        resource: .participantGroup,
        filters: [.vocabulary("kind", GroupKind.self, "g.kind"), .vocabulary("service_area", ServiceArea.self, "g.service_area")],
        order: ListOrder(descending: [("g.seq", .bigint)]))

    private static let membershipList = ListEndpoint<MembershipRecord, Void>(
        resource: .groupMembership, filters: [.vocabulary("status", MembershipStatus.self, "m.status")],
        order: ListOrder(ascending: [("m.created_at", .timestamptz), ("m.id", .uuid)])
    )
    static let members = membershipList.below(ListParent(table: "participant_groups", column: "m.group_id", notFound: notFound))
    static let memberships = membershipList.below(ListParent(table: "participants", column: "m.participant_id", notFound: ParticipantRoutes.notFound))

    static func ids(_ request: Request) throws(HTTPError) -> (group: UUID, membership: UUID) {
        guard let group = UUID(uuidString: request.parameter("id")), let membership = UUID(uuidString: request.parameter("membership_id")) else {
            throw membershipNotFound
        }
        return (group, membership)
    }

    static func findMembership(_ id: UUID, in group: UUID, on tx: TenantTransaction) async throws -> MembershipRecord? {
        guard let record = try await MembershipRecord.table.find(id, on: tx), record.groupId == group else { return nil }
        return record
    }

    static func create(_ request: Request, _ context: AccessContext) async throws -> Response {
        var fields = try FieldReader(body: request.body)
        let name = fields.string("name", maxLength: 200)
        let kind = fields.vocabulary("kind", GroupKind.self)
        let serviceArea = fields.vocabulary("service_area", ServiceArea.self, required: false)
        try fields.finish()
        guard let name, let kind else { throw HTTPError.validation([FieldError(field: "(body)", message: "is incomplete")]) }
        let principal = context.principal
        let record = try await context.transaction { tx -> GroupRecord in
            let rows = try await tx.query("""
                INSERT INTO participant_groups (tenant_id, organisation_id, name, kind, service_area, created_by)
                VALUES (\(principal.tenantID), \(principal.organisationID), \(name), \(kind.rawValue), \(serviceArea?.rawValue), \(principal.keyID))
                RETURNING id
                """)
            guard let id = try rows.first?.decode(UUID.self, column: "id"), let record = try await GroupRecord.table.find(id, on: tx) else {
                throw notFound
            }
            tx.audit(.create, .participantGroup, id: id.lowercased)
            return record
        }
        return record.response(status: .created)
    }

    /// `POST /v1/groups/{id}/members`: a participant of the caller's joins on a day; one open
    /// membership per participant and group (409 `already-a-member` naming it).
    static func join(_ request: Request, _ context: AccessContext) async throws -> Response {
        guard let group = UUID(uuidString: request.parameter("id")) else { throw notFound }
        var fields = try FieldReader(body: request.body)
        let participant = fields.uuid("participant_id")
        let joinedOn = fields.date("joined_on")
        try fields.finish()
        guard let participant, let joinedOn else { throw HTTPError.validation([FieldError(field: "(body)", message: "is incomplete")]) }
        let principal = context.principal
        let record = try await context.transaction { tx -> MembershipRecord in
            guard try await !tx.query("SELECT 1 FROM participant_groups WHERE tenant_id = \(principal.tenantID) AND id = \(group)").isEmpty else {
                throw notFound
            }
            guard try await !tx.query("SELECT 1 FROM participants WHERE tenant_id = \(principal.tenantID) AND id = \(participant)").isEmpty else {
                throw HTTPError.validation([FieldError(field: "participant_id", message: "is not a participant of this tenant")])
            }
            let rows = try await tx.query("""
                INSERT INTO group_memberships (tenant_id, organisation_id, group_id, participant_id, joined_on, created_by)
                SELECT tenant_id, organisation_id, id, \(participant), \(joinedOn), \(principal.keyID)
                  FROM participant_groups WHERE tenant_id = \(principal.tenantID) AND id = \(group)
                ON CONFLICT (tenant_id, group_id, participant_id) WHERE status = 'member' DO NOTHING
                RETURNING id
                """)
            guard let id = try rows.first?.decode(UUID.self, column: "id") else {
                let open = try await tx.query("""
                    SELECT id FROM group_memberships
                     WHERE tenant_id = \(principal.tenantID) AND group_id = \(group) AND participant_id = \(participant) AND status = 'member'
                    """).first?.decode(UUID.self, column: "id")
                var conflict = HTTPError(.alreadyAMember, detail: "This participant is already a member of this group; record when they left first.")
                if let open { conflict.extensions["existing_id"] = .text(open.lowercased) }
                throw conflict
            }
            guard let record = try await findMembership(id, in: group, on: tx) else { throw membershipNotFound }
            tx.audit(.create, .groupMembership, id: id.lowercased)
            return record
        }
        return record.response(status: .created)
    }
}

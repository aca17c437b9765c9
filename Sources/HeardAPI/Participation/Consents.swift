import Foundation
import HTTPServer
import Postgres

/// Consent as Heard answers it: in force from `given_on` up to, not including, `withdrawn_on`
/// (`ParticipationRules.consentInForce`).
struct ConsentRecord: BelongsToParticipant {
    var id = UUID.zero
    var participantId = UUID.zero
    var givenBy = ""
    var givenOn = CalendarDate(daysSince1970: 0)
    var purposes: [String] = []
    var status = ""
    var withdrawnOn: CalendarDate?
    var version = 1
    var createdAt = Date(timeIntervalSince1970: 0)

    var location: String { "/v1/participants/\(participantId.lowercased)/consents/\(id.lowercased)" }
    var state: ConsentStatus { ConsentStatus(rawValue: status) ?? .given }
    var allowedActions: [String] { Self.lifecycle.allowedActions(in: state).map(\.rawValue) }

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
enum ConsentRoutes {
    static let notFound = HTTPError(.notFound, detail: "There is no consent with this id for this participant.")

    static func add(to router: inout RouterBuilder, access: AccessControl) {
        endpoints.add(to: &router, access: access)
        router.post("/v1/participants/{id}/consents/{consent_id}/withdraw", access.secure(.involvementWrite, resource: .consent) { request, context in
            let (participant, id) = try endpoints.ids(request)
            return try await ConsentRecord.lifecycle.perform(.withdraw, request, context, notFound: notFound, state: \.state,
                                                             check: { current, fields in
                try ConsentRecord.lifecycle.rejectDay(fields["on"], before: current.givenOn, "the consent was given")
            }, find: { tx in try await endpoints.find(id, of: participant, on: tx) })
        })
    }

    static let endpoints = ParticipantChild<ConsentRecord>(
        path: "consents", idParameter: "consent_id", resource: .consent, notFound: notFound,
        list: ListEndpoint<ConsentRecord, Void>(
            resource: .consent,
            filters: [.custom("purpose", read: { $0.vocabulary($1, ConsentPurpose.self) }) { purpose, _ in "\(purpose.rawValue)::text = ANY(c.purposes)" }],
            order: ListOrder(ascending: [("c.created_at", .timestamptz), ("c.id", .uuid)])
        ).below(ListParent(table: "participants", column: "c.participant_id", notFound: ParticipantRoutes.notFound))
    ) { fields, participant, tx in
        let givenBy = fields.vocabulary("given_by", ConsentGiver.self)
        let givenOn = fields.date("given_on")
        let purposes = fields.vocabularyList("purposes", ConsentPurpose.self)
        if purposes?.isEmpty == true { fields.reject("purposes", "must name at least one purpose") }
        try fields.finish()
        guard let givenBy, let givenOn, let purposes else { return nil }
        let ageBand = try await tx.query("SELECT age_band FROM participants WHERE tenant_id = \(tx.principal.tenantID) AND id = \(participant)")
            .first.map { AgeBand(rawValue: try $0.decode(String.self, column: "age_band")) ?? .unknown } ?? .unknown
        if givenBy == .self && ageBand.needsAdultConsent {
            throw HTTPError.validation([FieldError(
                field: "given_by",
                message: "must be parent_carer or person_with_parental_responsibility: the participant's age band is \(ageBand.rawValue), and a child under 13 (or of unknown age) cannot consent for themselves")])
        }
        return try await tx.query("""
            INSERT INTO consents (tenant_id, organisation_id, participant_id, given_by, given_on, purposes, created_by)
            SELECT tenant_id, organisation_id, id, \(givenBy.rawValue), \(givenOn), \(purposes.map(\.rawValue)), \(tx.principal.keyID)
              FROM participants WHERE tenant_id = \(tx.principal.tenantID) AND id = \(participant)
            RETURNING id
            """).first?.decode(UUID.self, column: "id")
    }
}

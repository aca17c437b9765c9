import Foundation
import HTTPServer
import Postgres

/// A record kept below a participant (consent, training, a reward).
protocol BelongsToParticipant: AnsweredRecord {
    var participantId: UUID { get }
}

/// The routes of a record kept below a participant, `/v1/participants/{id}/<path>`: its create
/// (the participant must be the caller's, else 404; Idempotency-Key honoured), its list (oldest
/// first) and its read.
struct ParticipantChild<Record: BelongsToParticipant>: Sendable {
    let path: String
    /// The path parameter naming one record (`consent_id`).
    let idParameter: String
    let resource: AuditResource
    let notFound: HTTPError
    let list: ListEndpoint<Record, Void>
    /// Reads and validates the body (`fields.finish()` included) and inserts the record for the
    /// participant, taking its tenant and organisation from `participants`; its id.
    let insert: @Sendable (inout FieldReader, UUID, TenantTransaction) async throws -> UUID?

    func add(to router: inout RouterBuilder, access: AccessControl) {
        router.post("/v1/participants/{id}/\(path)", access.secure(.involvementWrite, resource: resource, Idempotency.wrap(create)))
        router.get("/v1/participants/{id}/\(path)", access.secure(.involvementRead, resource: resource, list.respond))
        router.get("/v1/participants/{id}/\(path)/{\(idParameter)}", access.secure(.involvementRead, resource: resource) { request, context in
            let (participant, id) = try ids(request)
            return try await Record.read(id, below: ParentKey("participant_id", participant), request, context,
                                         resource: resource, notFound: notFound)
        })
    }

    func ids(_ request: Request) throws(HTTPError) -> (participant: UUID, record: UUID) {
        guard let participant = UUID(uuidString: request.parameter("id")), let id = UUID(uuidString: request.parameter(idParameter)) else {
            throw notFound
        }
        return (participant, id)
    }

    func find(_ id: UUID, of participant: UUID, on tx: TenantTransaction) async throws -> Record? {
        guard let record = try await Record.table.find(id, on: tx), record.participantId == participant else { return nil }
        return record
    }

    @Sendable func create(_ request: Request, _ context: AccessContext) async throws -> Response {
        guard let participant = UUID(uuidString: request.parameter("id")) else { throw ParticipantRoutes.notFound }
        let body = try FieldReader(body: request.body)
        let record = try await context.transaction { tx -> Record in
            guard try await !tx.query("SELECT 1 FROM participants WHERE tenant_id = \(tx.principal.tenantID) AND id = \(participant)").isEmpty else {
                throw ParticipantRoutes.notFound
            }
            var fields = body
            guard let id = try await insert(&fields, participant, tx), let record = try await find(id, of: participant, on: tx) else {
                throw ParticipantRoutes.notFound
            }
            tx.audit(.create, resource, id: id.lowercased)
            return record
        }
        return record.response(status: .created)
    }
}

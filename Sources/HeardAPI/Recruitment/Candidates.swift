import Foundation
import HTTPServer
import Postgres

/// A candidate for a vacancy: a pseudonymous ref from the recruiting system, never a name.
struct Candidate: StoredRecord {
    var id = UUID.zero
    var vacancyId = UUID.zero
    var ref = ""
    var createdAt = Date(timeIntervalSince1970: 0)

    static let table = Table<Candidate>("vacancy_candidates c", [
        .column("id", "c.id", \.id), .column("vacancy_id", "c.vacancy_id", \.vacancyId), .column("ref", "c.ref", \.ref),
        .column("created_at", "c.created_at", \.createdAt),
    ])
}

/// `/v1/vacancies/{id}/candidates`: add one (its ref again: 200 with it), list them.
enum Candidates {
    static let list = ListEndpoint<Candidate, Void>(
        resource: .vacancyCandidate,
        order: ListOrder(ascending: [("c.seq", .bigint)]),
        csvFilename: "candidates.csv"
    ).below(ListParent(table: "vacancies", column: "c.vacancy_id", notFound: VacancyStore.notFound))

    static func create(_ request: Request, _ context: AccessContext) async throws -> Response {
        guard let vacancy = UUID(uuidString: request.parameter("id")) else { throw VacancyStore.notFound }
        var fields = try FieldReader(body: request.body)
        let ref = fields.string("ref", maxLength: 100)
        try fields.finish()
        guard let ref else { throw HTTPError.validation([FieldError(field: "ref", message: "is required")]) }
        let (candidate, created) = try await context.transaction { tx -> (Candidate, Bool) in
            let tenant = tx.principal.tenantID
            guard let row = try await tx.query("""
                WITH new AS (
                    INSERT INTO vacancy_candidates (tenant_id, organisation_id, vacancy_id, ref, created_by)
                    SELECT tenant_id, organisation_id, id, \(ref), \(tx.principal.keyID) FROM vacancies WHERE tenant_id = \(tenant) AND id = \(vacancy)
                    ON CONFLICT (tenant_id, vacancy_id, ref) DO NOTHING
                    RETURNING id
                )
                SELECT id, true AS created FROM new
                UNION ALL
                SELECT id, false FROM vacancy_candidates WHERE tenant_id = \(tenant) AND vacancy_id = \(vacancy) AND ref = \(ref)
                """).first else { throw VacancyStore.notFound }
            let id = try row.decode(UUID.self, column: "id"), created = try row.decode(Bool.self, column: "created")
            guard let candidate = try await Candidate.table.find(id, on: tx) else { throw VacancyStore.notFound }
            tx.audit(created ? .create : .read, .vacancyCandidate, id: id.lowercased)
            return (candidate, created)
        }
        return Response.json(candidate, status: created ? .created : .ok)
    }
}

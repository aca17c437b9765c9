import Foundation
import HTTPServer
import Postgres

/// `/v1/feedback`: what children, young people and families said, sent by council systems that
/// retry. A retry never makes a second record: (`source_system`, `external_id`) is the natural
/// key, so the same content answers 200 with the record, different content 409.
struct FeedbackRoutes {
    let access: AccessControl
    let measures: MeasureCache
    let versions: MeasureVersions

    func add(to router: inout RouterBuilder) {
        router.post("/v1/feedback", access.secure(.feedbackWrite, resource: .feedback, Idempotency.wrap { request, context in
            try await create(request, context)
        }))
        router.post("/v1/feedback/batch", access.secure(.feedbackWrite, resource: .feedback, Idempotency.wrap { request, context in
            try await FeedbackBatch.handle(request, context, measures: measures)
        }))
        router.get("/v1/feedback", access.secure(.feedbackRead, resource: .feedback, FeedbackList.endpoint.respond))
        router.patch("/v1/feedback/{id}", access.secure(.feedbackWrite, resource: .feedback, FeedbackCorrection.handle))
        router.get("/v1/feedback/{id}", access.secure(.feedbackRead, resource: .feedback) { request, context in
            guard let id = UUID(uuidString: request.parameter("id")) else { throw Self.notFound }
            let includeFreeText = context.principal.has(.freeTextRead)
            guard let record = try await FeedbackStore.read(id, in: context, includeFreeText: includeFreeText, versions: versions) else {
                throw Self.notFound
            }
            return IfNoneMatch.notModified(request, etag: record.etag) ?? Self.answer(record, status: .ok, request: request)
        })
    }

    static let notFound = HTTPError(.notFound, detail: "There is no feedback with this id.")

    private func create(_ request: Request, _ context: AccessContext) async throws -> Response {
        let principal = context.principal
        let includeFreeText = principal.has(.freeTextRead)
        // Validated before the transaction begins when the tenant's measures are at hand (see
        // MeasureCache); otherwise they are read in the transaction's first round trip.
        let validated = try measures.fresh(for: principal.tenantID).map { try NewFeedback.parse(request.body, measures: $0) }
        let attempt = try await context.transaction { tx -> (feedback: NewFeedback, record: FeedbackRecord?) in
            let feedback: NewFeedback
            if let validated {
                feedback = validated
            } else {
                let ticket = measures.ticket(for: principal.tenantID)
                let current = try await MeasureStore.all(on: tx.base, tenantID: principal.tenantID)
                measures.store(current, for: principal.tenantID, ticket: ticket)
                feedback = try NewFeedback.parse(request.body, measures: current)
            }
            let organisationID = try await Self.organisation(feedback.organisation, for: principal, on: tx)
            try await ComplaintFeedbackLink.check(feedback.complaintID, on: tx)
            // Stored, audited and committed in one round trip (FeedbackStore.create).
            return (feedback, try await FeedbackStore.create(feedback, organisationID: organisationID, on: tx, includeFreeText: includeFreeText))
        }
        if let record = attempt.record { return Self.answer(record, status: .created, request: request) }

        // The natural key was taken: a retry (the same content: 200 with the record) or a conflict.
        let record = try await NaturalKey.settle(context, .feedback, noun: "feedback record") { tx -> NaturalKey.Holder<FeedbackRecord>? in
            guard let existing = try await FeedbackStore.existing(attempt.feedback, on: tx),
                  let record = try await FeedbackStore.find(existing.id, on: tx, includeFreeText: includeFreeText) else { return nil }
            // Without free_text:read the comment is not compared (FreeTextOracleTests).
            return NaturalKey.Holder(record, id: record.id, name: "Feedback \(record.id.lowercased)",
                                     sameContent: attempt.feedback.matches(storedHash: existing.contentHash, storedComment: existing.comment,
                                                                           includeFreeText: includeFreeText))
        }
        return Self.answer(record, status: .ok, request: request)
    }

    /// The organisation a record is attributed to: a partner key's own, always; for a tenant
    /// key, the one named (which must exist), or none.
    static func organisation(_ slug: String?, for principal: Principal, on tx: TenantTransaction) async throws -> UUID? {
        let known = try await organisations(named: slug.map { [$0] } ?? [], on: tx)
        return try attribution(slug, for: principal, known: known)
    }

    /// The ids of the tenant's organisations among `slugs`, in one query.
    static func organisations(named slugs: Set<String>, on tx: TenantTransaction) async throws -> [String: UUID] {
        guard !slugs.isEmpty else { return [:] }
        let rows = try await tx.query("""
            SELECT slug, id FROM organisations WHERE tenant_id = \(tx.principal.tenantID) AND slug = ANY(\(Array(slugs))::text[])
            """)
        return try Dictionary(uniqueKeysWithValues: rows.map { (try $0.decode(String.self, column: "slug"), try $0.decode(UUID.self, column: "id")) })
    }

    /// `organisation(_:for:on:)` with the named organisations already looked up.
    static func attribution(_ slug: String?, for principal: Principal, known: [String: UUID]) throws(HTTPError) -> UUID? {
        guard let slug else { return principal.organisationID }
        guard let id = known[slug] else {
            throw HTTPError.validation([FieldError(field: "organisation", message: "is not an organisation of this tenant")])
        }
        if let own = principal.organisationID, own != id {
            throw HTTPError.validation([FieldError(field: "organisation", message: "a partner's key records only its own organisation's feedback")])
        }
        return id
    }

    static func answer(_ record: FeedbackRecord, status: HTTPStatus, request: Request) -> Response {
        var response = Response.json(record, status: status)
        response.headers.add(name: "ETag", value: record.etag)
        response.headers.add(name: "Location", value: "/v1/feedback/\(record.id.lowercased)")
        return response
    }
}

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
    /// Single POSTs of one key that arrive while two groups of its are being written wait, and
    /// are then written together, up to 100 at a time: one statement, one commit
    /// (`createTogether`; see `Coalescer`).
    let creates: Coalescer<Principal.Identity, FeedbackStore.Insert, TogetherOutcome<FeedbackRecord?>>
    /// Reads by id of one key likewise (`ReadsTogether`).
    let reads: ReadsTogether<FeedbackRecord>

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
            guard let record = try await FeedbackStore.read(id, in: context, includeFreeText: includeFreeText, versions: versions,
                                                                     together: reads) else {
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

        // Most POSTs name no organisation (or their partner key's own) and no complaint: nothing
        // to look up first. Those of one key that come while its earlier ones are being written
        // are written together (see `creates`).
        if let feedback = validated, feedback.organisation == nil, feedback.complaintID == nil {
            let insert = FeedbackStore.Insert(feedback: feedback, organisationID: principal.organisationID, requestID: context.requestID)
            switch await creates.submit(insert, key: principal.identity, { inserts in
                await Self.createTogether(inserts, in: context, includeFreeText: includeFreeText)
            }) {
            case .done(let record?): return Self.answer(record, status: .created, request: request)
            case .done(nil): return Self.answer(try await Self.settle(feedback, context, includeFreeText: includeFreeText), status: .ok, request: request)
            case .failed(let error): throw error
            case .alone: break
            }
        }

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
        return Self.answer(try await Self.settle(attempt.feedback, context, includeFreeText: includeFreeText), status: .ok, request: request)
    }

    /// Single POSTs of one key that came together: the first with each natural key are stored
    /// by one statement in one transaction, with their alerts and audit rows (a group of one as
    /// `FeedbackStore.create` stores it); a later one with the same key waits for that commit
    /// and goes alone, finding the first (a retry or a conflict, as two requests would). A
    /// group that would wait more than a second for a row another transaction holds (its
    /// natural key, inserted there and not yet committed) gives up, and its requests go alone
    /// (`AccessContext.groupTransaction`).
    /// Each is answered its record, nil where its natural key was taken (a retry, or a
    /// conflict: `settle`), or `alone`.
    static func createTogether(_ inserts: [FeedbackStore.Insert], in context: AccessContext,
                               includeFreeText: Bool) async -> [TogetherOutcome<FeedbackRecord?>] {
        var outcomes = [TogetherOutcome<FeedbackRecord?>](repeating: .alone, count: inserts.count)
        var keys = Set<[String]>()
        let group = inserts.indices.filter { keys.insert([inserts[$0].feedback.sourceSystem, inserts[$0].feedback.externalID]).inserted }
        do {
            let records: [FeedbackRecord?]
            if group.count == 1 {
                let only = inserts[group[0]]
                records = [try await context.transaction { tx in
                    try await FeedbackStore.create(only.feedback, organisationID: only.organisationID, on: tx, includeFreeText: includeFreeText)
                }]
            } else {
                records = try await context.groupTransaction { tx in
                    try await FeedbackStore.createAll(group.map { inserts[$0] }, on: tx, includeFreeText: includeFreeText)
                }
            }
            for (position, index) in group.enumerated() {
                outcomes[index] = .done(records[position])
            }
            return outcomes
        } catch {
            return TogetherOutcome.afterFailure(error, count: inserts.count)
        }
    }

    /// The answer to a POST whose natural key was taken: a retry (the same content: the record,
    /// for a 200) or a conflict (409).
    private static func settle(_ feedback: NewFeedback, _ context: AccessContext, includeFreeText: Bool) async throws -> FeedbackRecord {
        try await NaturalKey.settle(context, .feedback, noun: "feedback record") { tx -> NaturalKey.Holder<FeedbackRecord>? in
            guard let existing = try await FeedbackStore.existing(feedback, on: tx),
                  let record = try await FeedbackStore.find(existing.id, on: tx, includeFreeText: includeFreeText) else { return nil }
            // Without free_text:read the comment is not compared (FreeTextOracleTests).
            return NaturalKey.Holder(record, id: record.id, name: "Feedback \(record.id.lowercased)",
                                     sameContent: feedback.matches(storedHash: existing.contentHash, storedComment: existing.comment,
                                                                   includeFreeText: includeFreeText))
        }
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

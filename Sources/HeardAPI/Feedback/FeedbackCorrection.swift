import Foundation
import HTTPServer
import Postgres

/// `PATCH /v1/feedback/{id}`: a sender corrects what it sent. The body names only the fields
/// that change (JSON merge patch: `null` clears an optional field); `If-Match` must carry the
/// record's current `ETag` (428 without it, 412 when stale), so two corrections never silently
/// overwrite each other. The corrected record is validated whole, as a new one would be, and
/// every change is kept in the record's history: which fields, from what to what, by which key,
/// when. The natural key and the organisation cannot be corrected.
enum FeedbackCorrection {
    static let correctable: Set<String> = [
        "channel", "respondent_role", "age_band", "service_area", "team", "stage", "kind", "given_at", "subject_ref",
        "responses", "comment", "anonymous", "consent_to_follow_up", "safeguarding_concern", "equality",
    ]

    static func handle(_ request: Request, _ context: AccessContext) async throws -> Response {
        guard let id = UUID(uuidString: request.parameter("id")) else { throw FeedbackRoutes.notFound }
        let ifMatch = try IfMatch.required(request)
        guard case .object(let patch) = try JSONValue.parse(request.body) else {
            throw HTTPError.validation([FieldError(field: "(body)", message: "must be a JSON object of the fields to correct")])
        }
        let refused = patch.filter { !correctable.contains($0.key) }.map { member in
            FieldError(field: member.key, message: ["source_system", "external_id", "organisation"].contains(member.key)
                ? "cannot be corrected: it identifies the record" : "is not a field that can be corrected")
        }
        guard refused.isEmpty else { throw HTTPError.validation(refused) }

        let principal = context.principal
        let record = try await context.transaction { tx -> FeedbackRecord in
            guard let current = try await FeedbackStore.find(id, on: tx, includeFreeText: true) else { throw FeedbackRoutes.notFound }
            var merged = current.inputMembers
            for member in patch {
                if let index = merged.firstIndex(where: { $0.key == member.key }) {
                    merged[index].value = member.value
                } else {
                    merged.append(member)
                }
            }
            // Responses the correction leaves alone are not checked again: they were valid when
            // given, and stay as given, even for a measure retired or rescaled since. Responses it
            // sends are scored against the active measures and their current scales.
            let responsesCorrected = patch.contains { $0.key == "responses" }
            let measures = try await MeasureStore.all(on: tx.base, tenantID: principal.tenantID).map { measure in
                guard !responsesCorrected else { return measure }
                var unchecked = measure
                unchecked.active = true
                unchecked.scale = Measure.Scale(min: .min, max: .max, agreeFrom: .min, labels: [])
                return unchecked
            }
            var fields = FieldReader(members: merged, prefix: "")
            let corrected = try NewFeedback.parse(&fields, measures: measures)
            // Checked after validation: a request that is wrong in itself says so first.
            try ifMatch.check(current: current.etag)
            let before = Dictionary(uniqueKeysWithValues: current.inputMembers.map { ($0.key, $0.value) })
            let changes = patch.filter { member in
                guard member.key == "given_at", case .string(let new)? = Optional(member.value), case .string(let old)? = before["given_at"] else {
                    return before[member.key] ?? .null != member.value
                }
                return FieldReader.parseInstant(new) != FieldReader.parseInstant(old)
            }
            guard !changes.isEmpty else { return current }

            // Responses not corrected keep the measure versions they were given against.
            let responsesChanged = changes.contains(where: { $0.key == "responses" })
            let updated = try await tx.execute("""
                UPDATE feedback
                   SET channel = \(corrected.channel.rawValue), respondent_role = \(corrected.respondentRole.rawValue),
                       age_band = \(corrected.ageBand.rawValue), service_area = \(corrected.serviceArea.rawValue), team = \(corrected.team),
                       stage = \(corrected.stage.rawValue), kind = \(corrected.kind.rawValue), given_at = \(corrected.givenAt),
                       subject_ref = \(corrected.subjectRef), comment = \(corrected.comment), anonymous = \(corrected.anonymous),
                       consent_to_follow_up = \(corrected.consentToFollowUp), safeguarding_concern = \(corrected.safeguardingConcern),
                       gender = \(corrected.equality?.gender?.rawValue), ethnicity = \(corrected.equality?.ethnicity?.rawValue),
                       disability = \(corrected.equality?.disability?.rawValue), content_hash = \(corrected.contentHash),
                       response_measures = CASE WHEN \(responsesChanged) THEN \(corrected.responses.map(\.measure.id)) ELSE response_measures END,
                       response_versions = CASE WHEN \(responsesChanged) THEN \(corrected.responses.map(\.measure.version)) ELSE response_versions END,
                       response_scores = CASE WHEN \(responsesChanged) THEN \(corrected.responses.map(\.score)) ELSE response_scores END,
                       version = version + 1, updated_at = now()
                 WHERE tenant_id = \(principal.tenantID) AND id = \(id) AND version = \(current.version)
                """)
            guard updated == 1 else { throw IfMatch.changedMeanwhile }
            // A concern raised in a correction is never just stored either.
            if corrected.safeguardingConcern && current.safeguardingAlert == nil {
                try await tx.execute("""
                    INSERT INTO safeguarding_alerts (tenant_id, feedback_id, organisation_id)
                    SELECT tenant_id, id, organisation_id FROM feedback WHERE tenant_id = \(principal.tenantID) AND id = \(id)
                    """)
            }
            let history = JSONValue.object(changes.map { change in
                (change.key, .object([("from", before[change.key] ?? .null), ("to", change.value)]))
            })
            try await tx.execute("""
                INSERT INTO feedback_history (tenant_id, feedback_id, version, key_id, request_id, changes)
                VALUES (\(principal.tenantID), \(id), \(current.version + 1), \(principal.keyID), \(request.requestID), \(history.serialized)::jsonb)
                """)
            tx.audit(.update, .feedback, id: id.lowercased)
            guard let record = try await FeedbackStore.find(id, on: tx, includeFreeText: principal.has(.freeTextRead)) else {
                throw FeedbackRoutes.notFound
            }
            return record
        }
        var answer = record
        answer.includesFreeText = principal.has(.freeTextRead)
        return FeedbackRoutes.answer(answer, status: .ok, request: request)
    }
}

extension FeedbackRecord {
    /// The record's correctable fields as a sender would send them.
    var inputMembers: [(key: String, value: JSONValue)] {
        func text(_ value: String?) -> JSONValue { value.map(JSONValue.string) ?? .null }
        return [
            ("channel", .string(channel)), ("respondent_role", .string(respondentRole)), ("age_band", .string(ageBand)),
            ("service_area", .string(serviceArea)), ("team", text(team)), ("stage", .string(stage)), ("kind", .string(kind)),
            ("given_at", .string(RFC3339.format(givenAt))), ("subject_ref", text(subjectRef)),
            ("responses", .array(responses.map { .object([("measure", .string($0.measure)), ("score", .number(String($0.score)))]) })),
            ("comment", text(comment)), ("anonymous", .bool(anonymous)), ("consent_to_follow_up", .bool(consentToFollowUp)),
            ("safeguarding_concern", .bool(safeguardingConcern)),
            ("equality", equality.map { .object([("gender", text($0.gender)), ("ethnicity", text($0.ethnicity)), ("disability", text($0.disability))]) } ?? .null),
            ("source_system", .string(sourceSystem)), ("external_id", .string(externalId)), ("organisation", text(organisation)),
            ("complaint_id", complaintId.map { .string($0.lowercased) } ?? .null),
        ]
    }
}

import Foundation
import HTTPServer
import Postgres

/// `POST /v1/feedback/batch`: up to 1,000 records, as a JSON array or NDJSON
/// (`application/x-ndjson`), for nightly uploads. Each record is validated and stored on its
/// own; the answer says, in input order, what became of each: `created`, `duplicate` (the same
/// content was already there), `conflict` (the natural key is taken by different content) or
/// `invalid` (with its errors). One bad record never blocks the good ones. The whole batch is
/// one transaction, so a batch cut off half-way leaves nothing, and a retry is safe.
enum FeedbackBatch {
    static let maxRecords = 1000

    struct RecordResult: Encodable, Sendable {
        var index: Int
        var status: String
        var id: String?
        var errors: [FieldError]?
        var detail: String?
    }

    struct Answer: Encodable, Sendable {
        var results: [RecordResult]
        var created: Int
        var duplicate: Int
        var conflict: Int
        var invalid: Int
    }

    static func handle(_ request: Request, _ context: AccessContext) async throws -> Response {
        let documents = try split(request)
        let principal = context.principal
        let answer = try await context.transaction { tx -> Answer in
            let measures = try await MeasureStore.all(on: tx.base, tenantID: principal.tenantID)
            var organisations: [String: UUID] = [:]
            var results: [RecordResult] = []
            var createdIDs: [String] = []
            results.reserveCapacity(documents.count)
            for (index, document) in documents.enumerated() {
                let feedback: NewFeedback
                let organisationID: UUID?
                do {
                    guard case .object(let members) = try document.get() else {
                        throw HTTPError.validation([FieldError(field: "(record)", message: "must be a JSON object")])
                    }
                    var fields = FieldReader(members: members, prefix: "")
                    feedback = try NewFeedback.parse(&fields, measures: measures)
                    if let slug = feedback.organisation, let known = organisations[slug] {
                        organisationID = known
                    } else {
                        organisationID = try await FeedbackRoutes.organisation(feedback.organisation, for: principal, on: tx)
                        if let slug = feedback.organisation { organisations[slug] = organisationID }
                    }
                } catch let error as HTTPError {
                    let errors = error.errors.isEmpty ? [FieldError(field: "(record)", message: error.detail)] : error.errors
                    results.append(RecordResult(index: index, status: "invalid", errors: errors))
                    continue
                }
                guard let stored = try await FeedbackStore.store(feedback, organisationID: organisationID, on: tx) else {
                    results.append(RecordResult(index: index, status: "conflict", detail: "Another record already has this source_system and external_id."))
                    continue
                }
                let id = stored.id.lowercased
                if stored.created {
                    createdIDs.append(id)
                    results.append(RecordResult(index: index, status: "created", id: id))
                } else if stored.contentHash == feedback.contentHash {
                    results.append(RecordResult(index: index, status: "duplicate", id: id))
                } else {
                    results.append(RecordResult(index: index, status: "conflict", id: id,
                                          detail: "Feedback \(id) already has this source_system and external_id, with different content; it was not changed."))
                }
            }
            try await tx.auditCreated("feedback", ids: createdIDs)
            func count(_ status: String) -> Int { results.filter { $0.status == status }.count }
            return Answer(results: results, created: count("created"), duplicate: count("duplicate"),
                          conflict: count("conflict"), invalid: count("invalid"))
        }
        return .json(answer)
    }

    /// The records of the body: a JSON array, or one JSON object per line for NDJSON. A record
    /// that is not JSON becomes an `invalid` result, not a failed batch.
    static func split(_ request: Request) throws(HTTPError) -> [Result<JSONValue, HTTPError>] {
        let contentType = request.headers["Content-Type"]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        var documents: [Result<JSONValue, HTTPError>] = []
        if contentType == "application/x-ndjson" {
            var lineStart = 0
            let body = request.body
            for index in 0...body.count where index == body.count || body[index] == UInt8(ascii: "\n") {
                var line = Array(body[lineStart..<index])
                lineStart = index + 1
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
                documents.append(Result { () throws(HTTPError) -> JSONValue in try JSONValue.parse(line) })
                if documents.count > maxRecords { break }
            }
        } else if contentType == nil || contentType == "application/json" {
            guard case .array(let elements) = try JSONValue.parse(request.body) else {
                throw HTTPError.validation([FieldError(field: "(body)", message: "must be a JSON array of records, or NDJSON with Content-Type: application/x-ndjson")])
            }
            // An element that is not even an object makes the array a malformed batch.
            let notObjects = elements.indices.filter { if case .object = elements[$0] { false } else { true } }
            guard notObjects.isEmpty else {
                throw HTTPError.validation(notObjects.prefix(20).map { FieldError(field: "[\($0)]", message: "must be a feedback record (a JSON object)") })
            }
            documents = elements.map { .success($0) }
        } else {
            throw HTTPError(.unsupportedMediaType, detail: "Send a JSON array (application/json) or NDJSON (application/x-ndjson).")
        }
        guard !documents.isEmpty else { throw HTTPError.validation([FieldError(field: "(body)", message: "holds no records")]) }
        guard documents.count <= maxRecords else {
            throw HTTPError.validation([FieldError(field: "(body)", message: "holds more than \(maxRecords) records; split it")])
        }
        return documents
    }
}

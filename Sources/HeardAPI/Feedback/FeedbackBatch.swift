import Foundation
import HTTPServer
import Postgres

/// `POST /v1/feedback/batch`: up to 1,000 records, as a JSON array or NDJSON
/// (`application/x-ndjson`), for nightly uploads. Each record is validated and stored on its
/// own; the answer says, in input order, what became of each: `created`, `duplicate` (the same
/// content was already there), `conflict` (the natural key is taken by different content) or
/// `invalid` (with its errors). One bad record never blocks the good ones. The whole batch is
/// one transaction, so a batch cut off half-way leaves nothing, and a retry is safe. However
/// many records it holds, the valid ones are stored by one statement (`FeedbackStore.storeMany`).
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

    static func handle(_ request: Request, _ context: AccessContext, measures cache: MeasureCache) async throws -> Response {
        let documents = try split(request)
        let principal = context.principal
        let measures = try await cache.measures(for: principal.tenantID) {
            try await context.transaction { tx in try await MeasureStore.all(on: tx.base, tenantID: principal.tenantID) }
        }

        // 1. Validate every record on its own, before the transaction begins (it holds its locks
        //    only while PostgreSQL works).
        var results = [RecordResult?](repeating: nil, count: documents.count)
        var parsed: [(index: Int, feedback: NewFeedback)] = []
        parsed.reserveCapacity(documents.count)
        for (index, document) in documents.enumerated() {
            do throws(HTTPError) {
                guard case .object(let members) = try document.get() else {
                    throw HTTPError.validation([FieldError(field: "(record)", message: "must be a JSON object")])
                }
                var fields = FieldReader(members: members, prefix: "")
                parsed.append((index, try NewFeedback.parse(&fields, measures: measures)))
            } catch {
                results[index] = Self.invalid(index, error)
            }
        }

        let answer = try await context.transaction { [results] tx -> Answer in
            var results = results

            // 2. Attribute each to its organisation (one lookup for all the names), and hold back
            //    a natural key the batch repeats: its first record decides what the others are.
            let known = try await FeedbackRoutes.organisations(named: Set(parsed.compactMap(\.feedback.organisation)), on: tx)
            let closedComplaints = try await ComplaintFeedbackLink.closed(Set(parsed.compactMap(\.feedback.complaintID)), on: tx)
            var toStore: [(index: Int, feedback: NewFeedback, organisationID: UUID?)] = []
            var repeats: [(index: Int, first: Int, feedback: NewFeedback)] = []
            var firstWithKey: [NaturalKey: Int] = [:]
            for (index, feedback) in parsed {
                let organisationID: UUID?
                do throws(HTTPError) {
                    organisationID = try FeedbackRoutes.attribution(feedback.organisation, for: principal, known: known)
                    if let complaintID = feedback.complaintID, !closedComplaints.contains(complaintID) {
                        throw HTTPError.validation([ComplaintFeedbackLink.problem])
                    }
                } catch {
                    results[index] = Self.invalid(index, error)
                    continue
                }
                let key = NaturalKey(sourceSystem: feedback.sourceSystem, externalID: feedback.externalID)
                if let first = firstWithKey[key] {
                    repeats.append((index, first, feedback))
                } else {
                    firstWithKey[key] = toStore.count
                    toStore.append((index, feedback, organisationID))
                }
            }

            // 3. Store them all at once.
            let stored = try await FeedbackStore.storeMany(
                toStore.map { FeedbackStore.Insert(feedback: $0.feedback, organisationID: $0.organisationID, requestID: tx.requestID) }, on: tx)
            let includeFreeText = principal.has(.freeTextRead)
            for (position, item) in toStore.enumerated() {
                results[item.index] = Self.result(item.index, stored[position], item.feedback, includeFreeText: includeFreeText)
            }
            for repeated in repeats {
                // The same record twice in one batch is a duplicate of the first; a different one
                // with the same key conflicts with it, as it would in two requests. (Both came in
                // this batch, so comparing their comments tells the caller nothing new.)
                let first: FeedbackStore.StoredInBatch? = switch stored[repeated.first] {
                case .created(let id)?: .existing(id, contentHash: toStore[repeated.first].feedback.contentHash,
                                                  comment: toStore[repeated.first].feedback.comment)
                case let other: other
                }
                let comparesComments = includeFreeText || stored[repeated.first].map { if case .created = $0 { true } else { false } } == true
                results[repeated.index] = Self.result(repeated.index, first, repeated.feedback, includeFreeText: comparesComments)
            }
            // A duplicate answers with an existing record's id: read access, audited as a single
            // POST's duplicate is.
            tx.audit(.read, .feedback, ids: results.compactMap { $0?.status == "duplicate" ? $0?.id : nil })
            let all = results.compactMap { $0 }
            func count(_ status: String) -> Int { all.filter { $0.status == status }.count }
            return Answer(results: all, created: count("created"), duplicate: count("duplicate"),
                          conflict: count("conflict"), invalid: count("invalid"))
        }
        return .json(answer)
    }

    private struct NaturalKey: Hashable {
        var sourceSystem: String
        var externalID: String
    }

    private static func invalid(_ index: Int, _ error: HTTPError) -> RecordResult {
        let errors = error.errors.isEmpty ? [FieldError(field: "(record)", message: error.detail)] : error.errors
        return RecordResult(index: index, status: "invalid", errors: errors)
    }

    private static func result(_ index: Int, _ stored: FeedbackStore.StoredInBatch?, _ feedback: NewFeedback, includeFreeText: Bool) -> RecordResult {
        switch stored {
        case .created(let id)?:
            return RecordResult(index: index, status: "created", id: id.lowercased)
        case .existing(let id, let existingHash, let existingComment)?
            where feedback.matches(storedHash: existingHash, storedComment: existingComment, includeFreeText: includeFreeText):
            return RecordResult(index: index, status: "duplicate", id: id.lowercased)
        case .existing(let id, _, _)?:
            return RecordResult(index: index, status: "conflict", id: id.lowercased,
                                detail: "Feedback \(id.lowercased) already has this source_system and external_id, with different content; it was not changed.")
        case nil:
            return RecordResult(index: index, status: "conflict", detail: "Another record already has this source_system and external_id.")
        }
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

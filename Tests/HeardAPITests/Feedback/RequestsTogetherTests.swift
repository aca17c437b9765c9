import Foundation
@testable import HeardAPI
import HeardTesting
import Postgres
import Synchronization
import XCTest

/// Single POSTs of one key that arrive together are written together (FeedbackRoutes.creates),
/// and reads by id read together (ReadsTogether): fewer round trips and commits than requests,
/// and each request still gets its own answer, its own audit row, and for a POST the retry or
/// conflict its natural key calls for.
final class RequestsTogetherTests: CouncilTestCase {
    private var key: String!

    override func setUp() async throws {
        try await super.setUp()
        key = try await harness.key(council, scopes: [.feedbackWrite, .feedbackRead, .freeTextRead])
    }

    /// Runs `body` for 0..<count on as many threads, released at the same moment; the answers in order.
    static func atOnce<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) throws -> T) throws -> [T] {
        let answers = Mutex<[Int: Result<T, any Error>]>([:])
        let start = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        for index in 0..<count {
            done.enter()
            Thread {
                start.wait()
                let answer = Result { try body(index) }
                answers.withLock { $0[index] = answer }
                done.leave()
            }.start()
        }
        for _ in 0..<count { start.signal() }
        done.wait()
        return try answers.withLock { answers in try (0..<count).map { try answers[$0]!.get() } }
    }

    func testPostsThatComeTogetherAreWrittenTogetherEachWithItsOwnAnswerAndAuditRow() async throws {
        let harness = self.harness!, key = self.key!
        let retried = try harness.send("POST", "/v1/feedback", key: key, body: FeedbackSamples.body(externalID: "taken-same"))
        let conflicting = try harness.send("POST", "/v1/feedback", key: key, body: FeedbackSamples.body(externalID: "taken-other"))
        XCTAssertEqual([retried.status, conflicting.status], [201, 201])
        try await harness.app.access.keys.waitUntilListening()

        // 40 at once: 36 new records (one a safeguarding concern), a retry of a stored one, a
        // stored key with different content, and one new key sent twice.
        let run = UUID().lowercased.prefix(8)
        let bodies: [String] = (0..<36).map { index in
            FeedbackSamples.body(externalID: "together-\(index)", overrides: index == 5
                ? ["safeguarding_concern": "true", "kind": #""concern""#] : ["comment": "\"comment \(index)\""])
        } + [FeedbackSamples.body(externalID: "taken-same"),
             FeedbackSamples.body(externalID: "taken-other", overrides: ["kind": #""concern""#]),
             FeedbackSamples.body(externalID: "twice"), FeedbackSamples.body(externalID: "twice")]
        let before = harness.app.pool.roundTripCount
        let answers = try Self.atOnce(bodies.count) { index in
            try harness.send("POST", "/v1/feedback", key: key, body: bodies[index], headers: ["X-Request-Id": "\(run)-\(index)"])
        }
        let trips = harness.app.pool.roundTripCount - before

        for index in 0..<36 {
            XCTAssertEqual(answers[index].status, 201, answers[index].text)
            XCTAssertEqual(answers[index].json["external_id"] as? String, "together-\(index)", "each answer is its own request's record")
            XCTAssertEqual(answers[index].json["comment"] as? String, index == 5 ? "My worker listens to me" : "comment \(index)")
            XCTAssertEqual((answers[index].json["responses"] as? [[String: Any]])?.count, 2)
        }
        XCTAssertEqual((answers[5].json["safeguarding_alert"] as? [String: Any])?["status"] as? String, "open",
                       "a concern's alert is raised with it")
        XCTAssertEqual(answers[36].status, 200, "a retry answers the stored record")
        XCTAssertEqual(answers[36].json["id"] as? String, retried.json["id"] as? String)
        XCTAssertEqual(answers[37].status, 409, answers[37].text)
        XCTAssertEqual(answers[37].json["existing_id"] as? String, conflicting.json["id"] as? String)
        XCTAssertEqual(Set([answers[38].status, answers[39].status]), [200, 201], "one key sent twice at once makes one record")
        XCTAssertEqual(answers[38].json["id"] as? String, answers[39].json["id"] as? String)
        XCTAssertEqual(Set(answers.prefix(36).compactMap { $0.json["id"] as? String }).count, 36, "36 records")
        XCTAssertLessThan(trips, bodies.count, "requests that came together shared round trips (\(trips) for \(bodies.count))")

        // Each created record is stored as answered, with the audit row of its own request.
        for index in [0, 5, 35] {
            let id = try XCTUnwrap(answers[index].json["id"] as? String)
            let read = try harness.send("GET", "/v1/feedback/\(id)", key: key)
            XCTAssertEqual(read.json["external_id"] as? String, "together-\(index)")
            XCTAssertEqual(read.json["created_at"] as? String, answers[index].json["created_at"] as? String)
            XCTAssertEqual(read.header("ETag"), answers[index].header("ETag"))
        }
        for index in 0..<36 {
            let audited = try await harness.auditRows(requestID: "\(run)-\(index)")
            XCTAssertEqual(audited.map(\.action), ["create"], "request \(index)")
            XCTAssertEqual(audited.first?.resourceID, answers[index].json["id"] as? String)
        }
        let retryAudit = try await harness.auditRows(requestID: "\(run)-36")
        XCTAssertEqual(retryAudit.map(\.action), ["read"], "a retry is audited as a read")
        let stored = try await harness.superuserCount("SELECT count(*) FROM feedback")
        XCTAssertEqual(stored, 2 + 36 + 1)
        let events = try await harness.superuserCount("SELECT count(*) FROM events WHERE resource = 'feedback'")
        XCTAssertEqual(events, stored, "every record is in the change feed")
    }

    /// A partner's POSTs that come together are attributed to its own organisation, and another
    /// key's come in groups of their own.
    func testAPartnersPostsTogetherAreItsOwn() async throws {
        let harness = self.harness!
        let partner = try await harness.organisation("advocacy", in: council)
        let partnerKey = try await harness.key(council, scopes: [.feedbackWrite, .feedbackRead], organisation: partner)
        let councilKey = self.key!
        let answers = try Self.atOnce(20) { index in
            try harness.send("POST", "/v1/feedback", key: index % 2 == 0 ? partnerKey : councilKey,
                             body: FeedbackSamples.body(externalID: "mixed-\(index)"))
        }
        XCTAssertEqual(answers.map(\.status), Array(repeating: 201, count: 20), answers.map(\.text).joined(separator: "\n"))
        XCTAssertEqual(answers.enumerated().map { $0.element.json["organisation"] as? String }, (0..<20).map { $0 % 2 == 0 ? "advocacy" : nil })
        let attributed = try await harness.superuserCount("SELECT count(*) FROM feedback WHERE organisation_id = \(partner.id)")
        XCTAssertEqual(attributed, 10)
        XCTAssertNil(answers[0].json["comment"], "the partner's key has no free_text:read")
        XCTAssertEqual(answers[1].json["comment"] as? String, "My worker listens to me", "the council's key has")
    }

    func testReadsThatComeTogetherAreReadTogetherEachWithItsOwnAnswerAndAuditRow() async throws {
        let harness = self.harness!, key = self.key!
        let ids = try (0..<5).map { index in
            try XCTUnwrap(harness.send("POST", "/v1/feedback", key: key, body: FeedbackSamples.body(externalID: "read-\(index)")).json["id"] as? String)
        }
        let otherCouncil = try await harness.tenant("hartlepool")
        let otherKey = try await harness.key(otherCouncil, scopes: [.feedbackWrite])
        let theirs = try XCTUnwrap(harness.send("POST", "/v1/feedback", key: otherKey, body: FeedbackSamples.body()).json["id"] as? String)
        try await harness.app.access.keys.waitUntilListening()
        XCTAssertEqual(try harness.send("GET", "/v1/feedback/\(ids[0])", key: key).status, 200, "the key is known from here on")

        // 40 at once: each of the five records eight times over, but every tenth another
        // council's record and every fifteenth an id that names nothing.
        let run = UUID().lowercased.prefix(8)
        let wanted: [String] = (0..<40).map { (index: Int) -> String in
            if index % 10 == 9 { return theirs }
            if index % 15 == 14 { return UUID().lowercased }
            return ids[index % 5]
        }
        let before = harness.app.pool.roundTripCount
        let answers = try Self.atOnce(wanted.count) { index in
            try harness.send("GET", "/v1/feedback/\(wanted[index])", key: key, headers: ["X-Request-Id": "\(run)-\(index)"])
        }
        let trips = harness.app.pool.roundTripCount - before
        for (index, answer) in answers.enumerated() {
            let audited = try await harness.auditRows(requestID: "\(run)-\(index)")
            if let position = ids.firstIndex(of: wanted[index]) {
                XCTAssertEqual(answer.status, 200, answer.text)
                XCTAssertEqual(answer.json["id"] as? String, wanted[index], "each answer is its own request's record")
                XCTAssertEqual(answer.json["external_id"] as? String, "read-\(position)")
                XCTAssertEqual(answer.json["comment"] as? String, "My worker listens to me")
                XCTAssertEqual((answer.json["responses"] as? [[String: Any]])?.count, 2)
                XCTAssertEqual(audited.map(\.action), ["read"], "request \(index) is audited")
                XCTAssertEqual(audited.map(\.outcome), ["success"])
                XCTAssertEqual(audited.first?.resourceID, wanted[index])
            } else {
                XCTAssertEqual(answer.status, 404, "request \(index): another council's record, or none, is not found")
                XCTAssertEqual(audited.map(\.outcome), ["not_found"], "request \(index): audited as not found, never as read")
                XCTAssertEqual(audited.map(\.status), [404])
            }
        }
        XCTAssertLessThan(trips, wanted.count, "reads that came together shared round trips (\(trips) for \(wanted.count))")
    }

    /// A group that meets a row another transaction holds (a natural key inserted there and not
    /// committed) gives up after a second rather than hold every request in it until that
    /// transaction ends: each of its requests then goes alone (and only the one for that key
    /// waits for the row).
    func testAGroupWaitingOnARowHeldElsewhereGivesUpAndItsRequestsGoAlone() async throws {
        let harness = self.harness!, council = self.council!
        let keyID = try XCTUnwrap(APIKeySecret(text: key)).id
        let principal = Principal(keyID: keyID, tenantID: council.id, organisationID: nil, scopes: [.feedbackWrite, .feedbackRead])
        let context = AccessContext(principal: principal, database: harness.app.pool, requestID: "group-held", now: Date(), readAudit: .flushed)
        let measures = try await harness.app.pool.transaction(settings: principal.databaseSettings) { try await MeasureStore.all(on: $0, tenantID: council.id) }
        let inserts = try ["held", "free-1", "free-2"].map { externalID in
            FeedbackStore.Insert(feedback: try NewFeedback.parse(Array(FeedbackSamples.body(externalID: externalID).utf8), measures: measures),
                                 organisationID: nil, requestID: "group-\(externalID)")
        }

        // Another session inserts the natural key (mosaic, held) and keeps its transaction open.
        let inserted = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let holder = Task {
            try await harness.ownerPool.withConnection { connection in
                try await connection.simpleExecute("BEGIN")
                _ = try await connection.pipeline([
                    "SELECT set_config('heard.tenant_id', \(council.id.lowercased), true), set_config('heard.organisation_id', '', true)",
                    """
                    INSERT INTO feedback (tenant_id, source_system, external_id, channel, respondent_role, age_band, service_area, stage,
                                          kind, given_at, anonymous, consent_to_follow_up, safeguarding_concern, content_hash, created_by,
                                          response_measures, response_versions, response_scores)
                    VALUES (\(council.id), 'mosaic', 'held', 'survey', 'child', '8_to_12', 'early_help', 'review', 'general', now(),
                            false, false, false, 'held', \(keyID), '{}', '{}', '{}')
                    """,
                ])
                inserted.signal()
                await withCheckedContinuation { continuation in
                    DispatchQueue.global().async { release.wait(); continuation.resume() }
                }
                try await connection.simpleExecute("ROLLBACK")
            }
        }
        await withCheckedContinuation { continuation in DispatchQueue.global().async { inserted.wait(); continuation.resume() } }

        final class Outcome: Sendable { let answered = Mutex<[TogetherOutcome<FeedbackRecord?>]?>(nil) }
        let outcome = Outcome()
        let group = Task {
            let outcomes = await FeedbackRoutes.createTogether(inserts, in: context, includeFreeText: false)
            outcome.answered.withLock { $0 = outcomes }
        }
        // The group answers while the row is still held (waiting at most 20 s for it to).
        for _ in 0..<2000 where outcome.answered.withLock({ $0 == nil }) { try await Task.sleep(for: .milliseconds(10)) }
        let answered = outcome.answered.withLock { $0 }
        release.signal()
        try await holder.value
        await group.value
        let kinds = try XCTUnwrap(answered, "the group waited for the held row").map { outcome -> String in
            switch outcome {
            case .alone: "alone"
            case .done(.some): "created"
            case .done(.none): "taken"
            case .failed(let error): "failed: \(error)"
            }
        }
        XCTAssertEqual(kinds, ["alone", "alone", "alone"], "nothing of the group was kept; each request goes again alone")
        let stored = try await harness.superuserCount("SELECT count(*) FROM feedback")
        XCTAssertEqual(stored, 0, "the group left nothing behind, and the held insert was rolled back")
    }
}

import Foundation
import HeardAPI
import HeardTesting
import Postgres
import XCTest

/// A key that writes feedback but may not read comments must not learn a stored comment by
/// guessing it: a natural-key retry answers the same whether the guess is right or wrong.
final class FreeTextOracleTests: CouncilTestCase {
    private static let stored = #""I am scared of my foster carer""#

    private func storeRecord() async throws {
        let full = try await harness.key(council, scopes: [.feedbackWrite, .freeTextRead])
        let created = try harness.send("POST", "/v1/feedback", key: full,
                                       body: FeedbackSamples.body(externalID: "secret-1", overrides: ["comment": Self.stored]))
        XCTAssertEqual(created.status, 201, created.text)
    }

    func testARetryWithoutFreeTextReadAnswersTheSameWhateverTheComment() async throws {
        try await storeRecord()
        let writer = try await harness.key(council, scopes: [.feedbackWrite, .feedbackRead])
        let right = try harness.send("POST", "/v1/feedback", key: writer,
                                     body: FeedbackSamples.body(externalID: "secret-1", overrides: ["comment": Self.stored]))
        let wrong = try harness.send("POST", "/v1/feedback", key: writer,
                                     body: FeedbackSamples.body(externalID: "secret-1", overrides: ["comment": #""I like school""#]))
        let none = try harness.send("POST", "/v1/feedback", key: writer,
                                    body: FeedbackSamples.body(externalID: "secret-1", removing: ["comment"]))
        XCTAssertEqual(right.status, 200, right.text)
        XCTAssertEqual(wrong.status, right.status, "a wrong guess must answer as a right one: \(wrong.text)")
        XCTAssertEqual(none.status, right.status)
        XCTAssertEqual(wrong.text, right.text)
        XCTAssertFalse(right.text.contains("foster"), "the comment is never shown to this key")
        // Other content still conflicts: only free text is left out of the comparison.
        let other = try harness.send("POST", "/v1/feedback", key: writer,
                                     body: FeedbackSamples.body(externalID: "secret-1", overrides: ["kind": #""concern""#]))
        XCTAssertEqual(other.status, 409)

        // With free_text:read the comparison is whole, as before.
        let reader = try await harness.key(council, scopes: [.feedbackWrite, .freeTextRead])
        XCTAssertEqual(try harness.send("POST", "/v1/feedback", key: reader,
                                        body: FeedbackSamples.body(externalID: "secret-1", overrides: ["comment": #""I like school""#])).status, 409)
    }

    func testABatchOfGuessesLearnsNothingAndItsDuplicatesAreAudited() async throws {
        try await storeRecord()
        let writer = try await harness.key(council, scopes: [.feedbackWrite])
        let guesses = ["I like school", "I am scared of my foster carer", "I am happy", "My worker listens to me"]
        // One guess per batch, as an attacker would send them (a repeat within a batch compares
        // with the batch's own first record).
        var statuses: [String] = []
        for guess in guesses {
            let body = "[" + FeedbackSamples.body(externalID: "secret-1", overrides: ["comment": "\"\(guess)\""]) + "]"
            let response = try harness.send("POST", "/v1/feedback/batch", key: writer, body: body, headers: ["X-Request-Id": "guess-\(statuses.count)"])
            XCTAssertEqual(response.status, 200, response.text)
            statuses.append(((response.json["results"] as? [[String: Any]])?.first?["status"] as? String) ?? "?")
        }
        XCTAssertEqual(Set(statuses), ["duplicate"], "every guess answers alike: \(statuses)")
        for index in guesses.indices {
            let rows = try await harness.auditRows(requestID: "guess-\(index)")
            XCTAssertEqual(rows.map(\.action), ["read"], "a batch duplicate is audited as a read of the record")
            XCTAssertNotNil(rows.first?.resourceID)
        }
    }
}

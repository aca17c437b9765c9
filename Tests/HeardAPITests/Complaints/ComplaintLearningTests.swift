import Foundation
import HTTPServer
@testable import HeardAPI
import HeardTesting
import Postgres
import XCTest

/// Learning actions on a complaint, and feedback about a closed complaint's procedure.
final class ComplaintLearningTests: ComplaintTestCase {
    func complaint() throws -> String {
        let created = try harness.send("POST", "/v1/complaints", key: writer, body: ComplaintSamples.body(externalID: UUID().lowercased))
        XCTAssertEqual(created.status, 201, created.text)
        return try XCTUnwrap(created.json["id"] as? String)
    }

    func testLearningActionsAreAddedListedAndChangedWithIfMatch() async throws {
        let id = try complaint()
        let path = "/v1/complaints/\(id)/learning-actions"
        let created = try harness.send("POST", path, key: writer,
                                       body: #"{"action":"Tell young people when their worker changes","owner_team":"north","due_on":"2026-03-31"}"#)
        XCTAssertEqual(created.status, 201, created.text)
        XCTAssertEqual(created.json["status"] as? String, "planned")
        XCTAssertEqual(created.header("ETag"), "\"1\"")
        let actionID = try XCTUnwrap(created.json["id"] as? String)
        XCTAssertEqual(created.header("Location"), "\(path)/\(actionID)")

        let bad = try harness.send("POST", path, key: writer, body: #"{"owner_team":"","due_on":"31/03/2026","status":"started","x":1}"#)
        XCTAssertEqual(bad.status, 422)
        XCTAssertEqual(Set((bad.json["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String }),
                       ["action", "owner_team", "due_on", "status", "x"])

        XCTAssertEqual(try harness.send("PATCH", "\(path)/\(actionID)", key: writer, body: #"{"status":"done"}"#).status, 428)
        XCTAssertEqual(try harness.send("PATCH", "\(path)/\(actionID)", key: writer, body: #"{"status":"done"}"#, headers: ["If-Match": "\"2\""]).status, 412)
        let changed = try harness.send("PATCH", "\(path)/\(actionID)", key: writer, body: #"{"status":"in_progress","owner_team":null}"#,
                                       headers: ["If-Match": "\"1\""])
        XCTAssertEqual(changed.status, 200, changed.text)
        XCTAssertEqual(changed.json["status"] as? String, "in_progress")
        XCTAssertTrue(changed.json["owner_team"] is NSNull)
        XCTAssertEqual(changed.json["due_on"] as? String, "2026-03-31", "left alone")
        XCTAssertEqual(changed.header("ETag"), "\"2\"")

        let read = try harness.send("GET", "\(path)/\(actionID)", key: writer)
        XCTAssertEqual(read.json["status"] as? String, "in_progress")
        XCTAssertEqual(try harness.send("GET", "\(path)/\(actionID)", key: writer, headers: ["If-None-Match": "\"2\""]).status, 304)
        let listed = try harness.send("GET", path, key: writer)
        XCTAssertEqual(listed.items.compactMap { $0["status"] as? String }, ["in_progress"])
        XCTAssertEqual(listed.items.first?["action"] as? String, "Tell young people when their worker changes")

        let plain = try await harness.key(council, scopes: [.complaintsRead])
        XCTAssertNil(try harness.send("GET", path, key: plain).items.first?["action"], "free text needs free_text:read")
        XCTAssertEqual(try harness.send("GET", "/v1/complaints/\(UUID().lowercased)/learning-actions", key: writer).status, 404)
        let other = try complaint()
        XCTAssertEqual(try harness.send("PATCH", "/v1/complaints/\(other)/learning-actions/\(actionID)", key: writer, body: #"{"status":"done"}"#,
                                        headers: ["If-Match": "\"2\""]).status, 404, "an action is changed through its own complaint")
    }

    func testFeedbackAboutTheProcedureNamesAClosedComplaint() async throws {
        let id = try complaint()
        let both = try await harness.key(council, scopes: [.feedbackWrite, .feedbackRead])
        func feedback(_ externalID: String, _ complaint: String) throws -> RawResponse {
            try harness.send("POST", "/v1/feedback", key: both,
                             body: FeedbackSamples.body(externalID: externalID, overrides: ["complaint_id": "\"\(complaint)\""], removing: ["comment"]))
        }
        let open = try feedback("exp-1", id)
        XCTAssertEqual(open.status, 422, "the complaint is not closed yet")
        XCTAssertEqual((open.json["errors"] as? [[String: Any]])?.compactMap { $0["field"] as? String }, ["complaint_id"])

        for (version, action) in [(1, #"{"action":"withdraw","on":"2025-03-04"}"#), (2, #"{"action":"close","on":"2025-03-04"}"#)] {
            XCTAssertEqual(try harness.send("POST", "/v1/complaints/\(id)/transitions", key: writer, body: action,
                                            headers: ["If-Match": "\"\(version)\""]).status, 200)
        }
        let linked = try feedback("exp-1", id)
        XCTAssertEqual(linked.status, 201, linked.text)
        XCTAssertEqual(linked.json["complaint_id"] as? String, id)
        let feedbackID = try XCTUnwrap(linked.json["id"] as? String)
        XCTAssertEqual(try harness.send("GET", "/v1/feedback/\(feedbackID)", key: both).json["complaint_id"] as? String, id)
        XCTAssertEqual(try feedback("exp-1", id).status, 200, "a retry is the same record")

        // A correction keeps the link (and its content hash: the retry still matches).
        let corrected = try harness.send("PATCH", "/v1/feedback/\(feedbackID)", key: both, body: #"{"team":"south"}"#, headers: ["If-Match": "\"1\""])
        XCTAssertEqual(corrected.status, 200, corrected.text)
        XCTAssertEqual(corrected.json["complaint_id"] as? String, id)

        XCTAssertEqual(try feedback("exp-2", UUID().lowercased).status, 422)
        let elsewhere = try await harness.key(try await harness.tenant("walsall"), scopes: [.feedbackWrite])
        XCTAssertEqual(try harness.send("POST", "/v1/feedback", key: elsewhere,
                                        body: FeedbackSamples.body(externalID: "exp-3", overrides: ["complaint_id": "\"\(id)\""])).status, 422,
                       "another council's complaint is no complaint at all")

        let batch = try harness.send("POST", "/v1/feedback/batch", key: both, body: "[" + [
            FeedbackSamples.body(externalID: "b-1", overrides: ["complaint_id": "\"\(id)\""]),
            FeedbackSamples.body(externalID: "b-2", overrides: ["complaint_id": "\"\(UUID().lowercased)\""]),
        ].joined(separator: ",") + "]")
        XCTAssertEqual(batch.status, 200, batch.text)
        XCTAssertEqual((batch.json["results"] as? [[String: Any]])?.compactMap { $0["status"] as? String }, ["created", "invalid"])
    }
}

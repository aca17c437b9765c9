import Foundation
import HTTPServer
@testable import HeardAPI
import HeardTesting
import Postgres
import XCTest

/// What an attacker sends to the API: values PostgreSQL refuses, forged cursors, inputs meant to
/// make an error answer huge. Each is a 4xx naming what is wrong, never a 500.
final class HostileInputTests: CouncilTestCase {
    private func fieldsAtFault(_ response: RawResponse) -> [String] {
        (response.json["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String }
    }

    func testANULInAListFilterIs400NamingIt() async throws {
        let key = try await harness.key(council, scopes: [.feedbackRead])
        for filter in ["team", "subject_ref"] {
            let response = try harness.send("GET", "/v1/feedback?\(filter)=north%00x", key: key)
            XCTAssertEqual(response.status, 400, "\(filter): \(response.text)")
            XCTAssertEqual(fieldsAtFault(response), [filter])
        }
    }

    /// A cursor is base64url JSON; a client can forge one with any text where an instant goes.
    private static func forgedCursor(_ json: String) -> String {
        Data(json.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    func testACursorHoldingABadTimestampIs400() async throws {
        let key = try await harness.key(council, scopes: [.admin, .feedbackRead])
        let id = UUID().lowercased
        for instant in ["2026-13-45 99:00:00+00", "not a time", "0000-01-01 00:00:00+00", "2026-02-30 10:00:00+00",
                        "2026-01-01 10:00:60+00", "2026-01-01 10:00:00+99", "2026-01-01 10:00:00"] {
            for path in ["/v1/admin/keys", "/v1/safeguarding-alerts"] {
                let cursor = Self.forgedCursor(#"["\#(instant)","\#(id)"]"#)
                let response = try harness.send("GET", "\(path)?cursor=\(cursor)", key: key)
                XCTAssertEqual(response.status, 400, "\(path) with \(instant): \(response.text)")
                XCTAssertEqual(fieldsAtFault(response), ["cursor"])
            }
        }
        let audit = try await harness.key(council, scopes: [.auditRead])
        for number in ["99999999999999999999", "1e3", "-"] {
            let response = try harness.send("GET", "/v1/audit?cursor=\(Self.forgedCursor(#"["\#(number)"]"#))", key: audit)
            XCTAssertEqual(response.status, 400, "\(number): \(response.text)")
        }
        // The cursors the server gives out still work.
        _ = try await harness.key(council, scopes: [.admin], name: "second")
        let firstPage = try harness.send("GET", "/v1/admin/keys?limit=1", key: key)
        let next = try XCTUnwrap(firstPage.json["next_cursor"] as? String)
        XCTAssertEqual(try harness.send("GET", "/v1/admin/keys?limit=1&cursor=\(next)", key: key).status, 200)
    }

    func testADataExceptionFromTheDatabaseIsTheClientsNot500() {
        let nul = PostgresError(kind: .query, sqlState: "22021", message: "parameter $1 contains a NUL character")
        XCTAssertEqual(HeardApp.problem(for: nul)?.status, .badRequest)
        let range = PostgresError(kind: .query, sqlState: "22008", message: "date/time field value out of range")
        XCTAssertEqual(HeardApp.problem(for: range)?.status, .badRequest)
        let other = PostgresError(kind: .query, sqlState: "42P01", message: "relation does not exist")
        XCTAssertNil(HeardApp.problem(for: other), "a fault of ours stays a 500")
    }

    func testAValidationAnswerIsCappedInSize() async throws {
        let key = try await harness.key(council, scopes: [.admin])
        let longName = String(repeating: "n", count: 20_000)
        let unknown = (0..<1000).map { #""field_\#($0)":1"# }.joined(separator: ",")
        let response = try harness.send("POST", "/v1/admin/keys", key: key,
                                        body: #"{"\#(longName)":1,\#(unknown),"name":"x","scopes":["admin"]}"#)
        XCTAssertEqual(response.status, 422)
        let fields = fieldsAtFault(response)
        XCTAssertEqual(fields.count, FieldError.maxCount)
        XCTAssertLessThanOrEqual(fields.map(\.count).max() ?? 0, FieldError.maxTextLength)
        XCTAssertLessThan(response.body.count, 20_000)
    }
}

import Foundation
import HTTPServer
@testable import HeardAPI
import HeardTesting
import Postgres
import XCTest

/// What every list does the same way, because every list is a `ListEndpoint`: the same
/// answer to the same bad query, on each of them.
final class ListEndpointTests: XCTestCase {
    var harness: AccessHarness!
    var key: String!

    /// Each list, with a filter of text it has.
    let lists: [(path: String, textFilter: String)] = [
        ("/v1/feedback", "team"), ("/v1/safeguarding-alerts", "status"), ("/v1/admin/keys", ""), ("/v1/audit", "resource_type"),
    ]

    override func setUp() async throws {
        harness = try await AccessHarness.start(access: .init(ratePerSecond: 1_000, burst: 1_000))
        let council = try await harness.tenant("kirklees")
        key = try await harness.key(council, scopes: [.feedbackWrite, .feedbackRead, .admin, .auditRead])
    }

    override func tearDown() async throws {
        await harness.stop()
    }

    private func fields(_ response: RawResponse) -> Set<String> {
        Set((response.json["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String })
    }

    private static func cursor(_ json: String) -> String {
        Data(json.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// A cursor is the client's to tamper with: whatever it holds, the answer is a 400 naming
    /// `cursor`, never a 500 from a value PostgreSQL refuses.
    func testATamperedCursorIsA400OnEveryList() throws {
        let tampered = [
            #"["2026-99-99 00:00:00+00","5d0f3d3c-6c1a-4a8e-9d35-1e6f6a5d2b11"]"#, #"["2026-11-20 25:00:00+00","5d0f3d3c-6c1a-4a8e-9d35-1e6f6a5d2b11"]"#,
            #"["2026-11-20 10:00:00+00\u0000","5d0f3d3c-6c1a-4a8e-9d35-1e6f6a5d2b11"]"#, #"["99999999999999999999999"]"#, #"["1e3"]"#,
            #"["12\u0000"]"#, #"{"seq":1}"#, #"[1]"#, #"[]"#, #"["1","2","3"]"#, "not json",
        ]
        for (path, _) in lists {
            for json in tampered {
                let response = try harness.send("GET", "\(path)?cursor=\(Self.cursor(json))", key: key)
                XCTAssertEqual(response.status, 400, "\(path) with cursor \(json): \(response.text)")
                XCTAssertEqual(fields(response), ["cursor"], "\(path) with cursor \(json)")
            }
        }
    }

    /// NUL cannot be stored or compared by PostgreSQL: refused as the parameter at fault.
    func testANULInAFilterIsA400NamingIt() throws {
        for (path, filter) in lists where !filter.isEmpty {
            let response = try harness.send("GET", "\(path)?\(filter)=a%00b", key: key)
            XCTAssertEqual(response.status, 400, "\(path): \(response.text)")
            XCTAssertEqual(fields(response), [filter], path)
        }
    }

    /// Unknown, repeated and out-of-range parameters, and `to` before `from`, all in one 400.
    func testEveryParameterAtFaultIsNamedInOneAnswer() throws {
        for path in ["/v1/feedback", "/v1/safeguarding-alerts", "/v1/audit"] {
            let response = try harness.send("GET", "\(path)?from=2026-11-20&to=2026-11-19&limit=0&colour=red&colour=blue", key: key)
            XCTAssertEqual(response.status, 400, "\(path): \(response.text)")
            XCTAssertEqual(response.json["type"] as? String, "urn:heard:problem:invalid-query")
            XCTAssertEqual(fields(response), ["to", "limit", "colour"], path)
        }
        let keys = try harness.send("GET", "/v1/admin/keys?from=2026-11-20", key: key)
        XCTAssertEqual(fields(keys), ["from"], "a list without days has no from")
    }

    /// JSON-only lists refuse `format=csv` the same way; exporting lists answer it.
    func testOnlyListsThatExportAcceptCSV() throws {
        for path in ["/v1/safeguarding-alerts", "/v1/admin/keys", "/v1/audit"] {
            let response = try harness.send("GET", "\(path)?format=csv", key: key)
            XCTAssertEqual(response.status, 400, path)
            XCTAssertEqual(fields(response), ["format"], path)
            XCTAssertEqual(try harness.send("GET", "\(path)?format=json", key: key).status, 200, path)
        }
        let csv = try harness.send("GET", "/v1/feedback?format=csv", key: key)
        XCTAssertEqual(csv.status, 200)
        XCTAssertEqual(csv.header("Content-Disposition"), "attachment; filename=\"feedback.csv\"")
    }

    /// Keyset paging on a timestamp and an id: every key exactly once, newest first, however
    /// the pages fall.
    func testPagingTheKeysListVisitsEachKeyOnce() throws {
        for index in 0..<7 {
            let created = try harness.send("POST", "/v1/admin/keys", key: key, body: #"{"name":"batch \#(index)","scopes":["feedback:read"]}"#)
            XCTAssertEqual(created.status, 201, created.text)
        }
        var seen: [String] = []
        var cursor: String?
        repeat {
            let page = try harness.send("GET", "/v1/admin/keys?limit=3" + (cursor.map { "&cursor=\($0)" } ?? ""), key: key)
            XCTAssertEqual(page.status, 200, page.text)
            seen += page.items.compactMap { $0["id"] as? String }
            cursor = page.json["next_cursor"] as? String
        } while cursor != nil
        XCTAssertEqual(seen.count, 8)
        XCTAssertEqual(Set(seen).count, 8)
    }
}

import Foundation
import HTTPServer
@testable import HeardAPI
import HeardTesting
import Postgres
import XCTest

/// Issue 13's smaller holes: CSV cells a `;` spreadsheet would split into a formula, stored
/// Idempotency-Key answers that never expired for an idle tenant, 429s neither counted nor audited.
final class SmallerHolesTests: XCTestCase {
    /// The cells a spreadsheet reading with `;` as list separator sees in `text`.
    private func semicolonCells(_ text: String) -> [String] {
        text.split(whereSeparator: { $0 == ";" || $0 == "\n" || $0 == "\r\n" || $0 == "\r" }).map {
            String($0.drop(while: { $0 == " " || $0 == "\"" }))
        }
    }

    func testCSVDefusesWhatASemicolonSpreadsheetWouldSplitIntoAFormula() {
        let formulaStarts: Set<Character> = ["=", "+", "-", "@", "\t"]
        for value in ["a;=HYPERLINK(\"http://x\",\"click\")", "ok; @SUM(A1)", "x\n=1+1", "x\r\n-2", "a;\"=cmd\"", "; +1"] {
            let written = CSVWriter.field(value)
            var csv = CSVWriter(header: ["id", "comment"])
            csv.append(["1", value])
            for cell in semicolonCells(csv.text) {
                XCTAssertFalse(cell.first.map(formulaStarts.contains) ?? false, "\(value.debugDescription) gave a formula cell \(cell.debugDescription) in \(csv.text.debugDescription)")
            }
            XCTAssertEqual(written.replacingOccurrences(of: "'", with: "").filter { $0 != "\"" }, value.filter { $0 != "\"" },
                           "the guard only adds '")
        }
        // What was right stays as it was.
        XCTAssertEqual(CSVWriter.field("=1+1"), "'=1+1")
        XCTAssertEqual(CSVWriter.field("plain text"), "plain text")
        XCTAssertEqual(CSVWriter.field("a; b"), "a; b")
        XCTAssertEqual(CSVWriter.field("a;=b"), "a;'=b")
        // A negative number is a number, not a formula: an analyst sums working days overdue.
        for number in ["-1", "-42", "-0.5", "-10.25"] { XCTAssertEqual(CSVWriter.field(number), number) }
        for formula in ["-", "-1+2", "-1;=2", "--1", "-1.", "-.5", "-1.2.3", "-1e5", "-1 ", "- 1", "-A1"] {
            XCTAssertEqual(CSVWriter.field(formula), "'" + formula.replacingOccurrences(of: ";=", with: ";'="), formula)
        }
    }

    func testStoredIdempotencyAnswersExpireForEveryTenantBusyOrIdle() async throws {
        let harness = try await AccessHarness.start()
        let busy = try await harness.tenant("busy"), idle = try await harness.tenant("idle")
        var keys: [String] = []
        for tenant in [busy, idle] {
            let key = try await harness.key(tenant, scopes: [.feedbackWrite])
            keys.append(key)
            let first = try harness.send("POST", "/v1/feedback", key: key, body: FeedbackSamples.body(externalID: "first"),
                                         headers: ["Idempotency-Key": "nightly-1"])
            XCTAssertEqual(first.status, 201)
        }
        let superuser = PostgresPool(configuration: harness.database.configuration, size: 1)  // bypasses row-level security
        try await superuser.execute("UPDATE idempotency_keys SET created_at = now() - interval '9 days'")

        // An expired key is new again: another body under it is a new request, not a 422.
        let again = try harness.send("POST", "/v1/feedback", key: keys[0], body: FeedbackSamples.body(externalID: "second"),
                                     headers: ["Idempotency-Key": "nightly-1"])
        XCTAssertEqual(again.status, 201, again.text)

        // The idle tenant's expired answer is deleted too, though it never sends another request.
        let expired = try await Idempotency.expire(on: harness.app.pool)
        XCTAssertEqual(expired, 1)
        let left = try await superuser.query("SELECT t.slug FROM idempotency_keys k JOIN tenants t ON t.id = k.tenant_id")
        XCTAssertEqual(try left.map { try $0.decode(String.self, column: "slug") }, ["busy"], "only the busy tenant's fresh answer is left")
        superuser.shutdown()
        await harness.stop()
    }

    func testA429IsCountedAndAudited() async throws {
        let harness = try await AccessHarness.start(access: .init(ratePerSecond: 0.01, burst: 1))
        let council = try await harness.tenant("redcar")
        let key = try await harness.key(council, scopes: [.admin])
        XCTAssertEqual(try harness.send("GET", "/v1/admin/keys", key: key).status, 200)
        let limited = try harness.send("GET", "/v1/admin/keys", key: key, headers: ["X-Request-Id": "too-many-1"])
        XCTAssertEqual(limited.status, 429)
        let rows = try await harness.auditRows(requestID: "too-many-1")
        XCTAssertEqual(rows.map(\.outcome), ["rate_limited"])
        XCTAssertEqual(rows.first?.status, 429)
        XCTAssertEqual(rows.first?.tenant, council.id)
        let metrics = try harness.send("GET", "/metrics", key: nil).text
        XCTAssertTrue(metrics.contains("heard_auth_refusals_total{reason=\"rate_limited\"} 1"), metrics)
        await harness.stop()
    }
}

import Foundation
import HTTPServer
@testable import HeardAPI
import HeardTesting
import Postgres
import XCTest

/// What happens before a key is known: a limit per client address on failed attempts, refusals
/// counted and logged in aggregate, and operator endpoints only for operators.
final class PreAuthenticationTests: XCTestCase {
    func testAnAddressThatKeepsFailingIsHeldOffBeforeAnyKeyIsLookedUp() async throws {
        let harness = try await AccessHarness.start(access: .init(authFailuresPerMinute: 3))
        let council = try await harness.tenant("redcar")
        let valid = try await harness.key(council, scopes: [.admin])
        let forged = String(valid.dropLast(4)) + "AAAA"
        for _ in 1...3 {
            XCTAssertEqual(try harness.send("GET", "/v1/admin/keys", key: forged).status, 401)
        }
        // Now even a valid key from this address waits: nothing reaches the database.
        let held = try harness.send("GET", "/v1/admin/keys", key: forged)
        XCTAssertEqual(held.status, 429)
        XCTAssertNotNil(held.header("Retry-After"))
        XCTAssertEqual(try harness.send("GET", "/v1/admin/keys", key: valid).status, 429)
        let metrics = try harness.send("GET", "/metrics", key: nil).text
        XCTAssertTrue(metrics.contains("heard_auth_refusals_total{reason=\"unknown_key\"} 3"), metrics)
        XCTAssertTrue(metrics.contains("heard_auth_refusals_total{reason=\"address_limited\"} 2"), metrics)
        // /healthz is never held.
        XCTAssertEqual(try harness.send("GET", "/healthz", key: nil).status, 200)
        await harness.stop()
    }

    func testRefusalsAreLoggedOncePerWindowInAggregate() throws {
        let log = try CapturedLog()
        let tally = RefusalTally(log: log.requestLog, windowSeconds: 60, now: 0)
        for second in 0..<10 { tally.record(.unknownKey, address: "192.0.2.\(second % 3)", now: UInt64(second) * 1_000_000_000) }
        tally.record(.missingKey, address: "192.0.2.9", now: 30_000_000_000)
        XCTAssertFalse(log.text().contains("refusals"), "nothing logged while the window is open")
        tally.record(.unknownKey, address: "192.0.2.1", now: 61_000_000_000)
        log.requestLog.flush()
        var text = ""
        for _ in 0..<50 where !text.contains("refusals") {
            text = log.text()
            Thread.sleep(forTimeInterval: 0.02)
        }
        let lines = text.split(separator: "\n").filter { $0.contains("refusals without a known key") }
        XCTAssertEqual(lines.count, 1, text)
        let line = String(lines.first ?? "")
        XCTAssertTrue(line.contains(#""unknown_key":"10""#), line)
        XCTAssertTrue(line.contains(#""missing_key":"1""#), line)
        XCTAssertTrue(line.contains(#""addresses":"4""#), line)
        XCTAssertFalse(line.contains("192.0.2"), "addresses are counted, never logged")
        XCTAssertEqual(tally.total(.unknownKey), 11)
    }

    func testMetricsAndReadinessDetailsOnlyForOperators() async throws {
        let token = "operator-token-0123456789"
        let operators = OperatorAccess(addresses: try XCTUnwrap(AddressSet(list: "10.0.0.0/8, 2001:db8::/32")), token: token)
        let harness = try await AccessHarness.start(access: .init(operators: operators))
        let refused = try harness.send("GET", "/metrics", key: nil)
        XCTAssertEqual(refused.status, 403)
        XCTAssertEqual(refused.header("Content-Type"), "application/problem+json")
        XCTAssertEqual(try harness.send("GET", "/metrics", key: "wrong-token-0123456789").status, 403)
        let allowed = try harness.send("GET", "/metrics", key: token)
        XCTAssertEqual(allowed.status, 200)
        XCTAssertTrue(allowed.text.contains("heard_http_requests_total"))

        let bare = try harness.send("GET", "/readyz", key: nil)
        XCTAssertEqual(bare.status, 200)
        XCTAssertEqual(bare.json.keys.sorted(), ["status"])
        let detailed = try harness.send("GET", "/readyz", key: token)
        XCTAssertEqual(detailed.json["database"] as? String, "ok")
        XCTAssertEqual(try harness.send("GET", "/healthz", key: nil).status, 200)
        await harness.stop()
    }

    func testAddressSets() throws {
        let set = try XCTUnwrap(AddressSet(list: "127.0.0.1, 10.1.0.0/16, 2001:db8::/32, ::1"))
        XCTAssertTrue(set.contains("127.0.0.1"))
        XCTAssertFalse(set.contains("127.0.0.2"))
        XCTAssertTrue(set.contains("10.1.255.3"))
        XCTAssertFalse(set.contains("10.2.0.1"))
        XCTAssertTrue(set.contains("2001:db8:1::5"))
        XCTAssertFalse(set.contains("2001:db9::1"))
        XCTAssertTrue(set.contains("::1"))
        XCTAssertTrue(set.contains("::ffff:10.1.2.3"), "IPv4 mapped into IPv6 matches as IPv4")
        XCTAssertFalse(set.contains("not an address"))
        XCTAssertTrue(AddressSet.loopback.contains("127.8.9.10"))
        XCTAssertNil(AddressSet(list: "10.0.0.0/33"))
        XCTAssertNil(AddressSet(list: "example.org"))
    }
}

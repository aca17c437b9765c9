import Foundation
import HTTPServer
import HeardAPI
import HeardTesting
import Postgres
import XCTest

final class AccessTests: CouncilTestCase {
    // MARK: Authentication

    func testNoKeyIs401WithAChallengeAndTheSecurityHeaders() throws {
        let response = try harness.send("GET", "/v1/admin/keys", key: nil)
        XCTAssertEqual(response.status, 401)
        XCTAssertEqual(response.header("WWW-Authenticate"), "Bearer realm=\"heard\"")
        XCTAssertEqual(response.header("Content-Type"), "application/problem+json")
        XCTAssertEqual(response.header("Cache-Control"), "no-store")
        XCTAssertEqual(response.header("X-Content-Type-Options"), "nosniff")
        XCTAssertEqual(response.header("X-Frame-Options"), "DENY")
    }

    func testMalformedAndUnknownKeysAre401AndCountedNotAuditedOneByOne() async throws {
        let malformed = try harness.send("GET", "/v1/admin/keys", key: "not-a-key")
        XCTAssertEqual(malformed.status, 401)
        XCTAssertEqual(malformed.header("WWW-Authenticate"), "Bearer realm=\"heard\", error=\"invalid_token\"")

        let real = try await harness.key(council, scopes: [.admin])
        let forged = String(real.dropLast(4)) + "AAAA"  // the right id, the wrong secret
        for attempt in 1...5 {
            let unknown = try harness.send("GET", "/v1/admin/keys", key: forged, headers: ["X-Request-Id": "forged-key-\(attempt)"])
            XCTAssertEqual(unknown.status, 401)
        }
        // No audit row each (a flood of made-up keys would be a flood of writes): a count.
        let rows = try await harness.auditRows(requestID: "forged-key-1")
        XCTAssertEqual(rows.count, 0)
        let metrics = try harness.send("GET", "/metrics", key: nil).text
        XCTAssertTrue(metrics.contains("heard_auth_refusals_total{reason=\"unknown_key\"} 5"), metrics)
        XCTAssertTrue(metrics.contains("heard_auth_refusals_total{reason=\"malformed_key\"} 1"), metrics)
    }

    func testARevokedKeyIsRefused() async throws {
        let admin = try await harness.key(council, scopes: [.admin])
        let victim = try await harness.key(council, scopes: [.admin])
        XCTAssertEqual(try harness.send("GET", "/v1/admin/keys", key: victim).status, 200)
        let victimID = try XCTUnwrap(APIKeySecret(text: victim)).id.lowercased
        let revoked = try harness.send("POST", "/v1/admin/keys/\(victimID)/revoke", key: admin)
        XCTAssertEqual(revoked.status, 200)
        XCTAssertNotNil(revoked.json["revoked_at"] as? String)
        let refused = try harness.send("GET", "/v1/admin/keys", key: victim, headers: ["X-Request-Id": "revoked-1"])
        XCTAssertEqual(refused.status, 401)
        XCTAssertEqual(refused.json["detail"] as? String, "This API key, or the key that created it, has been revoked.")
        let rows = try await harness.auditRows(requestID: "revoked-1")
        XCTAssertEqual(rows.first?.tenant, council.id)
        XCTAssertEqual(rows.first?.outcome, "unauthenticated")
    }

    func testAnExpiredKeyIsRefused() async throws {
        let key = try await harness.key(council, scopes: [.admin])
        XCTAssertEqual(try harness.send("GET", "/v1/admin/keys", key: key).status, 200)
        let id = try XCTUnwrap(APIKeySecret(text: key)).id
        try await harness.changeKeysAsOwner("UPDATE api_keys SET expires_on = current_date WHERE id = \(id)")
        let refused = try harness.send("GET", "/v1/admin/keys", key: key)
        XCTAssertEqual(refused.status, 401)
        XCTAssertTrue((refused.json["detail"] as? String)?.hasPrefix("This API key expired on") ?? false, refused.text)
    }

    // MARK: Scopes

    func testEachScopeAllowsExactlyItsOperations() async throws {
        let target = try await harness.key(council, scopes: [.feedbackRead])
        let targetID = try XCTUnwrap(APIKeySecret(text: target)).id.lowercased
        // Each operation that exists now, and the one scope that opens it.
        let operations: [(method: String, path: String, body: String?, scope: Scope)] = [
            ("GET", "/v1/admin/keys", nil, .admin),
            ("GET", "/v1/admin/keys/\(targetID)", nil, .admin),
            ("POST", "/v1/admin/keys", #"{"name":"matrix","scopes":["admin"]}"#, .admin),
            ("GET", "/v1/audit", nil, .auditRead),
        ]
        for scope in Scope.allCases {
            let key = try await harness.key(council, scopes: [scope])
            for operation in operations {
                let response = try harness.send(operation.method, operation.path, key: key, body: operation.body)
                if operation.scope == scope {
                    XCTAssertTrue((200...201).contains(response.status), "\(scope.rawValue) must allow \(operation.method) \(operation.path): \(response.status)")
                } else {
                    XCTAssertEqual(response.status, 403, "\(scope.rawValue) must not allow \(operation.method) \(operation.path)")
                    XCTAssertTrue((response.json["detail"] as? String)?.contains(operation.scope.rawValue) ?? false, "403 names the scope: \(response.text)")
                }
            }
        }
        // Revoking last: it changes the target.
        let auditor = try await harness.key(council, scopes: [.auditRead])
        XCTAssertEqual(try harness.send("POST", "/v1/admin/keys/\(targetID)/revoke", key: auditor).status, 403)
        let admin = try await harness.key(council, scopes: [.admin])
        XCTAssertEqual(try harness.send("POST", "/v1/admin/keys/\(targetID)/revoke", key: admin).status, 200)
        XCTAssertEqual(try harness.send("DELETE", "/v1/admin/keys/\(targetID)", key: admin).status, 405, "keys are revoked, never deleted")
    }

    // MARK: The tenant comes from the key

    func testATenantInTheQueryOrBodyIsRejected() async throws {
        let admin = try await harness.key(council, scopes: [.admin])
        let query = try harness.send("GET", "/v1/admin/keys?tenant_id=\(council.id.lowercased)", key: admin)
        XCTAssertEqual(query.status, 400)
        XCTAssertEqual((query.json["errors"] as? [[String: Any]])?.first?["field"] as? String, "tenant_id")
        let body = try harness.send("POST", "/v1/admin/keys", key: admin,
                                    body: #"{"name":"x","scopes":["admin"],"tenant_id":"\#(council.id.lowercased)"}"#)
        XCTAssertEqual(body.status, 422)
        XCTAssertEqual((body.json["errors"] as? [[String: Any]])?.first?["field"] as? String, "tenant_id")
    }

    func testAnOrganisationKeyCreatesKeysOnlyForItsOrganisation() async throws {
        let mine = try await harness.organisation("advocacy", in: council)
        _ = try await harness.organisation("provider", in: council)
        let partnerAdmin = try await harness.key(council, scopes: [.admin, .feedbackRead], organisation: mine)
        let bound = try harness.send("POST", "/v1/admin/keys", key: partnerAdmin, body: #"{"name":"portal","scopes":["feedback:read"]}"#)
        XCTAssertEqual(bound.status, 201)
        XCTAssertEqual(bound.json["organisation"] as? String, "advocacy", "a partner's key makes keys bound to the partner")
        let escalation = try harness.send("POST", "/v1/admin/keys", key: partnerAdmin,
                                          body: #"{"name":"portal","scopes":["feedback:read"],"organisation":"provider"}"#)
        XCTAssertEqual(escalation.status, 422)
    }

    // MARK: Validation of the admin API

    func testCreatingAKeyValidatesEveryFieldAtOnce() async throws {
        let admin = try await harness.key(council, scopes: [.admin, .feedbackWrite])
        let response = try harness.send("POST", "/v1/admin/keys", key: admin,
                                        body: #"{"name":"","scopes":["admin","sudo"],"expires_on":"2020-01-01","colour":"red"}"#)
        XCTAssertEqual(response.status, 422)
        let fields = Set((response.json["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String })
        XCTAssertEqual(fields, ["name", "scopes[1]", "expires_on", "colour"])
        XCTAssertEqual(try harness.send("POST", "/v1/admin/keys", key: admin, body: #"{"name":"a","name":"b","scopes":["admin"]}"#).status, 400,
                       "duplicate keys are rejected")
        let created = try harness.send("POST", "/v1/admin/keys", key: admin, body: #"{"name":"nightly batch","scopes":["feedback:write"],"expires_on":"2099-12-31"}"#)
        XCTAssertEqual(created.status, 201)
        let id = try XCTUnwrap(created.json["id"] as? String)
        XCTAssertEqual(created.header("Location"), "/v1/admin/keys/\(id)")
        let secret = try XCTUnwrap(created.json["key"] as? String)
        XCTAssertNotNil(APIKeySecret(text: secret))
        XCTAssertEqual(created.json["expires_on"] as? String, "2099-12-31")
        let read = try harness.send("GET", "/v1/admin/keys/\(id)", key: admin)
        XCTAssertNil(read.json["key"], "the secret is shown once, at creation")
        XCTAssertFalse(read.text.contains(secret))
        XCTAssertEqual(try harness.send("GET", "/v1/admin/keys/not-a-uuid", key: admin).status, 404)
    }

    func testKeysPageWithoutSkippingOrRepeating() async throws {
        let admin = try await harness.key(council, scopes: [.admin])
        for index in 0..<7 { _ = try await harness.key(council, scopes: [.reportsRead], name: "k\(index)") }
        var seen: [String] = []
        var target = "/v1/admin/keys?limit=3"
        var pages = 0
        while true {
            let page = try harness.send("GET", target, key: admin)
            XCTAssertEqual(page.status, 200)
            seen += page.items.compactMap { $0["id"] as? String }
            pages += 1
            guard let next = page.json["next_cursor"] as? String else {
                XCTAssertNil(page.header("Link"))
                break
            }
            XCTAssertEqual(page.header("Link"), "</v1/admin/keys?limit=3&cursor=\(next)>; rel=\"next\"")
            target = "/v1/admin/keys?limit=3&cursor=\(next)"
        }
        XCTAssertEqual(seen.count, 8)
        XCTAssertEqual(Set(seen).count, 8)
        XCTAssertEqual(pages, 3)
        XCTAssertEqual(try harness.send("GET", "/v1/admin/keys?cursor=garbage", key: admin).status, 400)
        XCTAssertEqual(try harness.send("GET", "/v1/admin/keys?limit=501", key: admin).status, 400)
        XCTAssertEqual(try harness.send("GET", "/v1/admin/keys?colour=red", key: admin).status, 400)
        XCTAssertEqual(try harness.send("GET", "/v1/admin/keys?format=csv", key: admin).status, 400, "no CSV here: never silently JSON")
        XCTAssertEqual(try harness.send("GET", "/v1/admin/keys?format=json", key: admin).status, 200)
    }

    // MARK: The audit trail

    func testReadsAndWritesAreAuditedWithTheirWork() async throws {
        let admin = try await harness.key(council, scopes: [.admin, .auditRead])
        _ = try harness.send("GET", "/v1/admin/keys", key: admin, headers: ["X-Request-Id": "audit-list"])
        let created = try harness.send("POST", "/v1/admin/keys", key: admin, body: #"{"name":"n","scopes":["admin"]}"#,
                                       headers: ["X-Request-Id": "audit-create"])
        let id = try XCTUnwrap(created.json["id"] as? String)
        _ = try harness.send("GET", "/v1/admin/keys/\(id)", key: admin, headers: ["X-Request-Id": "audit-read"])
        _ = try harness.send("POST", "/v1/admin/keys/\(id)/revoke", key: admin, headers: ["X-Request-Id": "audit-revoke"])
        _ = try harness.send("GET", "/v1/admin/keys/\(UUID().lowercased)", key: admin, headers: ["X-Request-Id": "audit-missing"])
        let invalid = try harness.send("POST", "/v1/admin/keys", key: admin, body: #"{"name":""}"#, headers: ["X-Request-Id": "audit-invalid"])
        XCTAssertEqual(invalid.status, 422)

        let expectations: [(String, String, String, String?)] = [
            ("audit-list", "list", "success", nil), ("audit-create", "create", "success", id),
            ("audit-read", "read", "success", id), ("audit-revoke", "update", "success", id),
        ]
        for (requestID, action, outcome, resource) in expectations {
            let rows = try await harness.auditRows(requestID: requestID)
            XCTAssertEqual(rows.count, 1, requestID)
            XCTAssertEqual(rows.first?.action, action, requestID)
            XCTAssertEqual(rows.first?.outcome, outcome, requestID)
            XCTAssertEqual(rows.first?.tenant, council.id, requestID)
            if let resource { XCTAssertEqual(rows.first?.resourceID, resource, requestID) }
        }
        let missing = try await harness.auditRows(requestID: "audit-missing")
        XCTAssertEqual(missing.first?.outcome, "not_found")
        let invalidRows = try await harness.auditRows(requestID: "audit-invalid")
        XCTAssertEqual(invalidRows.count, 0, "nothing was written, nothing is audited as written")

        let listed = try harness.send("GET", "/v1/audit?action=create&resource_type=api_key", key: admin)
        XCTAssertEqual(listed.status, 200)
        XCTAssertEqual(listed.items.first?["request_id"] as? String, "audit-create")
        XCTAssertEqual(try harness.send("GET", "/v1/audit?action=sneeze", key: admin).status, 400)
    }

    func testTheRuntimeRoleCanOnlyAppendToTheAuditTrail() async throws {
        let admin = try await harness.key(council, scopes: [.admin])
        _ = try harness.send("GET", "/v1/admin/keys", key: admin)
        let runtime = PostgresPool(configuration: harness.database.runtime, size: 1)
        defer { runtime.shutdown() }
        let settings = [(name: "heard.tenant_id", value: council.id.lowercased)]
        for statement: PostgresQuery in ["UPDATE audit_events SET outcome = 'forbidden'", "DELETE FROM audit_events", "TRUNCATE audit_events"] {
            do {
                try await runtime.transaction(settings: settings) { tx in try await tx.execute(statement) }
                XCTFail("the runtime role could run \(statement.sql)")
            } catch let error as PostgresError {
                XCTAssertEqual(error.sqlState, "42501", "\(statement.sql): \(error)")
            }
        }
        let count = try await runtime.transaction(settings: settings) { tx in
            try await tx.query("SELECT count(*)::int FROM audit_events").first?.decode(Int.self, at: 0)
        }
        XCTAssertEqual(count, 1)
    }

    // MARK: Rate limits

    func testBurstThen429WithRetryAfter() async throws {
        await harness.stop()
        harness = try await AccessHarness.start(access: .init(ratePerSecond: 1, burst: 3))
        council = try await harness.tenant("redcar")
        let key = try await harness.key(council, scopes: [.admin])
        let other = try await harness.key(council, scopes: [.admin])
        for _ in 0..<3 { XCTAssertEqual(try harness.send("GET", "/v1/admin/keys", key: key).status, 200) }
        let limited = try harness.send("GET", "/v1/admin/keys", key: key)
        XCTAssertEqual(limited.status, 429)
        XCTAssertEqual(limited.header("Retry-After"), "1")
        XCTAssertEqual(try harness.send("GET", "/v1/admin/keys", key: other).status, 200, "limits are per key")
        try await Task.sleep(nanoseconds: 1_100_000_000)
        XCTAssertEqual(try harness.send("GET", "/v1/admin/keys", key: key).status, 200, "the bucket refills")
    }

    // MARK: Logs

    func testKeysAndRequestContentNeverReachTheLogs() async throws {
        let requestLog = try harness.serveOverSockets()
        let key = try await harness.key(council, scopes: [.admin])
        let canary = "canary-comment-7f3e1d"
        _ = try harness.send("POST", "/v1/admin/keys", key: key, body: #"{"name":"\#(canary)","scopes":["admin"]}"#)
        _ = try harness.send("GET", "/v1/admin/keys?cursor=\(canary)", key: key)
        _ = try harness.send("GET", "/v1/admin/keys", key: key + "x")
        let log = requestLog.text()
        XCTAssertFalse(log.isEmpty)
        XCTAssertFalse(log.contains(canary), "request content reached the log")
        XCTAssertFalse(log.contains(String(key.suffix(43))), "a key's secret reached the log")
        XCTAssertTrue(log.contains("\"key_id\":\"\(try XCTUnwrap(APIKeySecret(text: key)).id.lowercased)\""), "the key's id is logged")
    }
}

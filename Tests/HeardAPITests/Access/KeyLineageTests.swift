import Foundation
import HTTPServer
import HeardAPI
import HeardTesting
import Postgres
import XCTest

/// A key minted through the API is never stronger than the key that minted it, and does not
/// outlive it: at most its scopes, expiring no later, revoked with it.
final class KeyLineageTests: CouncilTestCase {
    private var nextMonth: CalendarDate { CalendarDate(utcDayOf: Date().addingTimeInterval(30 * 86_400)) }

    /// A key made as the owner (`heard keys create`), expiring `expiresOn`, minted by `createdBy`.
    private func ownerKey(scopes: [Scope], expiresOn: CalendarDate?, createdBy: UUID? = nil) async throws -> (id: UUID, text: String) {
        let (record, text) = try await harness.ownerPool.transaction(settings: [("heard.tenant_id", council.id.lowercased)]) { tx in
            try await KeyStore.create(on: tx, tenantID: council.id, organisationID: nil, name: "owner made",
                                      scopes: scopes, expiresOn: expiresOn, createdBy: createdBy)
        }
        return (record.id, text)
    }

    private func mint(_ key: String, _ body: String) throws -> RawResponse {
        try harness.send("POST", "/v1/admin/keys", key: key, body: body)
    }

    func testAMintedKeyHasAtMostItsCreatorsScopesAndExpiry() async throws {
        let parent = try await ownerKey(scopes: [.admin], expiresOn: nextMonth)
        let escalate = try mint(parent.text, #"{"name":"child","scopes":["admin","audit:read","free_text:read"]}"#)
        XCTAssertEqual(escalate.status, 422, escalate.text)
        let errors = escalate.json["errors"] as? [[String: String]] ?? []
        XCTAssertEqual(errors.map { $0["field"] }, ["scopes"])
        XCTAssertTrue(errors.first?["message"]?.contains("audit:read, free_text:read") == true, "\(errors)")

        let later = CalendarDate(utcDayOf: Date().addingTimeInterval(60 * 86_400))
        let outlive = try mint(parent.text, #"{"name":"child","scopes":["admin"],"expires_on":"\#(later)"}"#)
        XCTAssertEqual(outlive.status, 422, outlive.text)

        // Without an expiry of its own, it takes its creator's.
        let child = try mint(parent.text, #"{"name":"child","scopes":["admin"]}"#)
        XCTAssertEqual(child.status, 201, child.text)
        XCTAssertEqual(child.json["expires_on"] as? String, nextMonth.description)
    }

    func testRevokingAKeyRevokesTheKeysItMinted() async throws {
        let root = try await ownerKey(scopes: [.admin], expiresOn: nil)
        let child = try mint(root.text, #"{"name":"child","scopes":["admin"]}"#)
        let childKey = try XCTUnwrap(child.json["key"] as? String)
        let grandchild = try mint(childKey, #"{"name":"grandchild","scopes":["admin"]}"#)
        let grandchildKey = try XCTUnwrap(grandchild.json["key"] as? String)
        XCTAssertEqual(try harness.send("GET", "/v1/admin/keys", key: grandchildKey).status, 200)

        let childID = try XCTUnwrap(child.json["id"] as? String)
        XCTAssertEqual(try harness.send("POST", "/v1/admin/keys/\(childID)/revoke", key: root.text).status, 200)
        XCTAssertEqual(try harness.send("GET", "/v1/admin/keys", key: childKey).status, 401)
        XCTAssertEqual(try harness.send("GET", "/v1/admin/keys", key: grandchildKey).status, 401)
        let grandchildID = try XCTUnwrap(grandchild.json["id"] as? String)
        let record = try harness.send("GET", "/v1/admin/keys/\(grandchildID)", key: root.text)
        XCTAssertNotNil(record.json["revoked_at"] as? String, "the minted key's record shows it revoked")
        XCTAssertEqual(try harness.send("GET", "/v1/admin/keys", key: root.text).status, 200, "the revoker is untouched")
    }

    /// Keys minted before the checks existed: authentication follows the chain all the same.
    func testAKeyWhoseCreatorIsRevokedOrExpiredIsRefusedAtAuthentication() async throws {
        let parent = try await ownerKey(scopes: [.admin], expiresOn: nil)
        let child = try await ownerKey(scopes: [.admin, .auditRead, .freeTextRead], expiresOn: nil, createdBy: parent.id)
        // Its scopes are cut to its creator's.
        XCTAssertEqual(try harness.send("GET", "/v1/audit", key: child.text).status, 403)
        XCTAssertEqual(try harness.send("GET", "/v1/admin/keys", key: child.text).status, 200)

        try await harness.changeKeysAsOwner("UPDATE api_keys SET revoked_at = now() WHERE id = \(parent.id)")
        let refused = try harness.send("GET", "/v1/admin/keys", key: child.text)
        XCTAssertEqual(refused.status, 401)

        let expiring = try await ownerKey(scopes: [.admin], expiresOn: nextMonth)
        let heir = try await ownerKey(scopes: [.admin], expiresOn: nil, createdBy: expiring.id)
        XCTAssertEqual(try harness.send("GET", "/v1/admin/keys", key: heir.text).status, 200)
        try await harness.changeKeysAsOwner("UPDATE api_keys SET expires_on = current_date WHERE id = \(expiring.id)")
        XCTAssertEqual(try harness.send("GET", "/v1/admin/keys", key: heir.text).status, 401)
    }
}

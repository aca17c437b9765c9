import Foundation
import HTTPServer
@testable import HeardAPI
import HeardTesting
import Postgres
import XCTest

/// A key is answered from memory after its first use, and a revocation reaches every instance:
/// two instances of the service on one database, as behind a load balancer.
final class KeyCacheTests: CouncilTestCase {
    /// A second instance on the harness's database.
    private func secondInstance(_ access: AccessControl.Configuration = .init()) throws -> AppHarness {
        try AppHarness.start(database: harness.database.runtime, migrator: try Migrator(directory: AppHarness.migrationsDirectory),
                             access: access, overSockets: false)
    }

    /// `key` authenticated on `instance` from memory: its cache holds it after a request.
    private func cached(_ key: String, on instance: AppHarness) async throws {
        XCTAssertEqual(instance.client.send("GET", "/v1/admin/keys", headers: [("Authorization", "Bearer \(key)")]).status, 200)
        try await instance.access.keys.waitUntilListening()
        XCTAssertEqual(instance.client.send("GET", "/v1/admin/keys", headers: [("Authorization", "Bearer \(key)")]).status, 200)
        let secret = try XCTUnwrap(APIKeySecret(text: key))
        XCTAssertNotNil(instance.access.keys.principal(keyID: secret.id, secretHash: secret.secretHash), "the key is known in memory")
    }

    func testARevocationThroughTheAPIOnOneInstanceIsRefusedByTheOther() async throws {
        let other = try secondInstance()
        let admin = try await harness.key(council, scopes: [.admin])
        let victim = try await harness.key(council, scopes: [.admin])
        try await cached(victim, on: other)
        try await cached(admin, on: other)

        let victimID = try XCTUnwrap(APIKeySecret(text: victim)).id.lowercased
        try await other.access.keys.waitForChange {
            XCTAssertEqual(try harness.send("POST", "/v1/admin/keys/\(victimID)/revoke", key: admin).status, 200)
        }
        let refused = other.client.send("GET", "/v1/admin/keys", headers: [("Authorization", "Bearer \(victim)")])
        XCTAssertEqual(refused.status, 401)
        XCTAssertEqual(refused.json["detail"] as? String, "This API key, or the key that created it, has been revoked.")
        XCTAssertEqual(other.client.send("GET", "/v1/admin/keys", headers: [("Authorization", "Bearer \(admin)")]).status, 200,
                       "other keys still work, from the database and then from memory again")
        await other.stop()
    }

    func testARevocationByTheCommandLineReachesARunningInstance() async throws {
        let key = try await harness.key(council, scopes: [.admin])
        try await cached(key, on: harness.app)
        let id = try XCTUnwrap(APIKeySecret(text: key)).id
        // What `heard keys revoke` runs, as the owner.
        try await harness.app.access.keys.waitForChange {
            _ = try await harness.ownerPool.transaction(settings: [("heard.tenant_id", council.id.lowercased)]) { tx in
                try await KeyStore.revoke(on: tx, tenantID: council.id, id: id)
            }
        }
        XCTAssertEqual(try harness.send("GET", "/v1/admin/keys", key: key).status, 401)
    }

    /// While its listener is down an instance may miss a revocation, so it keeps no key in
    /// memory and asks PostgreSQL every time, until the listener is back.
    func testAnInstanceWhoseListenerIsLostForgetsEveryKeyUntilItIsBack() async throws {
        var configuration = AccessControl.Configuration()
        configuration.keyListenerRetryInterval = .seconds(600)
        let other = try secondInstance(configuration)
        let key = try await harness.key(council, scopes: [.admin])
        let bystander = try await harness.key(council, scopes: [.admin])
        try await cached(key, on: other)

        let superuser = PostgresPool(configuration: harness.database.configuration, size: 1)
        defer { superuser.shutdown() }
        let ended = try await superuser.query("""
            SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN heard_api_keys%'
            """)
        XCTAssertFalse(ended.isEmpty, "a listener's session was found")
        let deadline = Date().addingTimeInterval(10)
        while other.access.keys.generation() != nil {
            guard Date() < deadline else { return XCTFail("the instance did not notice its listener was lost") }
            try await Task.sleep(for: .milliseconds(5))
        }
        XCTAssertEqual(other.access.keys.count, 0, "the cache was emptied")

        // A revocation now reaches no listener of this instance; it is refused all the same.
        let id = try XCTUnwrap(APIKeySecret(text: key)).id
        try await harness.ownerPool.execute("UPDATE api_keys SET revoked_at = now() WHERE id = \(id)")
        XCTAssertEqual(other.client.send("GET", "/v1/admin/keys", headers: [("Authorization", "Bearer \(key)")]).status, 401)
        XCTAssertEqual(other.client.send("GET", "/v1/admin/keys", headers: [("Authorization", "Bearer \(bystander)")]).status, 200)
        XCTAssertEqual(other.access.keys.count, 0, "nothing is kept while the listener is down")
        await other.stop()
    }

    /// A lookup that read a key before its revocation committed, and is answered after the
    /// notification emptied the cache, must not put the key back.
    func testALookupOverlappingARevocationIsNotKept() throws {
        let cache = KeyCache()
        let principal = Principal(keyID: UUID(), tenantID: UUID(), organisationID: nil, scopes: [.admin])
        XCTAssertNil(cache.generation(), "nothing is cached before the listener listens")
        cache.handle(.listening)
        let during = try XCTUnwrap(cache.generation())
        cache.handle(.notification(channel: KeyCache.channel, payload: ""))
        cache.store(principal, secretHash: "hash", generation: during)
        XCTAssertNil(cache.principal(keyID: principal.keyID, secretHash: "hash"))

        let after = try XCTUnwrap(cache.generation())
        cache.store(principal, secretHash: "hash", generation: after)
        XCTAssertNotNil(cache.principal(keyID: principal.keyID, secretHash: "hash"))
        XCTAssertNil(cache.principal(keyID: principal.keyID, secretHash: "another"), "the secret must match")
        cache.handle(.lost)
        XCTAssertNil(cache.principal(keyID: principal.keyID, secretHash: "hash"))
        XCTAssertNil(cache.generation())
    }
}

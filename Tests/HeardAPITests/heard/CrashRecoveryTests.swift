import Foundation
import HeardAPI
import HeardTesting
import Postgres
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A council system whose request was committed but never answered (the service died) retries,
/// and a new process answers with the record the first one stored: nothing in memory is needed.
final class CrashRecoveryTests: XCTestCase {
    func testARetryAfterTheServiceWasKilledOnceTheRecordWasCommittedReturnsTheOriginalRecord() async throws {
        let database = try await ScratchDatabase.create()
        let environment: [String: String?] = [
            "DATABASE_URL": try database.url(as: DatabaseRoles.runtimeLogin),
            "MIGRATION_DATABASE_URL": try database.url(as: DatabaseRoles.owner),
            "LOG_LEVEL": "warn",
        ]
        let superuser = PostgresPool(configuration: database.configuration, size: 1)
        func stored(_ externalID: String) async throws -> [(id: UUID, kind: String)] {
            try await superuser.query("SELECT id, kind FROM feedback WHERE external_id = \(externalID)").map {
                (try $0.decode(UUID.self, column: "id"), try $0.decode(String.self, column: "kind"))
            }
        }
        func serve() throws -> (Process, Int) {
            let port = try freePort()
            let (process, _, _) = try HeardBinary.start(["serve", "--port", String(port)], environment: environment)
            XCTAssertTrue(try waitForStatus(port: port, path: "/readyz", status: 200), "heard serve never became ready")
            return (process, port)
        }
        func post(_ body: String, port: Int, key: String) throws -> RawClient {
            let client = try RawClient(port: port)
            client.send("POST /v1/feedback HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\nContent-Type: application/json\r\n"
                        + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
            return client
        }

        let (first, firstPort) = try serve()
        XCTAssertEqual(try HeardBinary.run(["tenants", "create", "dudley", "--name", "Dudley"], environment: environment).status, 0)
        let key = try HeardBinary.run(["keys", "create", "--tenant", "dudley", "--name", "mosaic", "--scopes", "feedback:write,feedback:read"],
                                      environment: environment).output.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(key.hasPrefix("heard_"), key)

        // The request goes out and its answer is never read, as when the service dies mid-reply.
        let body = FeedbackSamples.body(externalID: "crash-1", overrides: ["safeguarding_concern": "true"])
        _ = try post(body, port: firstPort, key: key)
        let deadline = Date().addingTimeInterval(20)
        while try await stored("crash-1").isEmpty, Date() < deadline { try await Task.sleep(for: .milliseconds(5)) }
        let original = try await stored("crash-1")
        XCTAssertEqual(original.count, 1, "the record was committed")
        // Killed outright: no graceful shutdown, nothing flushed, nothing kept in memory.
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()

        let (second, secondPort) = try serve()
        let retry = try XCTUnwrap(try post(body, port: secondPort, key: key).readResponse())
        XCTAssertEqual(retry.status, 200, retry.text)
        XCTAssertEqual(retry.json["id"] as? String, original.first?.id.lowercased, "the original record, not a new one")
        XCTAssertEqual(retry.header("Location"), "/v1/feedback/\(original.first?.id.lowercased ?? "?")")
        XCTAssertEqual((retry.json["safeguarding_alert"] as? [String: Any])?["status"] as? String, "open", "its alert was stored with it")
        let changed = try XCTUnwrap(try post(FeedbackSamples.body(externalID: "crash-1", overrides: ["kind": #""concern""#]),
                                             port: secondPort, key: key).readResponse())
        XCTAssertEqual(changed.status, 409)
        XCTAssertEqual(changed.json["existing_id"] as? String, original.first?.id.lowercased)
        let after = try await stored("crash-1")
        XCTAssertEqual(after.map(\.id), original.map(\.id), "still exactly one record")
        let alerts = try await superuser.query("SELECT count(*) AS n FROM safeguarding_alerts").first?.decode(Int.self, column: "n")
        XCTAssertEqual(alerts, 1)

        kill(second.processIdentifier, SIGTERM)
        second.waitUntilExit()
        superuser.shutdown()
        await database.drop()
    }
}

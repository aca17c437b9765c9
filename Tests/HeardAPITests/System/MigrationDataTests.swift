import Foundation
import HeardAPI
import HeardTesting
import Postgres
import XCTest

/// Migrations that move data keep every record as it read before.
final class MigrationDataTests: XCTestCase {
    /// A new database with every migration numbered before `first` applied, and none after.
    static func database(migratedBefore first: String) async throws -> ScratchDatabase {
        let database = try await ScratchDatabase.create()
        let early = FileManager.default.temporaryDirectory.appendingPathComponent("heard-migrations-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: early, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: early) }
        for file in try FileManager.default.contentsOfDirectory(atPath: AppHarness.migrationsDirectory.path) where file < first {
            try FileManager.default.copyItem(at: AppHarness.migrationsDirectory.appendingPathComponent(file),
                                             to: early.appendingPathComponent(file))
        }
        _ = try Migrator(directory: early).migrate(configuration: database.owner)
        return database
    }

    /// 0007 moves scored responses from feedback_responses rows into the record's own arrays.
    func testResponsesStoredBefore0007ReadTheSameAfterIt() async throws {
        let database = try await Self.database(migratedBefore: "0007")

        // Three records as 0006 stored them: two responses, one, none.
        let owner = PostgresPool(configuration: database.owner, size: 1)
        let tenant = try await Registry.createTenant(on: owner, slug: "walsall", name: "Walsall Council")
        owner.shutdown()
        let superuser = PostgresPool(configuration: database.configuration, size: 1)
        try await superuser.withConnection { connection in
            try await connection.simpleExecute("""
                INSERT INTO feedback (tenant_id, source_system, external_id, channel, respondent_role, age_band, service_area, stage,
                                      kind, given_at, anonymous, consent_to_follow_up, safeguarding_concern, content_hash)
                SELECT '\(tenant.id.lowercased)', 'mosaic', 'old-' || g, 'survey', 'child', '8_to_12', 'early_help', 'review',
                       'general', '2026-05-01T10:00:00Z', false, false, false, 'h' || g
                  FROM generate_series(1, 3) AS g;
                INSERT INTO feedback_responses (tenant_id, feedback_id, measure_id, measure_version, score)
                SELECT f.tenant_id, f.id, m.id, 1, CASE m.code WHEN 'listened_to' THEN 4 ELSE 2 END
                  FROM feedback f JOIN measures m ON m.tenant_id = f.tenant_id
                 WHERE (f.external_id = 'old-1' AND m.code IN ('listened_to', 'worker_knows_me'))
                    OR (f.external_id = 'old-2' AND m.code = 'listened_to');
                """)
        }
        superuser.shutdown()

        let harness = try await AccessHarness.start(on: database)
        do {
            let reader = try await harness.key(tenant, scopes: [.feedbackRead])
            let listed = try harness.send("GET", "/v1/feedback", key: reader)
            XCTAssertEqual(listed.status, 200, listed.text)
            var scores: [String: [String: Int]] = [:]
            for item in listed.items {
                let responses = item["responses"] as? [[String: Any]] ?? []
                scores[item["external_id"] as? String ?? "?"] = Dictionary(uniqueKeysWithValues: responses.map {
                    ($0["measure"] as? String ?? "?", $0["score"] as? Int ?? -1)
                })
                XCTAssertTrue(responses.allSatisfy { $0["measure_version"] as? Int == 1 && $0["wording"] is String })
            }
            XCTAssertEqual(scores, ["old-1": ["listened_to": 4, "worker_knows_me": 2], "old-2": ["listened_to": 4], "old-3": [:]])
            let byMeasure = try harness.send("GET", "/v1/feedback?measure=worker_knows_me", key: reader)
            XCTAssertEqual(byMeasure.items.map { $0["external_id"] as? String }, ["old-1"])
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    /// 0009 gives alerts a version and a lifecycle history: one acknowledged before it is at
    /// version 2 with its acknowledgement in the history; an open one is at version 1 with none.
    func testAlertsAcknowledgedBefore0009HaveTheirHistoryAfterIt() async throws {
        let database = try await Self.database(migratedBefore: "0009")
        let owner = PostgresPool(configuration: database.owner, size: 1)
        let tenant = try await Registry.createTenant(on: owner, slug: "sandwell", name: "Sandwell Council")
        owner.shutdown()
        let superuser = PostgresPool(configuration: database.configuration, size: 1)
        try await superuser.withConnection { connection in
            try await connection.simpleExecute("""
                INSERT INTO feedback (tenant_id, source_system, external_id, channel, respondent_role, age_band, service_area, stage,
                                      kind, given_at, anonymous, consent_to_follow_up, safeguarding_concern, content_hash)
                SELECT '\(tenant.id.lowercased)', 'mosaic', 'concern-' || g, 'survey', 'child', '8_to_12', 'early_help', 'review',
                       'concern', '2026-05-01T10:00:00Z', false, false, true, 'h' || g
                  FROM generate_series(1, 2) AS g;
                INSERT INTO safeguarding_alerts (tenant_id, feedback_id, status, acknowledged_at, acknowledged_by, action_taken)
                SELECT tenant_id, id, CASE external_id WHEN 'concern-1' THEN 'acknowledged' ELSE 'open' END,
                       CASE external_id WHEN 'concern-1' THEN timestamptz '2026-05-01T12:00:00Z' END,
                       CASE external_id WHEN 'concern-1' THEN 'Duty manager' END,
                       CASE external_id WHEN 'concern-1' THEN 'Referred to MASH' END
                  FROM feedback;
                """)
        }
        superuser.shutdown()

        let harness = try await AccessHarness.start(on: database)
        do {
            let reader = try await harness.key(tenant, scopes: [.feedbackRead, .feedbackWrite])
            let listed = try harness.send("GET", "/v1/safeguarding-alerts", key: reader)
            XCTAssertEqual(listed.status, 200, listed.text)
            let byStatus = Dictionary(uniqueKeysWithValues: listed.items.map { ($0["status"] as? String ?? "?", $0) })
            XCTAssertEqual(byStatus["acknowledged"]?["version"] as? Int, 2)
            XCTAssertEqual(byStatus["open"]?["version"] as? Int, 1)
            let migrated = try await harness.superuserCount("""
                SELECT count(*) FROM lifecycle_history
                 WHERE action = 'acknowledge' AND version = 2 AND occurred_at = timestamptz '2026-05-01T12:00:00Z'
                   AND details = '{"acknowledged_by": "Duty manager"}'::jsonb
                """)
            XCTAssertEqual(migrated, 1)
            let all = try await harness.superuserCount("SELECT count(*) FROM lifecycle_history")
            XCTAssertEqual(all, 1)
            let openID = try XCTUnwrap(byStatus["open"]?["id"] as? String)
            let acknowledged = try harness.send("POST", "/v1/safeguarding-alerts/\(openID)/acknowledge", key: reader,
                                                body: #"{"acknowledged_by":"Team manager","action_taken":"Visited"}"#, headers: ["If-Match": "\"1\""])
            XCTAssertEqual(acknowledged.status, 200, acknowledged.text)
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }
}

import Foundation
@testable import HeardAPI
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

    /// A database migrated up to `migration` (not included), with a tenant, and the rows `seed`
    /// writes for it as a superuser (as the older migrations stored them).
    static func tenant(_ slug: String, _ name: String, before migration: String,
                       seed: (Registry.Tenant) -> String) async throws -> (ScratchDatabase, Registry.Tenant) {
        let database = try await Self.database(migratedBefore: migration)
        // The tenant as the code of that time made it (its measures, from 0003), then the seed.
        let tenant = Registry.Tenant(id: UUID(), slug: slug, name: name)
        let superuser = PostgresPool(configuration: database.configuration, size: 1)
        defer { superuser.shutdown() }
        try await superuser.withConnection { connection in
            try await connection.simpleExecute("""
                INSERT INTO tenants (id, slug, name) VALUES ('\(tenant.id.lowercased)', '\(slug)', '\(name)');
                SELECT heard_seed_default_measures('\(tenant.id.lowercased)');
                \(seed(tenant))
                """)
        }
        return (database, tenant)
    }

    /// Heard on `database` (migrated to the end) for `body`, stopped after it whatever happens.
    static func serve(_ database: ScratchDatabase, _ body: (AccessHarness) async throws -> Void) async throws {
        let harness = try await AccessHarness.start(on: database)
        do {
            try await body(harness)
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    /// 0007 moves scored responses from feedback_responses rows into the record's own arrays.
    func testResponsesStoredBefore0007ReadTheSameAfterIt() async throws {
        // Three records as 0006 stored them: two responses, one, none.
        let (database, tenant) = try await Self.tenant("walsall", "Walsall Council", before: "0007") { tenant in
            """
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
            """
        }

        try await Self.serve(database) { harness in
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
        }
    }

    /// 0009 gives alerts a version and a lifecycle history: one acknowledged before it is at
    /// version 2 with its acknowledgement in the history; an open one is at version 1 with none.
    func testAlertsAcknowledgedBefore0009HaveTheirHistoryAfterIt() async throws {
        let (database, tenant) = try await Self.tenant("sandwell", "Sandwell Council", before: "0009") { tenant in
            """
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
            """
        }

        try await Self.serve(database) { harness in
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
        }
    }

    /// 0019 keeps the annual complaint figures as complaints change: the complaints and learning
    /// actions recorded before it are counted once when it runs.
    func testComplaintsRecordedBefore0019AreInTheFiguresAfterIt() async throws {
        let (database, tenant) = try await Self.tenant("dudley", "Dudley Council", before: "0019") { tenant in
            """
                INSERT INTO complaints (tenant_id, source_system, external_id, reference, procedure, timescales, received_on,
                                        complainant_role, service_area, categories, advocacy_offered, stage, status, stage_started_on,
                                        allowance, responded_on, outcome, content_hash, created_by,
                                        stage_responded_on, stage_on_time, stage_working_days)
                SELECT '\(tenant.id.lowercased)', 'icasework', 'old-' || g, 'CMP-2025-0000' || g, 'statutory_children_act', '[]',
                       '2025-03-03', 'young_person', 'children_looked_after', ARRAY['delay'], true, 1,
                       CASE g WHEN 1 THEN 'responded' ELSE 'received' END, '2025-03-03', 10,
                       CASE g WHEN 1 THEN date '2025-03-10' END, CASE g WHEN 1 THEN 'upheld' END, 'h' || g,
                       '00000000-0000-0000-0000-000000000000',
                       CASE g WHEN 1 THEN ARRAY[date '2025-03-10'] ELSE '{}' END, CASE g WHEN 1 THEN ARRAY[true] ELSE '{}' END,
                       CASE g WHEN 1 THEN ARRAY[5] ELSE '{}' END
                  FROM generate_series(1, 2) AS g;
                INSERT INTO complaint_learning_actions (tenant_id, complaint_id, complaint_received_on, action, status, created_by)
                SELECT tenant_id, id, received_on, 'Lesson', 'in_progress', created_by FROM complaints WHERE external_id = 'old-1';
            """
        }

        try await Self.serve(database) { harness in
            let analyst = try await harness.key(tenant, scopes: [.reportsRead, .smallNumbersRead])
            let report = try harness.send("GET", "/v1/reports/complaints?from=2025-01-01&to=2025-12-31", key: analyst)
            XCTAssertEqual(report.status, 200, report.text)
            var figures: [String: Any] = [:]
            for table in report.json["tables"] as? [[String: Any]] ?? [] {
                for row in table["rows"] as? [[String: Any]] ?? [] {
                    for (name, value) in row where name != "key" {
                        figures["\(table["name"] ?? "?")/\(row["key"] ?? "?")/\(name)"] = (value as? [String: Any])?["value"]
                    }
                }
            }
            XCTAssertEqual(figures["total/all/complaints"] as? Int, 2)
            XCTAssertEqual(figures["status/received/complaints"] as? Int, 1)
            XCTAssertEqual(figures["outcome/upheld/complaints"] as? Int, 1)
            XCTAssertEqual(figures["category/delay/complaints"] as? Int, 2)
            XCTAssertEqual(figures["responses/1/within_time"] as? Int, 1)
            XCTAssertEqual(figures["responses/1/median_working_days"] as? Int, 5)
            XCTAssertEqual(figures["learning_actions/in_progress/actions"] as? Int, 1)
        }
    }
}

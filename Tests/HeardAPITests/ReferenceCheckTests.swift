import Foundation
import HeardAPI
import HeardTesting
import Postgres
import XCTest

/// Records refer to their tenant and to the measure version a response was given against. The
/// database refuses a reference to a parent that does not exist (checked once per statement,
/// migration 0007), and refuses to delete or change those parents, even for the owner.
final class ReferenceCheckTests: XCTestCase {
    var harness: AccessHarness!
    var council: Registry.Tenant!

    override func setUp() async throws {
        harness = try await AccessHarness.start()
        council = try await harness.tenant("dudley")
    }

    override func tearDown() async throws {
        await harness?.stop()
    }

    private func sqlState(_ body: () async throws -> Void) async -> String? {
        do {
            try await body()
            return nil
        } catch let error as PostgresError {
            return error.sqlState
        } catch {
            return "\(error)"
        }
    }

    func testAResponseToAMeasureVersionThatDoesNotExistIsRefusedWithTheWholeStatement() async throws {
        let runtime = PostgresPool(configuration: harness.database.runtime, size: 1)
        defer { runtime.shutdown() }
        let settings = [("heard.tenant_id", council.id.lowercased), ("heard.organisation_id", "")]
        let state = await sqlState {
            try await runtime.transaction(settings: settings) { tx in
                let measures = try await tx.query("SELECT id FROM measures WHERE code IN ('listened_to', 'worker_knows_me') ORDER BY code")
                    .map { try $0.decode(UUID.self, column: "id") }
                try await tx.execute("""
                    WITH new AS (
                        INSERT INTO feedback (tenant_id, source_system, external_id, channel, respondent_role, age_band, service_area,
                                              stage, kind, given_at, anonymous, consent_to_follow_up, safeguarding_concern, content_hash)
                        VALUES (\(council.id), 'test', 'ref-1', 'survey', 'child', '8_to_12', 'early_help', 'review', 'general',
                                now(), false, false, false, 'x')
                        RETURNING id)
                    INSERT INTO feedback_responses (tenant_id, feedback_id, measure_id, measure_version, score)
                    SELECT \(council.id), new.id, m, v, 4 FROM new, unnest(\(measures)::uuid[], \([1, 99])::int[]) AS r (m, v)
                    """)
            }
        }
        XCTAssertEqual(state, "23503", "version 99 does not exist: a foreign key violation")
        let stored = try await harness.superuserCount("SELECT count(*) FROM feedback")
        XCTAssertEqual(stored, 0, "nothing of the statement is kept")
    }

    func testARecordForATenantThatDoesNotExistIsRefused() async throws {
        // As the owner, who may write any tenant's rows: the reference check still holds.
        let stranger = UUID()
        let state = await sqlState {
            try await harness.ownerPool.transaction(settings: [("heard.tenant_id", stranger.lowercased)]) { tx in
                _ = try await tx.execute("""
                    INSERT INTO audit_events (tenant_id, action, resource_type, outcome, status, request_id)
                    VALUES (\(stranger), 'read', 'feedback', 'success', 200, 'ref-test')
                    """)
            }
        }
        XCTAssertEqual(state, "23503")
    }

    func testTenantsAndMeasureVersionsCannotBeDeletedOrChanged() async throws {
        for statement: PostgresQuery in [
            "DELETE FROM tenants WHERE id = \(council.id)", "TRUNCATE tenants CASCADE",
            "UPDATE tenants SET id = gen_random_uuid() WHERE id = \(council.id)",
            "DELETE FROM measure_versions", "UPDATE measure_versions SET wording = 'changed'", "TRUNCATE measure_versions CASCADE",
        ] {
            let state = await sqlState { try await harness.ownerPool.execute(statement) }
            XCTAssertEqual(state, "23001", statement.sql)
        }
        let rename = await sqlState { try await harness.ownerPool.execute("UPDATE tenants SET name = 'Dudley MBC' WHERE id = \(council.id)") }
        XCTAssertNil(rename, "a tenant's other details may change")
    }
}

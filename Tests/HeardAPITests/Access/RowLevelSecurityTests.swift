import Foundation
import HeardAPI
import HeardTesting
import Postgres
import XCTest

/// Isolation is the database's, not only Swift's: these tests talk SQL as the runtime role.
final class RowLevelSecurityTests: XCTestCase {
    func testEveryTenantTableHasForcedRowLevelSecurityWithAPolicy() async throws {
        let harness = try await AccessHarness.start()
        let rows = try await harness.ownerPool.query("""
            SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   (SELECT count(*)::int FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
               AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
            """)
        XCTAssertGreaterThanOrEqual(rows.count, 4)
        for row in rows {
            let table = try row.decode(String.self, column: "relname")
            XCTAssertTrue(try row.decode(Bool.self, column: "relrowsecurity"), "\(table): RLS not enabled")
            XCTAssertTrue(try row.decode(Bool.self, column: "relforcerowsecurity"), "\(table): RLS not forced")
            XCTAssertGreaterThan(try row.decode(Int.self, column: "policies"), 0, "\(table): no policy")
        }
        let views = try await harness.ownerPool.query("""
            SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind = 'v'
               AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)
            """)
        XCTAssertEqual(try views.map { try $0.decode(String.self, at: 0) }, [], "views must be security_invoker")
        await harness.stop()
    }

    func testTheRuntimeRoleIsNoSuperuserNoBypassAndOwnsNothing() async throws {
        let harness = try await AccessHarness.start()
        let runtime = PostgresPool(configuration: harness.database.runtime, size: 1)
        defer { runtime.shutdown() }
        let row = try await runtime.query("""
            SELECT r.rolsuper, r.rolbypassrls,
                   (SELECT count(*)::int FROM pg_class c WHERE c.relowner = r.oid) AS owned
              FROM pg_roles r WHERE r.rolname = current_user
            """).first
        XCTAssertEqual(try row?.decode(Bool.self, column: "rolsuper"), false)
        XCTAssertEqual(try row?.decode(Bool.self, column: "rolbypassrls"), false)
        XCTAssertEqual(try row?.decode(Int.self, column: "owned"), 0)
        try await DatabaseRoles.checkRuntimeRole(runtime)

        let owner = PostgresPool(configuration: harness.database.owner, size: 1)
        defer { owner.shutdown() }
        do {
            try await DatabaseRoles.checkRuntimeRole(owner)
            XCTFail("serving as the owner must be refused")
        } catch let error as DatabaseRoles.UnsafeRuntimeRole {
            XCTAssertTrue(error.description.contains("owns tables"), error.description)
        }
        await harness.stop()
    }

    /// A role granted the owner, a superuser or a BYPASSRLS role can SET ROLE to it (or inherits
    /// its rights): start-up refuses it as it refuses those roles themselves.
    func testARuntimeRoleThatInheritsTheOwnerASuperuserOrBypassIsRefused() async throws {
        let harness = try await AccessHarness.start()
        let superuser = PostgresPool(configuration: harness.database.configuration, size: 1)
        let suffix = UUID().uuidString.prefix(8).lowercased()
        let groups = ["super": "SUPERUSER", "bypass": "BYPASSRLS"]
        var made: [String] = []
        for (group, attribute) in groups {
            try await superuser.execute("CREATE ROLE \(unsafeRaw: "heard_test_\(group)_\(suffix)") NOLOGIN \(unsafeRaw: attribute)")
            made.append("heard_test_\(group)_\(suffix)")
        }
        // Each member is also in the runtime group, as a real runtime role would be.
        let cases = [("owner", DatabaseRoles.owner, "owns tables"),
                     ("supermember", "heard_test_super_\(suffix)", "superuser"),
                     ("bypassmember", "heard_test_bypass_\(suffix)", "BYPASSRLS")]
        for (member, granted, problem) in cases {
            let role = "heard_test_\(member)_\(suffix)"
            // Through a middle role, so the membership is inherited, not direct.
            try await superuser.execute("CREATE ROLE \(unsafeRaw: role)_via NOLOGIN IN ROLE \(unsafeRaw: granted)")
            try await superuser.execute("CREATE ROLE \(unsafeRaw: role) LOGIN IN ROLE \(unsafeRaw: role)_via, \(unsafeRaw: DatabaseRoles.runtimeGroup)")
            made.insert(contentsOf: [role, "\(role)_via"], at: 0)
            let pool = PostgresPool(configuration: DatabaseRoles.connecting(harness.database.configuration, as: role), size: 1)
            do {
                try await DatabaseRoles.checkRuntimeRole(pool)
                XCTFail("a runtime role that inherits \(granted) must be refused")
            } catch let error as DatabaseRoles.UnsafeRuntimeRole {
                XCTAssertTrue(error.description.contains(problem), error.description)
            }
            pool.shutdown()
        }
        for role in made { try await superuser.execute("DROP ROLE IF EXISTS \(unsafeRaw: role)") }
        superuser.shutdown()
        await harness.stop()
    }

    func testWithNoTenantSetTheRuntimeRoleSeesNothingAndCannotInsert() async throws {
        let harness = try await AccessHarness.start()
        let council = try await harness.tenant("kirklees")
        _ = try await harness.organisation("advocacy", in: council)
        _ = try await harness.key(council, scopes: [.admin])
        let runtime = PostgresPool(configuration: harness.database.runtime, size: 1)
        defer { runtime.shutdown() }
        for table in ["tenants", "organisations", "api_keys", "audit_events"] {
            let count = try await runtime.query("SELECT count(*)::int FROM \(unsafeRaw: table)").first?.decode(Int.self, at: 0)
            XCTAssertEqual(count, 0, "\(table) shows rows with no tenant set")
        }
        let inserts: [PostgresQuery] = [
            "INSERT INTO api_keys (tenant_id, name, scopes, secret_hash) VALUES (\(council.id), 'x', '{admin}', 'x')",
            "INSERT INTO audit_events (tenant_id, action, resource_type, outcome, status, request_id) VALUES (\(council.id), 'read', 'x', 'success', 200, 'r')",
            "INSERT INTO organisations (tenant_id, slug, name) VALUES (\(council.id), 'sneaky', 'Sneaky')",
        ]
        for insert in inserts {
            do {
                try await runtime.execute(insert)
                XCTFail("inserted with no tenant set: \(insert.sql)")
            } catch let error as PostgresError {
                XCTAssertEqual(error.sqlState, "42501", "\(insert.sql): \(error)")
            }
        }
        await harness.stop()
    }

    /// One or two pooled connections, tenants A and B interleaved, some transactions rolled back:
    /// a setting left behind on a connection would show one tenant's rows to the other.
    func testInterleavedTenantsOnASmallPoolNeverSeeEachOther() async throws {
        let harness = try await AccessHarness.start()
        let councilA = try await harness.tenant("council-a"), councilB = try await harness.tenant("council-b")
        for index in 0..<3 {
            _ = try await harness.key(councilA, scopes: [.admin], name: "a\(index)")
            _ = try await harness.key(councilB, scopes: [.admin], name: "b\(index)")
        }
        struct Rollback: Error {}
        for size in [1, 2] {
            let runtime = PostgresPool(configuration: harness.database.runtime, size: size, acquireTimeout: .seconds(30), maxWaiters: 1000)
            let leaks = try await withThrowingTaskGroup(of: Int.self) { group in
                for iteration in 0..<200 {
                    let tenant = iteration.isMultiple(of: 2) ? councilA : councilB
                    group.addTask {
                        do {
                            return try await runtime.transaction(settings: [("heard.tenant_id", tenant.id.lowercased)]) { tx in
                                let tenants = try await tx.query("SELECT tenant_id FROM api_keys").map { try $0.decode(UUID.self, at: 0) }
                                let leaked = tenants.filter { $0 != tenant.id }.count + (tenants.count == 3 ? 0 : 1000)
                                if iteration.isMultiple(of: 3) { throw Rollback() }
                                return leaked
                            }
                        } catch is Rollback {
                            return 0
                        }
                    }
                    // Between them, connections are also used with no tenant at all.
                    if iteration.isMultiple(of: 7) {
                        group.addTask { try await runtime.query("SELECT 1 FROM api_keys").count * 1000 }
                    }
                }
                return try await group.reduce(0, +)
            }
            XCTAssertEqual(leaks, 0, "pool of \(size): a transaction saw another tenant's rows, or none of its own")
            runtime.shutdown()
        }
        await harness.stop()
    }
}

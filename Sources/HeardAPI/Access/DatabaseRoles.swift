import Foundation
import Postgres

/// The two database roles Heard runs with (README, "Database roles"):
/// - `heard_owner` owns the schema; migrations and the admin commands connect as it;
/// - `heard_app`, a member of the NOLOGIN group `heard_runtime`, is what the service connects as:
///   not superuser, no BYPASSRLS, owns nothing, so row-level security holds for every query.
public enum DatabaseRoles {
    public static let owner = "heard_owner"
    public static let runtimeGroup = "heard_runtime"
    public static let runtimeLogin = "heard_app"

    /// Creates the roles if missing and hands `database` to the owner. Run as a superuser on a
    /// private cluster (the embedded default, tests); production sets roles up once by hand.
    public static func setUp(database: String, asSuperuser configuration: PostgresConfiguration) async throws {
        let pool = PostgresPool(configuration: configuration, size: 1)
        defer { pool.shutdown() }
        try await pool.withConnection { connection in
            try await connection.simpleExecute("""
                DO $$
                BEGIN
                    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '\(owner)') THEN
                        CREATE ROLE \(owner) LOGIN NOSUPERUSER NOBYPASSRLS;
                    END IF;
                    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '\(runtimeGroup)') THEN
                        CREATE ROLE \(runtimeGroup) NOLOGIN NOSUPERUSER NOBYPASSRLS;
                    END IF;
                    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '\(runtimeLogin)') THEN
                        CREATE ROLE \(runtimeLogin) LOGIN NOSUPERUSER NOBYPASSRLS IN ROLE \(runtimeGroup);
                    END IF;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN
                    NULL;  -- another process created them at the same moment
                END
                $$;
                """)
            try await connection.simpleExecute("ALTER DATABASE \"\(database)\" OWNER TO \(owner)")
        }
    }

    /// `configuration` with its user replaced (on a private cluster, trust auth on the socket).
    public static func connecting(_ configuration: PostgresConfiguration, as user: String) -> PostgresConfiguration {
        var changed = configuration
        changed.user = user
        return changed
    }

    public struct UnsafeRuntimeRole: Error, CustomStringConvertible {
        public let description: String
    }

    /// Refuses to serve children's data as a role that row-level security would not hold: one
    /// that is, or is a member (directly or through other roles) of, a superuser, a role with
    /// BYPASSRLS, or the owner of the tables. A member can `SET ROLE` to any of them, and
    /// inherits an owner's rights over its tables.
    public static func checkRuntimeRole(_ pool: PostgresPool) async throws {
        let rows = try await pool.query("""
            SELECT current_user AS name,
                   EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolsuper AND pg_has_role(current_user, r.oid, 'MEMBER')) AS superuser,
                   EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolbypassrls AND pg_has_role(current_user, r.oid, 'MEMBER')) AS bypassrls,
                   EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                            WHERE n.nspname = 'public' AND pg_has_role(current_user, c.relowner, 'MEMBER')) AS owns_tables
            """)
        guard let row = rows.first else { return }
        let name = try row.decode(String.self, column: "name")
        var problems: [String] = []
        if try row.decode(Bool.self, column: "superuser") { problems.append("is or inherits a superuser") }
        if try row.decode(Bool.self, column: "bypassrls") { problems.append("is or inherits a role with BYPASSRLS") }
        if try row.decode(Bool.self, column: "owns_tables") { problems.append("owns tables or is a member of their owner") }
        guard problems.isEmpty else {
            throw UnsafeRuntimeRole(description: """
                the database role \(name) \(problems.joined(separator: ", ")), so row-level security would not \
                isolate tenants. Point DATABASE_URL at a login role that is a member of \(runtimeGroup) \
                (e.g. \(runtimeLogin)) and MIGRATION_DATABASE_URL at the owner; see README, "Database roles".
                """)
        }
    }
}

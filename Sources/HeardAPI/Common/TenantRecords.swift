import Foundation
import HTTPServer
import Postgres

/// Ids a request names as records of the caller's tenant (the sources of a "you said", the
/// groups told about it): which of them are not, in one query. Another tenant's id and an id
/// that exists nowhere are the same answer, so a 422 built from it never reveals that a record
/// exists elsewhere.
enum TenantRecords {
    /// The positions in `ids` of those that are not records of `table` (constant SQL, with
    /// `tenant_id` and `id`) in the caller's tenant (and, through row-level security, organisation).
    static func missing(_ ids: [UUID], in table: String, on tx: TenantTransaction) async throws -> [Int] {
        guard !ids.isEmpty else { return [] }
        return try await tx.query("""
            SELECT i.n FROM unnest(\(ids)::uuid[]) WITH ORDINALITY AS i (id, n)
             WHERE NOT EXISTS (SELECT 1 FROM \(unsafeRaw: table) r WHERE r.tenant_id = \(tx.principal.tenantID) AND r.id = i.id)
             ORDER BY i.n
            """).map { try $0.decode(Int.self, column: "n") - 1 }
    }

    /// The 422 entries (`field[i]`: "is not a <noun> of this council") for `ids` not in `table`.
    static func errors(_ ids: [UUID], in table: String, field: String, noun: String, on tx: TenantTransaction) async throws -> [FieldError] {
        try await missing(ids, in: table, on: tx).map { FieldError(field: "\(field)[\($0)]", message: "is not a \(noun) of this council") }
    }
}

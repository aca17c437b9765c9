import Foundation
import HTTPServer
import Postgres

/// Feedback's `complaint_id`: the complainant's experience of the procedure, asked after
/// closure (DOMAIN.md §2). It must name a closed complaint the key can see.
enum ComplaintFeedbackLink {
    static let problem = FieldError(field: "complaint_id", message: "is not a closed complaint of this tenant")

    /// Of `ids`, those that are closed complaints this key can see, in one query.
    static func closed(_ ids: Set<UUID>, on tx: TenantTransaction) async throws -> Set<UUID> {
        guard !ids.isEmpty else { return [] }
        return Set(try await tx.query("""
            SELECT id FROM complaints WHERE tenant_id = \(tx.principal.tenantID) AND id = ANY(\(Array(ids))::uuid[]) AND status = 'closed'
            """).map { try $0.decode(UUID.self, column: "id") })
    }

    /// 422 naming `complaint_id` unless it is absent or a closed complaint this key can see.
    static func check(_ id: UUID?, on tx: TenantTransaction) async throws {
        guard let id else { return }
        guard try await closed([id], on: tx).contains(id) else { throw HTTPError.validation([problem]) }
    }
}

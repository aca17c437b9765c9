import Foundation
import HTTPServer
import Postgres

/// What was done to a resource.
public enum AuditAction: String, Sendable, Codable, CaseIterable {
    case read, list, export, create, update, delete, authenticate

    init(method: String) {
        switch method {
        case "POST": self = .create
        case "PUT", "PATCH": self = .update
        case "DELETE": self = .delete
        default: self = .read
        }
    }
}

public enum AuditOutcome: String, Sendable, Codable, CaseIterable {
    case success, unauthenticated, forbidden, notFound = "not_found", rateLimited = "rate_limited"
}

/// The audit trail: who read, exported or wrote which record, and who was refused. The service's
/// database role can only append to it (and read its own tenant's part).
enum AuditTrail {
    /// Queues the audit row on `transaction`: it travels with the transaction's next statement
    /// or its `COMMIT` (no round trip of its own) and commits, or fails, with the work.
    static func record(
        on transaction: PostgresTransaction, principal: Principal, requestID: String, action: AuditAction,
        resourceType: String, resourceID: String?, rowsExported: Int?, outcome: AuditOutcome, status: Int
    ) {
        transaction.enqueue("""
            INSERT INTO audit_events (tenant_id, organisation_id, key_id, action, resource_type, resource_id,
                                      rows_exported, outcome, status, request_id)
            VALUES (\(principal.tenantID), \(principal.organisationID), \(principal.keyID), \(action.rawValue),
                    \(resourceType), \(resourceID.map { String($0.prefix(200)) }), \(rowsExported), \(outcome.rawValue),
                    \(status), \(requestID))
            """)
    }

    struct Event: Encodable, Sendable {
        var id: Int
        var occurredAt: Date
        var keyId: String?
        var organisationId: String?
        var action: String
        var resourceType: String
        var resourceId: String?
        var rowsExported: Int?
        var outcome: String
        var status: Int
        var requestId: String

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(occurredAt, forKey: .occurredAt)
            try container.encodeOrNull(keyId, forKey: .keyId)
            try container.encodeOrNull(organisationId, forKey: .organisationId)
            try container.encode(action, forKey: .action)
            try container.encode(resourceType, forKey: .resourceType)
            try container.encodeOrNull(resourceId, forKey: .resourceId)
            try container.encodeOrNull(rowsExported, forKey: .rowsExported)
            try container.encode(outcome, forKey: .outcome)
            try container.encode(status, forKey: .status)
            try container.encode(requestId, forKey: .requestId)
        }

        enum CodingKeys: String, CodingKey {
            case id, occurredAt = "occurred_at", keyId = "key_id", organisationId = "organisation_id", action, resourceType = "resource_type", resourceId = "resource_id", rowsExported = "rows_exported", outcome, status, requestId = "request_id"
        }
    }

    struct Position: Codable {
        var id: Int
    }

    /// `GET /v1/audit`: newest first, filtered, paged by cursor.
    static func list(_ request: Request, _ context: AccessContext) async throws -> Response {
        var query = QueryReader(request.query, allowed: ["from", "to", "action", "resource_type", "resource_id", "key_id", "outcome"])
        let limit = query.limit()
        let after = query.cursor(Position.self)
        let from = query.date("from"), to = query.date("to")
        let action = query.vocabulary("action", AuditAction.self)
        let outcome = query.vocabulary("outcome", AuditOutcome.self)
        let resourceType = query.string("resource_type", maxLength: 100)
        let resourceID = query.string("resource_id", maxLength: 200)
        let keyID = query.uuid("key_id")
        try query.finish()

        let rows = try await context.transaction { tx in
            let rows = try await tx.query("""
                SELECT id, occurred_at, key_id, organisation_id, action, resource_type, resource_id, rows_exported,
                       outcome, status, request_id
                  FROM audit_events
                 WHERE tenant_id = \(context.principal.tenantID)
                   AND (\(after?.id)::bigint IS NULL OR id < \(after?.id))
                   AND (\(from)::date IS NULL OR occurred_at >= \(from)::date)
                   AND (\(to)::date IS NULL OR occurred_at < \(to)::date + 1)
                   AND (\(action?.rawValue)::text IS NULL OR action = \(action?.rawValue))
                   AND (\(outcome?.rawValue)::text IS NULL OR outcome = \(outcome?.rawValue))
                   AND (\(resourceType)::text IS NULL OR resource_type = \(resourceType))
                   AND (\(resourceID)::text IS NULL OR resource_id = \(resourceID))
                   AND (\(keyID)::uuid IS NULL OR key_id = \(keyID))
                 ORDER BY id DESC
                 LIMIT \(limit + 1)
                """)
            tx.audit(.list, "audit_event", rowsExported: min(rows.count, limit))
            return rows
        }
        let events = try rows.prefix(limit).map { row in
            Event(id: try row.decode(Int.self, column: "id"), occurredAt: try row.decode(Date.self, column: "occurred_at"),
                  keyId: try row.decode(UUID?.self, column: "key_id")?.lowercased, organisationId: try row.decode(UUID?.self, column: "organisation_id")?.lowercased,
                  action: try row.decode(String.self, column: "action"), resourceType: try row.decode(String.self, column: "resource_type"),
                  resourceId: try row.decode(String?.self, column: "resource_id"), rowsExported: try row.decode(Int?.self, column: "rows_exported"),
                  outcome: try row.decode(String.self, column: "outcome"), status: try row.decode(Int.self, column: "status"),
                  requestId: try row.decode(String.self, column: "request_id"))
        }
        let next = rows.count > limit ? events.last.map { Cursor.encode(Position(id: $0.id)) } : nil
        return Page(items: events, nextCursor: next).response(for: request)
    }
}

import Foundation
import HTTPServer
import Postgres

/// An item's timeline: every change from "you said" to the outcome, oldest first, never
/// rewritten. Status changes are the item's lifecycle history (`lifecycle_history`, written by
/// the statement that changes the status); everything else (raised, answer changes, milestones,
/// feedback given, publication) is a row of `you_said_events`, appended in the transaction of
/// the change. Free text (what was said or done, reasons, notes) is kept apart from the
/// details and answered only with `free_text:read`.
enum YouSaidTimeline {
    enum Event: String, Sendable {
        case raised, changed
        case statusChanged = "status_changed"
        case milestoneAdded = "milestone_added", milestoneChanged = "milestone_changed"
        case feedbackGiven = "feedback_given", published
    }

    /// One entry as answered.
    struct Entry: Encodable, Sendable {
        var event: String
        var occurredAt: Date
        var keyId: UUID
        var details: JSONValue

        enum CodingKeys: String, CodingKey {
            case event, occurredAt = "occurred_at", keyId = "key_id", details
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(event, forKey: .event)
            try container.encode(JSON.iso8601(occurredAt), forKey: .occurredAt)
            try container.encode(keyId.lowercased, forKey: .keyId)
            try container.encode(details, forKey: .details)
        }
    }

    /// Appends `event` to the timeline of `item`: `details` (never free text) and `freeText`.
    static func record(_ event: Event, item: UUID, details: [(String, JSONValue)], freeText: [(String, JSONValue)] = [],
                       on tx: TenantTransaction) async throws {
        try await record(event, items: [item], details: details, freeText: freeText, on: tx)
    }

    /// Appends the same event to each of `items`' timelines, in one statement.
    static func record(_ event: Event, items: [UUID], details: [(String, JSONValue)], freeText: [(String, JSONValue)] = [],
                       on tx: TenantTransaction) async throws {
        let principal = tx.principal
        try await tx.execute("""
            INSERT INTO you_said_events (tenant_id, organisation_id, item_id, kind, details, free_text, key_id, request_id)
            SELECT i.tenant_id, i.organisation_id, i.id, \(event.rawValue), \(JSONValue.object(details).serialized)::jsonb,
                   \(freeText.isEmpty ? nil : JSONValue.object(freeText).serialized)::jsonb, \(principal.keyID), \(tx.requestID)
              FROM you_said_items i
             WHERE i.tenant_id = \(principal.tenantID) AND i.id = ANY(\(items)::uuid[])
             ORDER BY i.id
            """)
    }

    /// The timeline of `item`, oldest first, in one read: its status changes and its events
    /// (within one transaction a status change comes before the events it made).
    static func entries(of item: UUID, on tx: TenantTransaction, includeFreeText: Bool) async throws -> [Entry] {
        let tenant = tx.principal.tenantID
        let rows = try await tx.query("""
            SELECT event, occurred_at, key_id, details::text AS details, \(unsafeRaw: includeFreeText ? "free_text::text" : "NULL::text") AS free_text
              FROM (SELECT 'status_changed' AS event, h.occurred_at, h.key_id, 0 AS source, h.version::bigint AS position,
                           jsonb_build_object('action', h.action, 'from', h.from_state, 'to', h.to_state) || h.details AS details, h.free_text
                      FROM lifecycle_history h
                     WHERE h.tenant_id = \(tenant) AND h.resource_type = \(AuditResource.youSaidItem.rawValue) AND h.resource_id = \(item)
                    UNION ALL
                    SELECT e.kind, e.occurred_at, e.key_id, 1, e.seq, e.details, e.free_text
                      FROM you_said_events e
                     WHERE e.tenant_id = \(tenant) AND e.item_id = \(item)) AS timeline
             ORDER BY occurred_at, source, position
            """)
        return try rows.map { row in
            var members: [(key: String, value: JSONValue)] = []
            if case .object(let stored) = try JSONValue.parse(Array(try row.decode(String.self, column: "details").utf8)) { members = stored }
            if let text = try row.decode(String?.self, column: "free_text"), case .object(let narrative) = try JSONValue.parse(Array(text.utf8)) {
                members += narrative
            }
            return Entry(event: try row.decode(String.self, column: "event"), occurredAt: try row.decode(Date.self, column: "occurred_at"),
                         keyId: try row.decode(UUID.self, column: "key_id"), details: .object(members))
        }
    }

    /// `GET /v1/you-said/{id}/timeline`.
    static func respond(_ request: Request, _ context: AccessContext) async throws -> Response {
        guard let id = UUID(uuidString: request.parameter("id")) else { throw YouSaidRoutes.notFound }
        try QueryReader(request.query, allowed: [], paged: false).finish()
        let includeFreeText = context.principal.has(.freeTextRead)
        let entries = try await context.transaction { tx -> [Entry]? in
            guard try await YouSaidRoutes.exists(id, on: tx) else { return nil }
            let entries = try await Self.entries(of: id, on: tx, includeFreeText: includeFreeText)
            tx.audit(.read, .youSaidItem, id: id.lowercased)
            return entries
        }
        guard let entries else { throw YouSaidRoutes.notFound }
        return Page(items: entries, nextCursor: nil).response(for: request)
    }
}

import Foundation
import HTTPServer
import Postgres
import Synchronization

/// One entry of the change feed: which record, what happened to it, when. Never its content.
struct Event: StoredRecord {
    var id = 0
    var type = ""
    var resource = ""
    var resourceId = UUID.zero
    var occurredAt = Date(timeIntervalSince1970: 0)

    static let table = Table<Event>("events e", [
        .column("id", "e.id", \.id), .column("type", "e.type", \.type), .column("resource", "e.resource", \.resource),
        .column("resource_id", "e.resource_id", \.resourceId), .column("occurred_at", "e.occurred_at", \.occurredAt),
    ])
}

/// `GET /v1/events`: the events a key may read, oldest first, after its cursor.
///
/// Events are written by triggers in the transactions that make the changes
/// (`Migrations/0014_events.sql` says how, and why the order is `position` then `id`). A page
/// holds only events below the oldest transaction still running, so an event that commits late
/// is never stepped over: it lands after every cursor given out before it.
///
/// With `wait`, a request that finds nothing looks again every `pollInterval` until something
/// is readable or `wait` seconds pass. Each look is one statement in one round trip, on a
/// connection the pool lends for that statement alone, so a waiting request holds no database
/// connection; at most `maxWaiting` requests wait at once, and beyond that a request that would
/// wait is answered 503 with `Retry-After`. (A NOTIFY from the triggers would wake waiters at
/// once, but every committing writer would then take PostgreSQL's one notification lock:
/// measured with pgbench, 8 clients inserting single feedback rows went from about 2,600 to
/// about 750 transactions a second. An idle look costs about 0.3 ms of database time.)
final class EventFeed: Sendable {
    static let order = ListOrder(ascending: [("e.position", .xid8), ("e.id", .bigint)])
    static let maxWait = 30
    static let pollInterval = Duration.milliseconds(200)

    let maxWaiting: Int
    private let waiting = Mutex(0)

    init(maxWaiting: Int = 64) {
        self.maxWaiting = maxWaiting
    }

    struct Answer: Encodable, Sendable {
        let events: [Event]
        let nextCursor: String

        private enum CodingKeys: String, CodingKey {
            case events
            case nextCursor = "next_cursor"
        }
    }

    /// Answers `GET /v1/events`; a request is held at most `longPollSeconds` (LONG_POLL_MAX_SECONDS).
    func respond(_ request: Request, _ context: AccessContext, longPollSeconds: Int = EventFeed.maxWait) async throws -> Response {
        var query = QueryReader(request.query, allowed: ["after", "types", "limit", "wait"], paged: false)
        let after = query.cursor(Self.order, name: "after") ?? ["0", "0"]
        let limit = query.limit()
        let wait = query.integer("wait", in: 0...Self.maxWait) ?? 0
        let types = Self.types(&query, readable: EventType.readable(by: context.principal))
        try query.finish()

        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(min(wait, longPollSeconds))
        if wait > 0 {
            guard enterWaiting() else {
                throw HTTPError(.feedBusy, detail: "Too many requests are waiting for events just now; retry shortly, or ask without `wait`.",
                                headers: ["Retry-After": "1"])
            }
        }
        defer { if wait > 0 { leaveWaiting() } }
        while true {
            let final = clock.now >= deadline
            if let response = try await page(after: after, types: types, limit: limit, final: final, context) { return response }
            try await Task.sleep(for: min(Self.pollInterval, deadline - clock.now), clock: clock)
        }
    }

    /// `types`: a comma-separated list of event types, each one the key may read.
    static func types(_ query: inout QueryReader, readable: [EventType]) -> [String] {
        let names = readable.map(\.rawValue)
        guard let text = query.string("types", maxLength: 2000) else { return names }
        var chosen: [String] = []
        for name in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            if names.contains(name) {
                if !chosen.contains(name) { chosen.append(name) }
            } else if EventType.all.contains(where: { $0.rawValue == name }) {
                query.reject("types", "names \(name), which this key's scopes do not let it read; it may read: \(names.joined(separator: ", "))")
            } else {
                query.reject("types", "must be a comma-separated list of event types, each one of: \(EventType.all.map(\.rawValue).joined(separator: ", "))")
                break
            }
        }
        return chosen
    }

    /// One page after `after`, audited; nil when there is nothing yet and this is not the
    /// `final` look (the caller waits). A look that is not final first asks, in one round trip
    /// and without an audit row, whether there is anything at all: most looks of a wait find nothing.
    private func page(after: [String], types: [String], limit: Int, final: Bool, _ context: AccessContext) async throws -> Response? {
        if !final {
            let found = try await context.transaction { tx in try await tx.queryAndCommit(Self.select(after: after, types: types, limit: 1, on: tx)) }
            guard !found.isEmpty else { return nil }
        }
        let (events, positions) = try await context.transaction { tx -> ([Event], [[String]]) in
            let rows = try await tx.query(Self.select(after: after, types: types, limit: limit, on: tx))
            tx.audit(.list, .event, rowsExported: rows.count)
            return (try rows.map { try Event.table.decode($0, includeFreeText: false) }, try rows.map(Self.order.position(of:)))
        }
        return Response.json(Answer(events: events, nextCursor: Cursor.encode(positions.last ?? after)))
    }

    /// The events after `after` that no running transaction can still precede: below the
    /// oldest transaction id still running, everything is committed or gone for good.
    private static func select(after: [String], types: [String], limit: Int, on tx: TenantTransaction) -> PostgresQuery {
        """
        SELECT \(unsafeRaw: Event.table.selectList(includeFreeText: false)), \(unsafeRaw: order.selectList)
          FROM \(unsafeRaw: Event.table.from)
         WHERE e.tenant_id = \(tx.principal.tenantID)
           AND \(order.after(after))
           AND e.position < pg_snapshot_xmin(pg_current_snapshot())
           AND e.type = ANY(\(types)::text[])
         ORDER BY \(unsafeRaw: order.orderBy)
         LIMIT \(limit)
        """
    }

    private func enterWaiting() -> Bool {
        waiting.withLock { count in
            guard count < maxWaiting else { return false }
            count += 1
            return true
        }
    }

    private func leaveWaiting() {
        waiting.withLock { $0 -= 1 }
    }
}

struct EventRoutes {
    let access: AccessControl
    let feed: EventFeed

    init(access: AccessControl, feed: EventFeed = EventFeed()) {
        self.access = access
        self.feed = feed
    }

    func add(to router: inout RouterBuilder) {
        router.get("/v1/events", access.secure(anyOf: EventResource.readScopes, resource: .event) { request, context in
            try await feed.respond(request, context, longPollSeconds: access.configuration.longPollSeconds)
        })
    }
}

import Foundation
import Postgres
import Synchronization

/// Requests that do the same thing for the same key, arriving while that key already has
/// `maxInFlight` of them at PostgreSQL, wait and are then done together: one statement for the
/// lot, in one transaction, one commit, one WAL flush (group commit, done by the service where
/// PostgreSQL can only do it per connection). A council system that sends many requests at
/// once gets most of them written as a batch would be; a lone request goes at once, alone, and
/// never waits for company.
///
/// - Groups are formed first come, first served: the requests waiting longest go in the next
///   group, at most `maxGroup` of them.
/// - A group is run by one of its own requests (its leader, the first in it), which hands every
///   other member its outcome, then passes the lead to the first of the requests that came
///   meanwhile: no task of its own, nothing left running when no request is.
/// - `work` receives the members' items in order and answers one outcome each, in the same
///   order; it never throws (a failed group's outcomes: `TogetherOutcome.afterFailure`).
///
/// ```swift
/// let outcome = await creates.submit(item, key: principal.identity) { items in
///     await Store.createAll(items, in: context)   // [Outcome], one for each item
/// }
/// ```
final class Coalescer<Key: Hashable & Sendable, Item: Sendable, Outcome: Sendable>: Sendable {
    let maxInFlight: Int
    let maxGroup: Int
    private let lanes = Mutex<[Key: Lane]>([:])

    private struct Waiting {
        let item: Item
        let continuation: CheckedContinuation<Turn, Never>
    }

    /// A key's groups in flight, and the requests waiting for the next.
    private struct Lane {
        var inFlight = 0
        var waiting: [Waiting] = []
    }

    /// What a waiting request is woken with: the lead of a group (with the others in it), or
    /// its outcome, from its group's leader.
    private enum Turn {
        case lead(others: [Waiting])
        case answered(Outcome)
    }

    init(maxInFlight: Int = 2, maxGroup: Int = 100) {
        precondition(maxInFlight >= 1 && maxGroup >= 1)
        self.maxInFlight = maxInFlight
        self.maxGroup = maxGroup
    }

    /// Does `item` for `key`, alone or in a group: `work` runs for the group this request
    /// leads (if any) and is given its items, this one first.
    func submit(_ item: Item, key: Key, _ work: @Sendable ([Item]) async -> [Outcome]) async -> Outcome {
        let turn = await withCheckedContinuation { (continuation: CheckedContinuation<Turn, Never>) in
            let leads = lanes.withLock { lanes -> Bool in
                var lane = lanes[key] ?? Lane()
                defer { lanes[key] = lane }
                guard lane.inFlight < maxInFlight else {
                    lane.waiting.append(Waiting(item: item, continuation: continuation))
                    return false
                }
                lane.inFlight += 1
                return true
            }
            if leads { continuation.resume(returning: .lead(others: [])) }
        }
        switch turn {
        case .answered(let outcome):
            return outcome
        case .lead(let others):
            let outcomes = await work([item] + others.map(\.item))
            precondition(outcomes.count == others.count + 1, "a group's work answers one outcome per item")
            for (member, outcome) in zip(others, outcomes.dropFirst()) {
                member.continuation.resume(returning: .answered(outcome))
            }
            handOn(key)
            return outcomes[0]
        }
    }

    /// A group of `key`'s is done: the requests that came meanwhile (the longest waiting first)
    /// form the next, led by the first of them; with none waiting, the slot is free.
    private func handOn(_ key: Key) {
        let next = lanes.withLock { lanes -> [Waiting] in
            guard var lane = lanes[key] else { preconditionFailure("a group ended for a key with none in flight") }
            guard !lane.waiting.isEmpty else {
                lane.inFlight -= 1
                lanes[key] = lane.inFlight == 0 ? nil : lane
                return []
            }
            let group = Array(lane.waiting.prefix(maxGroup))
            lane.waiting.removeFirst(group.count)
            lanes[key] = lane
            return group
        }
        guard let leader = next.first else { return }
        leader.continuation.resume(returning: .lead(others: Array(next.dropFirst())))
    }

    /// Keys with requests in flight or waiting (for tests and metrics).
    var activeKeys: Int { lanes.withLock { $0.count } }
}

/// Reads by id of one table, done together when they come together (`Coalescer`): the reads of
/// one key that arrive while two groups of its are at PostgreSQL are answered by one statement,
/// each request's audit row naming it (`Table.readAll`), in one transaction and one commit. A
/// lone read is `Table.read`, as before. What each request gets is what `Table.read` would have
/// answered it: its record, or nil (not found, or another organisation's), and an answer only
/// once its audit row is committed.
///
/// ```swift
/// let reads = ReadsTogether<FeedbackRecord>(audited: .feedback)   // one for the app, kept by the area's routes
/// guard let record = try await reads.read(id, in: context, includeFreeText: ...) else { throw notFound }
/// ```
final class ReadsTogether<Record: StoredRecord>: Sendable {
    struct Wanted: Sendable {
        var id: UUID
        var requestID: String
    }

    /// What a group's read depends on: the key's whole identity (tenant, organisation and
    /// scopes with it) and whether free text is read, so every read in a group sees exactly
    /// what it would see alone.
    private struct GroupKey: Hashable, Sendable {
        let identity: Principal.Identity
        let includeFreeText: Bool
    }

    /// The reads' audit rows name this resource.
    let resource: AuditResource
    private let coalescer: Coalescer<GroupKey, Wanted, TogetherOutcome<Record?>>

    init(audited resource: AuditResource, maxInFlight: Int = 2, maxGroup: Int = 100) {
        self.resource = resource
        coalescer = Coalescer(maxInFlight: maxInFlight, maxGroup: maxGroup)
    }

    /// `Record.table.read(id, ...)` in a read transaction of `context`'s, with others of the same
    /// key that come meanwhile.
    func read(_ id: UUID, in context: AccessContext, includeFreeText: Bool) async throws -> Record? {
        let table = Record.table, resource = self.resource
        let key = GroupKey(identity: context.principal.identity, includeFreeText: includeFreeText)
        let outcome = await coalescer.submit(Wanted(id: id, requestID: context.requestID), key: key) { wanted in
            do {
                let records = try await context.readTransaction { tx -> [Record?] in
                    guard wanted.count > 1 else { return [try await table.read(wanted[0].id, on: tx, includeFreeText: includeFreeText, audited: resource)] }
                    return try await table.readAll(wanted, on: tx, includeFreeText: includeFreeText, audited: resource)
                }
                return records.map(TogetherOutcome.done)
            } catch {
                return TogetherOutcome.afterFailure(error, count: wanted.count)
            }
        }
        switch outcome {
        case .done(let record): return record
        case .failed(let error): throw error
        case .alone:
            return try await context.readTransaction { tx in try await table.read(id, on: tx, includeFreeText: includeFreeText, audited: resource) }
        }
    }
}

/// What became of one request of a group (`Coalescer`): its value (a record, or nil where the
/// area says so: not found, a natural key already taken); `alone` when it must go again on its
/// own; or the error that failed it.
enum TogetherOutcome<Value: Sendable>: Sendable {
    case done(Value)
    /// Its group failed, undoing everything in it (or the area held it back): it goes again on
    /// its own, and meets its own answer.
    case alone
    case failed(any Error)

    /// What the `count` requests of a group that failed with `error` are answered. A failure
    /// caused by the requests (a statement refused, a deadlock, a lock waited on too long)
    /// undid the whole group: each goes again alone and meets its own answer. A group alone,
    /// or one that never reached PostgreSQL (no connection came free in time), fails with its
    /// error: sending each request again alone would only add a hundred callers to a pool that
    /// is already full.
    static func afterFailure(_ error: any Error, count: Int) -> [TogetherOutcome] {
        if count == 1 || (error as? PostgresError)?.kind == .poolTimeout {
            return Array(repeating: .failed(error), count: count)
        }
        return Array(repeating: .alone, count: count)
    }
}

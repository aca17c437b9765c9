import Dispatch
import Foundation
import Synchronization

/// What the pool is doing, for metrics.
public struct PoolStats: Sendable, Equatable {
    /// The most connections the pool opens.
    public var size: Int
    /// Connections open or being opened.
    public var open: Int
    /// Connections lent out.
    public var inUse: Int
    /// Open connections waiting to be lent.
    public var idle: Int
    /// Callers waiting for a connection.
    public var waiting: Int
}

/// A bounded pool of PostgreSQL connections.
///
/// - Connections are opened lazily, up to `size`.
/// - A caller waits at most `acquireTimeout` for a connection, and when `maxWaiters` callers
///   are already waiting it fails at once: both throw `PostgresError` of kind `.poolTimeout`.
/// - Lost connections are dropped and replaced on a later acquire, so the pool outlives a
///   database restart: during the outage calls throw `.connection`, afterwards they work again.
/// - Waiting never blocks a thread: waiters are continuations, resumed by whoever releases.
/// - Lanes (optional): the serial queues callers run on, such as an HTTP server's event loops.
///   A connection opened for a caller on a lane does its I/O on that lane's queue, and is lent
///   to callers on the same lane first, so a round trip to PostgreSQL starts and ends on the
///   caller's own thread instead of hopping to another one and back. Any idle connection is
///   still lent rather than make a caller wait; callers on no lane get connections that run on
///   the global queues.
public final class PostgresPool: Sendable {
    public let configuration: PostgresConfiguration
    public let size: Int
    public let acquireTimeout: Duration
    public let maxWaiters: Int
    private let lanes: [DispatchQueue]
    /// Set on each lane's queue to its index.
    private let laneKey = DispatchSpecificKey<Int>()

    private let state: Mutex<State>

    /// A waiter is resumed with a slot: an idle connection, or the right to open a new one.
    private enum Lease: Sendable {
        case connection(PostgresConnection)
        case newConnection
    }

    private struct Waiter {
        let deadline: DispatchTime
        let continuation: CheckedContinuation<Lease, any Error>
    }

    private struct State {
        /// Idle connections by the lane they run on; the last is for callers on no lane.
        var idle: [[PostgresConnection]]
        var idleCount = 0
        /// Slots taken: idle, lent, or being opened.
        var open = 0
        var inUse = 0
        /// In the order they came; all wait as long, so the first has the earliest deadline.
        var waiters: [Waiter] = []
        /// A timer is set for the first waiter's deadline.
        var timerIsSet = false
        var isShutDown = false
    }

    /// - Parameters:
    ///   - size: the most connections open at once (at least 1).
    ///   - acquireTimeout: how long a caller may wait for a connection.
    ///   - maxWaiters: how many callers may wait at once; the next one fails immediately.
    ///   - lanes: serial queues the pool's callers run on (see above); the pool marks each with
    ///     a queue-specific value.
    public init(
        configuration: PostgresConfiguration,
        size: Int = 10,
        acquireTimeout: Duration = .seconds(5),
        maxWaiters: Int = 100,
        lanes: [DispatchQueue] = []
    ) {
        self.configuration = configuration
        self.size = max(1, size)
        self.acquireTimeout = acquireTimeout
        self.maxWaiters = max(0, maxWaiters)
        self.lanes = lanes
        self.state = Mutex(State(idle: Array(repeating: [], count: lanes.count + 1)))
        for (index, queue) in lanes.enumerated() { queue.setSpecific(key: laneKey, value: index) }
    }

    /// A snapshot of the pool's use.
    public var stats: PoolStats {
        state.withLock { state in
            PoolStats(size: size, open: state.open, inUse: state.inUse, idle: state.idleCount,
                      waiting: state.waiters.count)
        }
    }

    // MARK: Running statements

    /// Runs one statement on a pooled connection and returns its rows.
    public func query(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await withConnection { try await $0.query(query) }
    }

    /// Runs one statement on a pooled connection and returns the number of rows it changed.
    @discardableResult
    public func execute(_ query: PostgresQuery) async throws -> Int {
        try await withConnection { try await $0.execute(query) }
    }

    /// Runs `body` in a transaction: `BEGIN`, then `set_config(name, value, true)` for each of
    /// `settings` (transaction-local, such as `("heard.tenant_id", id)` for row-level security),
    /// then `body`; `COMMIT` when it returns, `ROLLBACK` when it throws (the error is rethrown).
    ///
    /// Round trips are few: `BEGIN` and the settings travel with the transaction's first
    /// statement, and statements `enqueue`d on it travel with the next one or with `COMMIT`. A
    /// body that sends nothing (a request refused by validation) costs no round trip at all.
    ///
    /// The transaction must not be used after `body` returns.
    public func transaction<Value>(
        settings: [(name: String, value: String)] = [],
        _ body: (PostgresTransaction) async throws -> Value
    ) async throws -> Value {
        try await withConnection { connection in
            let transaction = PostgresTransaction(connection: connection, opening: Self.opening(settings))
            do {
                let result = try await body(transaction)
                try await transaction.commit()
                return result
            } catch {
                // If ROLLBACK fails the connection is not idle and will be discarded on release.
                if transaction.hasBegun { try? await connection.simpleExecute("ROLLBACK") }
                throw error
            }
        }
    }

    /// `BEGIN`, and one statement setting every setting.
    private static func opening(_ settings: [(name: String, value: String)]) -> [PostgresQuery] {
        guard !settings.isEmpty else { return ["BEGIN"] }
        let calls = settings.indices.map { "set_config($\(2 * $0 + 1), $\(2 * $0 + 2), true)" }
        let binds = settings.flatMap { [PostgresBind($0.name), PostgresBind($0.value)] }
        return ["BEGIN", PostgresQuery(unsafeSQL: "SELECT " + calls.joined(separator: ", "), binds: binds)]
    }

    /// Lends a connection to `body` and takes it back afterwards, even when `body` throws.
    /// A connection that comes back lost or inside a transaction is closed, not reused.
    public func withConnection<Value>(_ body: (PostgresConnection) async throws -> Value) async throws -> Value {
        let connection = try await acquire()
        do {
            let result = try await body(connection)
            release(connection)
            return result
        } catch {
            release(connection)
            throw error
        }
    }

    /// Closes idle connections and fails waiters; lent connections close when they come back.
    public func shutdown() {
        let (idle, waiters) = state.withLock { state in
            state.isShutDown = true
            defer {
                state.open -= state.idleCount
                state.idle = state.idle.map { _ in [] }
                state.idleCount = 0
                state.waiters = []
            }
            return (state.idle.flatMap { $0 }, state.waiters)
        }
        idle.forEach { $0.close() }
        for waiter in waiters {
            waiter.continuation.resume(throwing: PostgresError(kind: .connection, message: "the pool is shut down"))
        }
    }

    // MARK: Acquire and release

    private func acquire() async throws -> PostgresConnection {
        let lane = DispatchQueue.getSpecific(key: laneKey) ?? lanes.count
        let lease = try await lease(lane: lane)
        if case .connection(let connection) = lease {
            // Lost while idle (a server restart)? Its read source has usually seen so: its slot
            // then opens a new connection. If not, its first statement finds out.
            guard connection.isReusable else {
                connection.close()
                return try await open(lane: lane)
            }
            connection.markLent()
            return connection
        }
        return try await open(lane: lane)
    }

    /// Opens a connection in a slot already taken, for callers on `lane`.
    private func open(lane: Int) async throws -> PostgresConnection {
        do {
            return try await PostgresConnection.connect(
                configuration: configuration, target: lane < lanes.count ? lanes[lane] : nil, affinity: lane)
        } catch {
            releaseSlot()
            throw error
        }
    }

    private enum Decision {
        case lease(Lease)
        case fail(PostgresError)
        /// No slot: the caller must wait (registered when a continuation was given; with a
        /// deadline when no timer is set yet and the caller must set one for it).
        case wait(setTimerFor: DispatchTime?)
    }

    /// Under the lock: an idle connection, a slot for a new one, a failure, or a place in line
    /// (taken only when `waiter` is given).
    private func decide(_ state: inout State, lane: Int, waiter: CheckedContinuation<Lease, any Error>?) -> Decision {
        if state.isShutDown {
            return .fail(PostgresError(kind: .connection, message: "the pool is shut down"))
        }
        if let connection = state.idle[lane].popLast() {
            state.idleCount -= 1
            state.inUse += 1
            return .lease(.connection(connection))
        }
        if state.open < size {
            state.open += 1
            state.inUse += 1
            return .lease(.newConnection)
        }
        // Another lane's idle connection, rather than wait: the one with most to spare.
        if state.idleCount > 0, let other = state.idle.indices.max(by: { state.idle[$0].count < state.idle[$1].count }),
           let connection = state.idle[other].popLast() {
            state.idleCount -= 1
            state.inUse += 1
            return .lease(.connection(connection))
        }
        guard state.waiters.count < maxWaiters else {
            return .fail(PostgresError(
                kind: .poolTimeout,
                message: "all \(size) connections are in use and \(maxWaiters) callers are already waiting"))
        }
        guard let waiter else { return .wait(setTimerFor: nil) }
        let deadline = DispatchTime.now() + acquireTimeout.timeInterval
        state.waiters.append(Waiter(deadline: deadline, continuation: waiter))
        guard !state.timerIsSet else { return .wait(setTimerFor: nil) }
        state.timerIsSet = true
        return .wait(setTimerFor: deadline)
    }

    private func lease(lane: Int) async throws -> Lease {
        // Usually there is a slot: take it without suspending the caller (a continuation would
        // suspend and re-enqueue the task even when resumed at once).
        switch state.withLock({ decide(&$0, lane: lane, waiter: nil) }) {
        case .lease(let lease): return lease
        case .fail(let error): throw error
        case .wait: break
        }
        return try await withCheckedThrowingContinuation { continuation in
            switch state.withLock({ decide(&$0, lane: lane, waiter: continuation) }) {
            case .lease(let lease):
                continuation.resume(returning: lease)
            case .fail(let error):
                continuation.resume(throwing: error)
            case .wait(let deadline):
                if let deadline { setTimer(for: deadline) }
            }
        }
    }

    /// One timer at a time, for the first waiter: when it fires, every waiter past its deadline
    /// gives up, and the timer is set again for the next one. (A timer for each waiter cost a
    /// dispatch timer, and a wake-up when it fired long after, for every acquire that waited.)
    private func setTimer(for deadline: DispatchTime) {
        DispatchQueue.global().asyncAfter(deadline: deadline) { self.expireWaiters() }
    }

    private func expireWaiters() {
        let now = DispatchTime.now()
        let (expired, next): ([Waiter], DispatchTime?) = state.withLock { state in
            let count = state.waiters.prefix { $0.deadline <= now }.count
            let expired = Array(state.waiters.prefix(count))
            state.waiters.removeFirst(count)
            guard let first = state.waiters.first else {
                state.timerIsSet = false
                return (expired, nil)
            }
            return (expired, first.deadline)
        }
        if let next { setTimer(for: next) }
        for waiter in expired {
            waiter.continuation.resume(throwing: PostgresError(
                kind: .poolTimeout,
                message: "no database connection became free within \(acquireTimeout.timeInterval) seconds"))
        }
    }

    /// Takes a lent connection back: hands it to the first waiter, keeps it idle, or (when it
    /// is no longer reusable) closes it and hands its slot on.
    private func release(_ connection: PostgresConnection) {
        let reusable = connection.isReusable
        let (waiter, keep): (Waiter?, Bool) = state.withLock { state in
            if !state.waiters.isEmpty, !state.isShutDown {
                return (state.waiters.removeFirst(), reusable)  // the slot passes on, still in use
            }
            state.inUse -= 1
            guard reusable, !state.isShutDown else {
                state.open -= 1
                return (nil, false)
            }
            state.idle[connection.affinity].append(connection)
            state.idleCount += 1
            return (nil, true)
        }
        if !keep { connection.close() }
        waiter?.continuation.resume(returning: keep ? .connection(connection) : .newConnection)
    }

    /// Gives back a slot whose connection could not be opened.
    private func releaseSlot() {
        let waiter: Waiter? = state.withLock { state in
            if !state.waiters.isEmpty, !state.isShutDown { return state.waiters.removeFirst() }
            state.inUse -= 1
            state.open -= 1
            return nil
        }
        waiter?.continuation.resume(returning: .newConnection)
    }
}

/// A transaction in progress: the statements run on the transaction's connection.
public struct PostgresTransaction: Sendable {
    /// The connection the transaction runs on.
    public let connection: PostgresConnection
    private let unsent: Unsent

    /// What is still to be sent (shared by the copies of the transaction its body may make).
    private final class Unsent: Sendable {
        let state: Mutex<State>
        init(_ state: State) { self.state = Mutex(state) }
    }

    private struct State {
        /// `BEGIN` and the settings, until they are sent with the first statement.
        var opening: [PostgresQuery]?
        /// Statements `enqueue`d and not sent yet.
        var queued: [PostgresQuery] = []
        /// `queryAndCommit` ended the transaction.
        var committed = false
    }

    init(connection: PostgresConnection, opening: [PostgresQuery]) {
        self.connection = connection
        self.unsent = Unsent(State(opening: opening))
    }

    /// Whether `BEGIN` has been sent (so a failure must roll back).
    var hasBegun: Bool { unsent.state.withLock { $0.opening == nil } }

    /// Runs one statement in the transaction and returns its rows.
    public func query(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await send(query).rows
    }

    /// Runs one statement in the transaction and returns the number of rows it changed.
    @discardableResult
    public func execute(_ query: PostgresQuery) async throws -> Int {
        try await send(query).rowsAffected
    }

    /// Queues a statement whose answer the caller does not need (an audit row): it is sent with
    /// the transaction's next statement, or with `COMMIT`, so it costs no round trip of its
    /// own. If it fails, that statement (or the commit) throws its error and nothing commits.
    public func enqueue(_ query: PostgresQuery) {
        unsent.state.withLock { $0.queued.append(query) }
    }

    /// Runs `query` as the transaction's last statement, with `COMMIT` in the same round trip
    /// (and whatever is still unsent before it), so the transaction holds its locks only while
    /// PostgreSQL works, never while the caller does. Nothing may run in the transaction after.
    public func queryAndCommit(_ query: PostgresQuery) async throws -> [PostgresRow] {
        let unsent = try takeUnsent(committing: true)
        let results = try await connection.pipeline(unsent + [query, "COMMIT"])
        guard results.count >= 2 else { throw PostgresError(kind: .query, message: "the pipeline returned no result") }
        return results[results.count - 2].rows
    }

    private func takeUnsent(committing: Bool = false) throws -> [PostgresQuery] {
        try unsent.state.withLock { state in
            guard !state.committed else {
                throw PostgresError(kind: .query, message: "the transaction has already committed (queryAndCommit)")
            }
            defer { state.opening = nil; state.queued = []; state.committed = committing }
            return (state.opening ?? []) + state.queued
        }
    }

    private func send(_ query: PostgresQuery) async throws -> PostgresResult {
        let unsent = try takeUnsent()
        if unsent.isEmpty { return try await connection.pipeline([query])[0] }
        guard let result = try await connection.pipeline(unsent + [query]).last else {
            throw PostgresError(kind: .query, message: "the pipeline returned no result")
        }
        return result
    }

    /// Sends what is queued and `COMMIT`; nothing at all when nothing was sent or queued, or
    /// when `queryAndCommit` already committed.
    func commit() async throws {
        let statements: [PostgresQuery]? = try unsent.state.withLock { state in
            if state.committed {
                guard state.queued.isEmpty else {
                    throw PostgresError(kind: .query, message: "a statement was queued after the transaction committed (queryAndCommit)")
                }
                return nil
            }
            defer { state.opening = nil; state.queued = [] }
            guard let opening = state.opening else { return state.queued }
            return state.queued.isEmpty ? nil : opening + state.queued
        }
        guard let statements else { return }
        _ = try await connection.pipeline(statements + ["COMMIT"])
    }
}

extension Duration {
    var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}

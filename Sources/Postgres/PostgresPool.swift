import Dispatch
import Foundation
import Synchronization

/// What the pool is doing, for metrics.
public struct PoolStats: Sendable, Equatable {
    /// The most connections the pool opens.
    public var size: Int
    /// Connections open or being opened.
    public var open: Int
    /// Connections lent out, whole or shared by units.
    public var inUse: Int
    /// Open connections waiting to be lent.
    public var idle: Int
    /// Callers waiting for a connection.
    public var waiting: Int
    /// Units in flight, on the connections counted in `inUse` that units share.
    public var units: Int = 0
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
/// - Units share connections. A unit (`pipeline(_:)`, `query`, `execute`, and a transaction
///   whose statements all go in one round trip: see `transaction`) is sent at once on a
///   connection already running other units, up to `pipelineDepth` of them, and PostgreSQL
///   answers them in turn, each with its own sync, so one unit's failure never touches
///   another's work. A busy PostgreSQL then finds the next unit already waiting, instead of
///   sleeping until its client sends it, and a few connections carry the load of many callers
///   (the h2o model that ARCHITECTURE.md names). An interactive transaction gets a connection
///   to itself.
public final class PostgresPool: Sendable {
    public let configuration: PostgresConfiguration
    public let size: Int
    public let acquireTimeout: Duration
    public let maxWaiters: Int
    /// The most units in flight on one connection.
    public let pipelineDepth: Int
    private let lanes: [DispatchQueue]
    /// Set on each lane's queue to its index.
    private let laneKey = DispatchSpecificKey<Int>()

    private let state: Mutex<State>

    /// A slot: an idle connection, or the right to open a new one (what a waiter is resumed
    /// with), or for a unit a place on a connection running units.
    private enum Lease: Sendable {
        case connection(PostgresConnection)
        case newConnection
        case shared(PostgresConnection)
    }

    private struct Waiter {
        let deadline: DispatchTime
        let continuation: CheckedContinuation<Lease, any Error>
        /// Waiting to send a unit (any connection running units with room will do).
        let forUnit: Bool
    }

    /// A connection running units, and how many.
    private struct Sharing {
        let connection: PostgresConnection
        var units: Int
    }

    private struct State {
        /// Idle connections by the lane they run on; the last is for callers on no lane.
        var idle: [[PostgresConnection]]
        /// Connections running units (counted in `inUse`), by lane likewise.
        var sharing: [[Sharing]]
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
    ///   - pipelineDepth: the most units in flight on one connection (1: none shared).
    public init(
        configuration: PostgresConfiguration,
        size: Int = 10,
        acquireTimeout: Duration = .seconds(5),
        maxWaiters: Int = 100,
        lanes: [DispatchQueue] = [],
        pipelineDepth: Int = 8
    ) {
        self.configuration = configuration
        self.size = max(1, size)
        self.acquireTimeout = acquireTimeout
        self.maxWaiters = max(0, maxWaiters)
        self.pipelineDepth = max(1, pipelineDepth)
        self.lanes = lanes
        self.state = Mutex(State(idle: Array(repeating: [], count: lanes.count + 1),
                                 sharing: Array(repeating: [], count: lanes.count + 1)))
        for (index, queue) in lanes.enumerated() { queue.setSpecific(key: laneKey, value: index) }
    }

    /// A snapshot of the pool's use.
    public var stats: PoolStats {
        state.withLock { state in
            PoolStats(size: size, open: state.open, inUse: state.inUse, idle: state.idleCount,
                      waiting: state.waiters.count, units: state.sharing.joined().reduce(0) { $0 + $1.units })
        }
    }

    // MARK: Running statements

    /// Runs one statement, as a unit (see `pipeline(_:)`), and returns its rows.
    public func query(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await pipeline([query])[0].rows
    }

    /// Runs one statement, as a unit (see `pipeline(_:)`), and returns the number of rows it changed.
    @discardableResult
    public func execute(_ query: PostgresQuery) async throws -> Int {
        try await pipeline([query])[0].rowsAffected
    }

    /// Runs `queries` as one unit: in order, in one round trip, in one transaction of their own
    /// (PostgreSQL's implicit transaction, up to the unit's sync: all of them or none), on a
    /// connection other units may be using too. When one fails the rest do not run, nothing
    /// is kept, and its error is thrown. No transaction control (`BEGIN`, `COMMIT`) in a unit.
    /// A statement new to the connection is prepared before the unit runs, so it cannot name
    /// what an earlier statement of the same unit creates (DDL belongs in units of its own).
    public func pipeline(_ queries: [PostgresQuery]) async throws -> [PostgresResult] {
        guard !queries.isEmpty else { return [] }
        let connection = try await share()
        do {
            let results = try await connection.pipeline(queries)
            finishUnit(on: connection)
            return results
        } catch {
            finishUnit(on: connection)
            throw error
        }
    }

    /// Runs `body` in a transaction, with `set_config(name, value, true)` for each of `settings`
    /// first (transaction-local, such as `("heard.tenant_id", id)` for row-level security);
    /// it commits when `body` returns and rolls back when it throws (the error is rethrown).
    ///
    /// Round trips are few, and a connection is taken only when something is sent:
    /// - a transaction whose first statement is its last (`queryAndCommit`), or that only
    ///   `enqueue`s, is one unit: the settings, what was queued and that statement go in one
    ///   round trip, on a shared connection (see `pipeline(_:)`);
    /// - otherwise its first `query` or `execute` takes a connection for the transaction alone
    ///   and sends `BEGIN` and the settings with it; statements `enqueue`d travel with the
    ///   next statement or with `COMMIT`;
    /// - a body that sends nothing (a request refused by validation) costs no round trip.
    ///
    /// The transaction must not be used after `body` returns.
    public func transaction<Value>(
        settings: [(name: String, value: String)] = [],
        _ body: (PostgresTransaction) async throws -> Value
    ) async throws -> Value {
        let transaction = PostgresTransaction(pool: self, settings: Self.settingsStatement(settings))
        do {
            let result = try await body(transaction)
            try await transaction.commit()
            transaction.giveBack()
            return result
        } catch {
            // A connection that cannot be rolled back is closed: given back, it is discarded.
            if let connection = transaction.ownConnection {
                do { try await connection.simpleExecute("ROLLBACK") } catch { connection.close() }
            }
            transaction.giveBack()
            throw error
        }
    }

    /// One statement setting every setting (nil when there are none).
    private static func settingsStatement(_ settings: [(name: String, value: String)]) -> PostgresQuery? {
        guard !settings.isEmpty else { return nil }
        let calls = settings.indices.map { "set_config($\(2 * $0 + 1), $\(2 * $0 + 2), true)" }
        let binds = settings.flatMap { [PostgresBind($0.name), PostgresBind($0.value)] }
        return PostgresQuery(unsafeSQL: "SELECT " + calls.joined(separator: ", "), binds: binds)
    }

    /// Lends a connection to `body` alone and takes it back afterwards, even when `body` throws.
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

    /// A connection for the caller alone (give it back with `release`).
    func acquire() async throws -> PostgresConnection {
        let lane = currentLane
        return try await connection(for: try await lease(lane: lane), lane: lane)
    }

    /// A connection to send a unit on (give it back with `finishUnit`): a place on one already
    /// running units, or one taken as `acquire` does, which later units may then join.
    private func share() async throws -> PostgresConnection {
        let lane = currentLane
        let lease = try await lease(lane: lane, forUnit: true)
        if case .shared(let shared) = lease { return shared }
        // A new connection (or one replacing an idle one found lost): units waiting join it.
        let connection = try await connection(for: lease, lane: lane)
        let joining: [Waiter] = state.withLock { state in
            var sharing = Sharing(connection: connection, units: 1)
            defer { state.sharing[connection.affinity].append(sharing) }
            return takeUnitWaiters(&state, units: &sharing.units)
        }
        for waiter in joining { waiter.continuation.resume(returning: .shared(connection)) }
        return connection
    }

    /// Under the lock: the busiest connection running units with room for one more, on `lane`
    /// (or, with `anyLane`, on any lane), counted in. Units pack onto few connections, so
    /// PostgreSQL finds the next one waiting. None while a caller waits for a connection of its
    /// own: units then take their turn in line, so the connections drain for it.
    private func join(_ state: inout State, lane: Int, anyLane: Bool) -> PostgresConnection? {
        guard !state.waiters.contains(where: { !$0.forUnit }) else { return nil }
        var best: (lane: Int, index: Int)?
        for candidate in anyLane ? state.sharing.indices : lane..<lane + 1 {
            for (index, sharing) in state.sharing[candidate].enumerated()
            where sharing.units < pipelineDepth && sharing.connection.isReusable {
                if best.map({ state.sharing[$0.lane][$0.index].units < sharing.units }) ?? true { best = (candidate, index) }
            }
        }
        guard let best else { return nil }
        state.sharing[best.lane][best.index].units += 1
        return state.sharing[best.lane][best.index].connection
    }

    /// Under the lock: the units at the head of the line, as many as a connection running
    /// `units` has room for (counted in); the caller resumes them with `.shared`.
    private func takeUnitWaiters(_ state: inout State, units: inout Int) -> [Waiter] {
        var taken: [Waiter] = []
        while units < pipelineDepth, !state.isShutDown, let first = state.waiters.first, first.forUnit {
            taken.append(state.waiters.removeFirst())
            units += 1
        }
        return taken
    }

    /// A unit on `connection` is answered: its place goes to a unit waiting at the head of the
    /// line; the last one out gives the connection back.
    private func finishUnit(on connection: PostgresConnection) {
        let lane = connection.affinity
        let (joining, last): ([Waiter], Bool) = state.withLock { state in
            guard let index = state.sharing[lane].firstIndex(where: { $0.connection === connection }) else { return ([], false) }
            state.sharing[lane][index].units -= 1
            if connection.isReusable {
                var units = state.sharing[lane][index].units
                let joining = takeUnitWaiters(&state, units: &units)
                state.sharing[lane][index].units = units
                if !joining.isEmpty { return (joining, false) }
            }
            guard state.sharing[lane][index].units == 0 else { return ([], false) }
            state.sharing[lane].remove(at: index)
            return ([], true)
        }
        for waiter in joining { waiter.continuation.resume(returning: .shared(connection)) }
        if last { release(connection) }
    }

    private var currentLane: Int { DispatchQueue.getSpecific(key: laneKey) ?? lanes.count }

    /// A lease made usable: an idle connection is lent (or, if it was lost meanwhile, replaced:
    /// its read source has usually seen the loss; if not, its first statement finds out), and a
    /// slot for a new one gets it opened.
    private func connection(for lease: Lease, lane: Int) async throws -> PostgresConnection {
        switch lease {
        case .connection(let connection):
            guard connection.isReusable else {
                connection.close()
                return try await open(lane: lane)
            }
            connection.markLent()
            return connection
        case .shared(let connection):
            return connection
        case .newConnection:
            return try await open(lane: lane)
        }
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
    /// (taken only when `waiter` is given). For a unit, first a place on a connection running
    /// units on the caller's lane, and before another lane's idle connection a place on one of
    /// that lane's; an idle connection it takes is counted as running it at once (once seen
    /// to be usable, and lent as such), so the units that come next can join it.
    private func decide(_ state: inout State, lane: Int, forUnit: Bool, waiter: CheckedContinuation<Lease, any Error>?) -> Decision {
        if state.isShutDown {
            return .fail(PostgresError(kind: .connection, message: "the pool is shut down"))
        }
        if forUnit, let shared = join(&state, lane: lane, anyLane: false) {
            return .lease(.shared(shared))
        }
        if let connection = state.idle[lane].popLast() {
            return .lease(lend(connection, from: lane, forUnit: forUnit, &state))
        }
        if state.open < size {
            state.open += 1
            state.inUse += 1
            return .lease(.newConnection)
        }
        if forUnit, let shared = join(&state, lane: lane, anyLane: true) {
            return .lease(.shared(shared))
        }
        // Another lane's idle connection, rather than wait: the one with most to spare.
        if state.idleCount > 0, let other = state.idle.indices.max(by: { state.idle[$0].count < state.idle[$1].count }),
           let connection = state.idle[other].popLast() {
            return .lease(lend(connection, from: other, forUnit: forUnit, &state))
        }
        guard state.waiters.count < maxWaiters else {
            return .fail(PostgresError(
                kind: .poolTimeout,
                message: "all \(size) connections are in use and \(maxWaiters) callers are already waiting"))
        }
        guard let waiter else { return .wait(setTimerFor: nil) }
        let deadline = DispatchTime.now() + acquireTimeout.timeInterval
        state.waiters.append(Waiter(deadline: deadline, continuation: waiter, forUnit: forUnit))
        guard !state.timerIsSet else { return .wait(setTimerFor: nil) }
        state.timerIsSet = true
        return .wait(setTimerFor: deadline)
    }

    /// Under the lock: `connection`, just taken from `lane`'s idle list, lent.
    private func lend(_ connection: PostgresConnection, from lane: Int, forUnit: Bool, _ state: inout State) -> Lease {
        state.idleCount -= 1
        state.inUse += 1
        guard forUnit, connection.isReusable else { return .connection(connection) }
        connection.markLent()
        state.sharing[lane].append(Sharing(connection: connection, units: 1))
        return .shared(connection)
    }

    private func lease(lane: Int, forUnit: Bool = false) async throws -> Lease {
        // Usually there is a slot: take it without suspending the caller (a continuation would
        // suspend and re-enqueue the task even when resumed at once).
        switch state.withLock({ decide(&$0, lane: lane, forUnit: forUnit, waiter: nil) }) {
        case .lease(let lease): return lease
        case .fail(let error): throw error
        case .wait: break
        }
        return try await withCheckedThrowingContinuation { continuation in
            switch state.withLock({ decide(&$0, lane: lane, forUnit: forUnit, waiter: continuation) }) {
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
        var placed: [(Waiter, PostgresConnection)] = []
        let (expired, next): ([Waiter], DispatchTime?) = state.withLock { state in
            let count = state.waiters.prefix { $0.deadline <= now }.count
            let expired = Array(state.waiters.prefix(count))
            state.waiters.removeFirst(count)
            if expired.contains(where: { !$0.forUnit }) { placed = placeWaitingUnits(&state) }
            guard let first = state.waiters.first else {
                state.timerIsSet = false
                return (expired, nil)
            }
            return (expired, first.deadline)
        }
        if let next { setTimer(for: next) }
        for (waiter, shared) in placed { waiter.continuation.resume(returning: .shared(shared)) }
        for waiter in expired {
            waiter.continuation.resume(throwing: PostgresError(
                kind: .poolTimeout,
                message: "no database connection became free within \(acquireTimeout.timeInterval) seconds"))
        }
    }

    /// Takes a lent connection back (whole, or from its last unit): hands it to the first
    /// waiter (to the units at the head of the line, as many as it takes), keeps it idle, or
    /// (when it is no longer reusable) closes it and hands its slot on.
    func release(_ connection: PostgresConnection) {
        let reusable = connection.isReusable
        var placed: [(Waiter, PostgresConnection)] = []
        let (waiters, keep): ([Waiter], Bool) = state.withLock { state in
            if reusable, !state.isShutDown, state.waiters.first?.forUnit == true {
                var sharing = Sharing(connection: connection, units: 0)
                let joining = takeUnitWaiters(&state, units: &sharing.units)
                state.sharing[connection.affinity].append(sharing)
                return (joining, true)  // the slot stays in use
            }
            if !state.waiters.isEmpty, !state.isShutDown {
                let first = state.waiters.removeFirst()  // the slot passes on, still in use
                placed = placeWaitingUnits(&state)
                return ([first], reusable)
            }
            state.inUse -= 1
            guard reusable, !state.isShutDown else {
                state.open -= 1
                return ([], false)
            }
            state.idle[connection.affinity].append(connection)
            state.idleCount += 1
            return ([], true)
        }
        if !keep { connection.close() }
        for waiter in waiters {
            waiter.continuation.resume(returning: !keep ? .newConnection : waiter.forUnit ? .shared(connection) : .connection(connection))
        }
        for (waiter, shared) in placed { waiter.continuation.resume(returning: .shared(shared)) }
    }

    /// Under the lock, once a caller that waited for a connection of its own has left the head
    /// of the line: the units now at its head go where units have room (they could not join
    /// while it waited), as many as there is room for.
    private func placeWaitingUnits(_ state: inout State) -> [(Waiter, PostgresConnection)] {
        var placed: [(Waiter, PostgresConnection)] = []
        while !state.isShutDown, let first = state.waiters.first, first.forUnit,
              let shared = join(&state, lane: state.sharing.count - 1, anyLane: true) {
            placed.append((state.waiters.removeFirst(), shared))
        }
        return placed
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

/// A transaction in progress (see `PostgresPool.transaction`).
public struct PostgresTransaction: Sendable {
    private let pool: PostgresPool
    private let unsent: Unsent

    /// What is still to be sent, and the connection once one is taken (shared by the copies of
    /// the transaction its body may make).
    private final class Unsent: Sendable {
        let state: Mutex<State>
        init(_ state: State) { self.state = Mutex(state) }
    }

    private struct State {
        /// The settings, until they are sent with the first statement.
        var settings: PostgresQuery?
        /// Statements `enqueue`d and not sent yet.
        var queued: [PostgresQuery] = []
        /// The connection taken for this transaction alone, `BEGIN` sent on it.
        var connection: PostgresConnection?
        /// A first statement is on its way (no other may start meanwhile).
        var starting = false
        /// `queryAndCommit` ended the transaction.
        var committed = false
    }

    init(pool: PostgresPool, settings: PostgresQuery?) {
        self.pool = pool
        self.unsent = Unsent(State(settings: settings))
    }

    /// The connection taken for this transaction alone, if any (so a failure must roll back).
    var ownConnection: PostgresConnection? { unsent.state.withLock { $0.connection } }

    /// Gives the transaction's own connection back to the pool (once).
    func giveBack() {
        let connection: PostgresConnection? = unsent.state.withLock { state in
            defer { state.connection = nil }
            return state.connection
        }
        if let connection { pool.release(connection) }
    }

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
    /// the transaction's next statement, or with the commit, so it costs no round trip of its
    /// own. If it fails, that statement (or the commit) throws its error and nothing commits.
    public func enqueue(_ query: PostgresQuery) {
        unsent.state.withLock { $0.queued.append(query) }
    }

    /// Runs `query` as the transaction's last statement and commits in the same round trip
    /// (with whatever is still unsent before it), so the transaction holds its locks only while
    /// PostgreSQL works, never while the caller does. If nothing was sent before, the whole
    /// transaction is one unit on a shared connection (`PostgresPool.pipeline`). Nothing may
    /// run in the transaction after.
    public func queryAndCommit(_ query: PostgresQuery) async throws -> [PostgresRow] {
        let (connection, unsent) = try unsent.state.withLock { state -> (PostgresConnection?, [PostgresQuery]) in
            guard !state.committed else { throw Self.alreadyCommitted }
            guard !state.starting else { throw Self.concurrentUse }
            defer { state.settings = nil; state.queued = []; state.committed = true }
            return (state.connection, (state.settings.map { [$0] } ?? []) + state.queued)
        }
        guard let connection else {
            guard let result = try await pool.pipeline(unsent + [query]).last else { throw Self.noResult }
            return result.rows
        }
        let results = try await connection.pipeline(unsent + [query, "COMMIT"])
        guard results.count >= 2 else { throw Self.noResult }
        return results[results.count - 2].rows
    }

    /// Sends `query` with what is unsent: on the transaction's own connection, taken (and
    /// `BEGIN` and the settings sent first) by the first statement.
    private func send(_ query: PostgresQuery) async throws -> PostgresResult {
        enum Next { case begin, send(PostgresConnection, [PostgresQuery]) }
        let next = try unsent.state.withLock { state -> Next in
            guard !state.committed else { throw Self.alreadyCommitted }
            guard !state.starting else { throw Self.concurrentUse }
            guard let connection = state.connection else {
                state.starting = true
                return .begin
            }
            defer { state.queued = [] }
            return .send(connection, state.queued)
        }
        // A first statement keeps others out until it is answered: they must follow its BEGIN.
        defer { if case .begin = next { unsent.state.withLock { $0.starting = false } } }
        let connection: PostgresConnection
        let statements: [PostgresQuery]
        switch next {
        case .send(let own, let unsent):
            connection = own
            statements = unsent + [query]
        case .begin:
            connection = try await pool.acquire()
            statements = unsent.state.withLock { state in
                defer { state.settings = nil; state.queued = []; state.connection = connection }
                return ["BEGIN"] + (state.settings.map { [$0] } ?? []) + state.queued + [query]
            }
        }
        guard let result = try await connection.pipeline(statements).last else { throw Self.noResult }
        return result
    }

    /// Commits: `COMMIT` with what is queued on the transaction's own connection, or, when
    /// nothing was sent, what is queued as one unit; nothing at all when nothing was sent or
    /// queued, or when `queryAndCommit` already committed.
    func commit() async throws {
        let (connection, statements) = try unsent.state.withLock { state -> (PostgresConnection?, [PostgresQuery]) in
            if state.committed {
                guard state.queued.isEmpty else {
                    throw PostgresError(kind: .query, message: "a statement was queued after the transaction committed (queryAndCommit)")
                }
                return (nil, [])
            }
            defer { state.settings = nil; state.queued = []; state.committed = true }
            if let connection = state.connection { return (connection, state.queued + ["COMMIT"]) }
            return (nil, state.queued.isEmpty ? [] : (state.settings.map { [$0] } ?? []) + state.queued)
        }
        guard !statements.isEmpty else { return }
        if let connection {
            _ = try await connection.pipeline(statements)
        } else {
            _ = try await pool.pipeline(statements)
        }
    }

    private static var alreadyCommitted: PostgresError {
        PostgresError(kind: .query, message: "the transaction has already committed (queryAndCommit)")
    }
    private static var noResult: PostgresError { PostgresError(kind: .query, message: "the pipeline returned no result") }
    private static var concurrentUse: PostgresError {
        PostgresError(kind: .query, message: "a transaction's statements must be sent one after another")
    }
}

extension Duration {
    var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}

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
///
/// Every decision above is `PoolStateMachine`'s, a value with no I/O; the pool feeds it events
/// under one lock and carries out what it answers (opening, closing, resuming, failing).
public final class PostgresPool: PostgresPipelining {
    public let configuration: PostgresConfiguration
    public let size: Int
    public let acquireTimeout: Duration
    public let maxWaiters: Int
    /// The most units in flight on one connection.
    public let pipelineDepth: Int
    private let lanes: [DispatchQueue]
    /// Set on each lane's queue to its index.
    private let laneKey = DispatchSpecificKey<Int>()
    /// The decisions (`PoolStateMachine`), and what they are about: the open connections by
    /// id, and the continuations of the callers waiting.
    private let state: Mutex<State>
    /// Numbers for new connections.
    private let connectionCount = Atomic<Int>(0)

    private typealias ConnectionID = PoolStateMachine.ConnectionID

    private struct State {
        var machine: PoolStateMachine
        var connections: [ConnectionID: PostgresConnection] = [:]
        var waiters: [PoolStateMachine.WaiterID: CheckedContinuation<Lent, any Error>] = [:]
        var nextWaiter = 0
        /// Listeners started through `listen`, stopped with the pool.
        var listeners: [PostgresListener] = []
    }

    /// A lease with its connection: one for the caller alone, the right to open one (the slot
    /// is the caller's), or a place on a connection running units.
    private enum Lent: Sendable {
        case connection(PostgresConnection)
        case newConnection
        case shared(PostgresConnection)
    }

    /// What the pool does after an event, taken from the state under the lock.
    private struct Effects {
        var close: [PostgresConnection] = []
        var setTimerFor: UInt64?
        var resume: [(CheckedContinuation<Lent, any Error>, Lent)] = []
        var fail: [CheckedContinuation<Lent, any Error>] = []
        var failure: PoolStateMachine.Failure = .timedOut
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
        let machine = PoolStateMachine(size: size, maxWaiters: maxWaiters, pipelineDepth: pipelineDepth,
                                       lanes: lanes.count, acquireTimeout: acquireTimeout.nanoseconds)
        self.configuration = configuration
        self.size = machine.size
        self.acquireTimeout = acquireTimeout
        self.maxWaiters = machine.maxWaiters
        self.pipelineDepth = machine.pipelineDepth
        self.lanes = lanes
        self.state = Mutex(State(machine: machine))
        for (index, queue) in lanes.enumerated() { queue.setSpecific(key: laneKey, value: index) }
    }

    private let roundTrips = RoundTripCounter()

    /// A snapshot of the pool's use.
    public var stats: PoolStats {
        state.withLock { $0.machine.stats }
    }

    /// Round trips to PostgreSQL since the pool began: a unit, or a step of a transaction, each.
    public var roundTripCount: Int { roundTrips.value }

    // MARK: Running statements

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
    /// Listeners started with `listen` stop.
    public func shutdown() {
        handle { machine, _ in machine.shutdown() }
        let listeners = state.withLock { state in
            defer { state.listeners = [] }
            return state.listeners
        }
        listeners.forEach { $0.stop() }
    }

    /// Starts listening on `channels`, on a connection of its own outside the pool's count,
    /// to the same database (see `PostgresListener`); it stops when the pool shuts down. Nil
    /// (and nothing started) when the pool is already shut down.
    @discardableResult
    public func listen(to channels: [String], retryInterval: Duration = .seconds(1),
                       _ handler: @escaping @Sendable (PostgresListener.Event) -> Void) -> PostgresListener? {
        let listener = PostgresListener(configuration: configuration, channels: channels, retryInterval: retryInterval, handler: handler)
        let started = state.withLock { state -> Bool in
            guard !state.machine.isShutDown else { return false }
            state.listeners.append(listener)
            return true
        }
        guard started else { return nil }
        listener.start()
        return listener
    }

    // MARK: Acquire and release

    /// A connection for the caller alone (give it back with `release`).
    func acquire() async throws -> PostgresConnection {
        let lane = currentLane
        return try await connection(for: try await lease(lane: lane, forUnit: false), lane: lane)
    }

    /// A connection to send a unit on (give it back with `finishUnit`): a place on one already
    /// running units, or one taken as `acquire` does, which later units may then join.
    private func share() async throws -> PostgresConnection {
        let lane = currentLane
        let lease = try await lease(lane: lane, forUnit: true)
        if case .shared(let shared) = lease { return shared }
        // A new connection (or one replacing an idle one found lost): units waiting join it.
        let connection = try await connection(for: lease, lane: lane)
        handle { machine, _ in machine.connectionOpenedForUnit(connection.poolID) }
        return connection
    }

    /// A unit on `connection` is answered (see `PoolStateMachine.unitFinished`).
    private func finishUnit(on connection: PostgresConnection) {
        let reusable = connection.isReusable
        handle { machine, isReusable in machine.unitFinished(on: connection.poolID, reusable: reusable, isReusable: isReusable) }
    }

    /// Takes a lent connection back (see `PoolStateMachine.connectionReleased`).
    func release(_ connection: PostgresConnection) {
        let reusable = connection.isReusable
        handle { machine, isReusable in machine.connectionReleased(connection.poolID, reusable: reusable, isReusable: isReusable) }
    }

    private var currentLane: Int { DispatchQueue.getSpecific(key: laneKey) ?? lanes.count }

    private func lease(lane: Int, forUnit: Bool) async throws -> Lent {
        // Usually there is a slot: take it without suspending the caller (a continuation would
        // suspend and re-enqueue the task even when resumed at once).
        let now = DispatchTime.now().uptimeNanoseconds
        let first = try state.withLock { state -> Lent? in
            let connections = state.connections
            let decision = state.machine.leaseRequested(
                lane: lane, forUnit: forUnit, waiter: nil, now: now, isReusable: { connections[$0]?.isReusable ?? false })
            return try lent(decision, &state)
        }
        if let first { return first }
        return try await withCheckedThrowingContinuation { continuation in
            let now = DispatchTime.now().uptimeNanoseconds
            let (answer, timer) = state.withLock { state -> (Result<Lent, any Error>?, UInt64?) in
                let connections = state.connections
                let waiter = state.nextWaiter
                switch state.machine.leaseRequested(
                    lane: lane, forUnit: forUnit, waiter: waiter, now: now, isReusable: { connections[$0]?.isReusable ?? false }) {
                case .lease(let lease):
                    return (.success(lent(lease, state)), nil)
                case .fail(let failure):
                    return (.failure(poolError(failure)), nil)
                case .wait(let timer):
                    state.nextWaiter += 1
                    state.waiters[waiter] = continuation
                    return (nil, timer)
                }
            }
            if let answer { continuation.resume(with: answer) }
            if let timer { setTimer(for: timer) }
        }
    }

    /// Under the lock: the connection a decision lends, nil for a wait, or the failure thrown.
    private func lent(_ decision: PoolStateMachine.LeaseDecision, _ state: inout State) throws -> Lent? {
        switch decision {
        case .lease(let lease): return lent(lease, state)
        case .fail(let failure): throw poolError(failure)
        case .wait: return nil
        }
    }

    /// Under the lock: `lease` with its connection. An idle connection that starts running
    /// units is marked lent as it is taken, before any unit can be sent on it.
    private func lent(_ lease: PoolStateMachine.Lease, _ state: State) -> Lent {
        switch lease {
        case .connection(let id): return .connection(state.connections[id]!)
        case .newConnection: return .newConnection
        case .shared(let id): return .shared(state.connections[id]!)
        case .idleForUnit(let id):
            let connection = state.connections[id]!
            connection.markLent()
            return .shared(connection)
        }
    }

    /// Runs an event of the state machine under the lock, then carries out its actions.
    private func handle(_ event: (inout PoolStateMachine, (ConnectionID) -> Bool) -> PoolStateMachine.Actions) {
        let effects = state.withLock { state -> Effects in
            let connections = state.connections
            let actions = event(&state.machine) { connections[$0]?.isReusable ?? false }
            var effects = Effects(setTimerFor: actions.setTimerFor, failure: actions.failure)
            for id in actions.close {
                if let connection = state.connections.removeValue(forKey: id) { effects.close.append(connection) }
            }
            for resumption in actions.resume {
                guard let waiter = state.waiters.removeValue(forKey: resumption.waiter) else { continue }
                effects.resume.append((waiter, lent(resumption.lease, state)))
            }
            effects.fail = actions.fail.compactMap { state.waiters.removeValue(forKey: $0) }
            return effects
        }
        effects.close.forEach { $0.close() }
        if let deadline = effects.setTimerFor { setTimer(for: deadline) }
        for (waiter, lent) in effects.resume { waiter.resume(returning: lent) }
        if !effects.fail.isEmpty {
            let error = poolError(effects.failure)
            for waiter in effects.fail { waiter.resume(throwing: error) }
        }
    }

    private func poolError(_ failure: PoolStateMachine.Failure) -> PostgresError {
        switch failure {
        case .shutDown:
            PostgresError(kind: .connection, message: "the pool is shut down")
        case .tooManyWaiters:
            PostgresError(kind: .poolTimeout,
                          message: "all \(size) connections are in use and \(maxWaiters) callers are already waiting")
        case .timedOut:
            PostgresError(kind: .poolTimeout,
                          message: "no database connection became free within \(acquireTimeout.timeInterval) seconds")
        }
    }

    /// One timer at a time, for the first waiter (see `PoolStateMachine.deadlinePassed`).
    private func setTimer(for deadline: UInt64) {
        DispatchQueue.global().asyncAfter(deadline: DispatchTime(uptimeNanoseconds: deadline)) {
            let now = DispatchTime.now().uptimeNanoseconds
            self.handle { machine, isReusable in machine.deadlinePassed(now: now, isReusable: isReusable) }
        }
    }

    /// A lease made usable: an idle connection is lent (or, if it was lost meanwhile, replaced:
    /// its read source has usually seen the loss; if not, its first statement finds out), and a
    /// slot for a new one gets it opened.
    private func connection(for lease: Lent, lane: Int) async throws -> PostgresConnection {
        switch lease {
        case .connection(let connection):
            guard connection.isReusable else {
                state.withLock { _ = $0.connections.removeValue(forKey: connection.poolID) }
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

    /// Opens a connection in a slot already taken, for callers on `lane`; if it cannot be
    /// opened, the slot is given back.
    private func open(lane: Int) async throws -> PostgresConnection {
        let id = ConnectionID(lane: lane, number: connectionCount.add(1, ordering: .relaxed).newValue)
        do {
            let connection = try await PostgresConnection.connect(
                configuration: configuration, target: lane < lanes.count ? lanes[lane] : nil, poolID: id, roundTrips: roundTrips)
            state.withLock { $0.connections[id] = connection }
            return connection
        } catch {
            handle { machine, _ in machine.slotReleased() }
            throw error
        }
    }
}

extension Duration {
    var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }

    /// The duration in whole nanoseconds (0 when negative).
    var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0 else { return 0 }
        return UInt64(seconds) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
    }
}

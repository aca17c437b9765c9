/// The pool's decisions, without the pool: who gets which connection, who waits, who gives up,
/// what is kept and what is closed. It does no I/O, holds no connection and no continuation:
/// it knows connections and waiters by id, takes the time and the connections' health as
/// inputs, and answers each event with what the pool must do (`PostgresPool` runs it under its
/// lock and carries the answers out after). See `PostgresPool` for the policy in words.
struct PoolStateMachine: Sendable {
    /// A connection, as the pool numbers it, with the lane it was opened for (its I/O runs on
    /// that lane's queue; the last lane is for callers on none).
    struct ConnectionID: Hashable, Sendable {
        var lane: Int
        var number: Int
    }

    typealias WaiterID = Int

    /// What a caller gets.
    enum Lease: Equatable, Sendable {
        /// A connection for the caller alone, taken from the idle ones (or handed on by the
        /// caller that had it): the pool checks it is still reusable and marks it lent.
        case connection(ConnectionID)
        /// A slot: the caller opens a new connection in it (`connectionOpenedForUnit` once
        /// open for a unit, `slotReleased` if it cannot be opened).
        case newConnection
        /// A place on a connection already running units.
        case shared(ConnectionID)
        /// An idle connection that now runs the caller's unit, and takes the units that follow:
        /// the pool marks it lent.
        case idleForUnit(ConnectionID)
    }

    enum Failure: Equatable, Sendable {
        case shutDown
        /// `maxWaiters` callers are waiting already.
        case tooManyWaiters
        /// The waiter's deadline passed.
        case timedOut
    }

    enum LeaseDecision: Equatable, Sendable {
        case lease(Lease)
        case fail(Failure)
        /// The caller must wait: in line when a waiter was given, and then, when `setTimerFor`
        /// is not nil, the pool sets the one timer for that instant (`deadlinePassed`).
        case wait(setTimerFor: UInt64?)
    }

    struct Resumption: Equatable, Sendable {
        var waiter: WaiterID
        var lease: Lease
    }

    /// What the pool must do after an event, in this order: close, set the timer, resume,
    /// then fail.
    struct Actions: Equatable, Sendable {
        var close: [ConnectionID] = []
        var setTimerFor: UInt64?
        var resume: [Resumption] = []
        var fail: [WaiterID] = []
        var failure: Failure = .timedOut
    }

    private struct Waiter: Sendable {
        let id: WaiterID
        let deadline: UInt64
        /// Waiting to send a unit (any connection running units with room will do).
        let forUnit: Bool
    }

    /// A connection running units, and how many.
    private struct Sharing: Sendable {
        let connection: ConnectionID
        var units: Int
    }

    let size: Int
    let maxWaiters: Int
    let pipelineDepth: Int
    /// Nanoseconds a caller may wait.
    let acquireTimeout: UInt64

    /// Idle connections by lane.
    private var idle: [[ConnectionID]]
    /// Connections running units (counted in `inUse`), by lane.
    private var sharing: [[Sharing]]
    private var idleCount = 0
    /// Slots taken: idle, lent, or being opened.
    private var open = 0
    private var inUse = 0
    /// In the order they came; all wait as long, so the first has the earliest deadline.
    private var waiters: [Waiter] = []
    /// A timer is set for the first waiter's deadline.
    private var timerIsSet = false
    private(set) var isShutDown = false

    /// - Parameter lanes: the number of lanes, not counting the one for callers on none.
    init(size: Int, maxWaiters: Int, pipelineDepth: Int, lanes: Int, acquireTimeout: UInt64) {
        self.size = max(1, size)
        self.maxWaiters = max(0, maxWaiters)
        self.pipelineDepth = max(1, pipelineDepth)
        self.acquireTimeout = acquireTimeout
        idle = Array(repeating: [], count: lanes + 1)
        sharing = Array(repeating: [], count: lanes + 1)
    }

    var stats: PoolStats {
        PoolStats(size: size, open: open, inUse: inUse, idle: idleCount, waiting: waiters.count,
                  units: sharing.joined().reduce(0) { $0 + $1.units })
    }

    // MARK: Events

    /// A caller on `lane` asks for a connection (for a unit, or for itself alone): an idle
    /// connection, a slot for a new one, a failure, or a place in line (taken only when
    /// `waiter` is given; without one, nothing changes and the caller asks again with one).
    /// A unit first takes a place on a connection running units on its lane, and before another
    /// lane's idle connection a place on one of that lane's; an idle connection it takes runs
    /// it at once, so the units that come next can join it.
    mutating func leaseRequested(
        lane: Int, forUnit: Bool, waiter: WaiterID?, now: UInt64, isReusable: (ConnectionID) -> Bool
    ) -> LeaseDecision {
        if isShutDown { return .fail(.shutDown) }
        if forUnit, let shared = join(lane: lane, anyLane: false, isReusable) { return .lease(.shared(shared)) }
        if let connection = idle[lane].popLast() {
            return .lease(lend(connection, from: lane, forUnit: forUnit, isReusable))
        }
        if open < size {
            open += 1
            inUse += 1
            return .lease(.newConnection)
        }
        if forUnit, let shared = join(lane: lane, anyLane: true, isReusable) { return .lease(.shared(shared)) }
        // Another lane's idle connection, rather than wait: the one with most to spare.
        if idleCount > 0, let other = idle.indices.max(by: { idle[$0].count < idle[$1].count }),
           let connection = idle[other].popLast() {
            return .lease(lend(connection, from: other, forUnit: forUnit, isReusable))
        }
        guard waiters.count < maxWaiters else { return .fail(.tooManyWaiters) }
        guard let waiter else { return .wait(setTimerFor: nil) }
        let deadline = now + acquireTimeout
        waiters.append(Waiter(id: waiter, deadline: deadline, forUnit: forUnit))
        guard !timerIsSet else { return .wait(setTimerFor: nil) }
        timerIsSet = true
        return .wait(setTimerFor: deadline)
    }

    /// A connection opened in a slot (`.newConnection`), or lent whole to a unit, now runs that
    /// unit: the units waiting at the head of the line join it.
    mutating func connectionOpenedForUnit(_ connection: ConnectionID) -> Actions {
        var entry = Sharing(connection: connection, units: 1)
        let joining = takeUnitWaiters(units: &entry.units)
        sharing[connection.lane].append(entry)
        return Actions(resume: joining.map { Resumption(waiter: $0.id, lease: .shared(connection)) })
    }

    /// A unit on `connection` is answered: its place goes to a unit waiting at the head of the
    /// line; the last one out gives the connection back (see `connectionReleased`).
    mutating func unitFinished(
        on connection: ConnectionID, reusable: Bool, isReusable: (ConnectionID) -> Bool
    ) -> Actions {
        let lane = connection.lane
        guard let index = sharing[lane].firstIndex(where: { $0.connection == connection }) else { return Actions() }
        sharing[lane][index].units -= 1
        if reusable {
            var units = sharing[lane][index].units
            let joining = takeUnitWaiters(units: &units)
            sharing[lane][index].units = units
            if !joining.isEmpty {
                return Actions(resume: joining.map { Resumption(waiter: $0.id, lease: .shared(connection)) })
            }
        }
        guard sharing[lane][index].units == 0 else { return Actions() }
        sharing[lane].remove(at: index)
        return connectionReleased(connection, reusable: reusable, isReusable: isReusable)
    }

    /// A connection lent whole comes back (or a shared one from its last unit): it goes to the
    /// units at the head of the line (as many as it takes), or to the first waiter, or idle;
    /// one no longer reusable is closed and its slot handed on.
    mutating func connectionReleased(
        _ connection: ConnectionID, reusable: Bool, isReusable: (ConnectionID) -> Bool
    ) -> Actions {
        if !isShutDown, let first = waiters.first {
            if reusable, first.forUnit {
                var entry = Sharing(connection: connection, units: 0)
                let joining = takeUnitWaiters(units: &entry.units)
                sharing[connection.lane].append(entry)
                return Actions(resume: joining.map { Resumption(waiter: $0.id, lease: .shared(connection)) })
            }
            // The slot passes on, still in use: the connection itself when it is reusable.
            waiters.removeFirst()
            var actions = Actions(close: reusable ? [] : [connection])
            actions.resume = [Resumption(waiter: first.id, lease: reusable ? .connection(connection) : .newConnection)]
            actions.resume += placeWaitingUnits(isReusable)
            return actions
        }
        inUse -= 1
        guard reusable, !isShutDown else {
            open -= 1
            return Actions(close: [connection])
        }
        idle[connection.lane].append(connection)
        idleCount += 1
        return Actions()
    }

    /// A slot's connection could not be opened: the slot goes to the first waiter, or is freed.
    mutating func slotReleased() -> Actions {
        if !isShutDown, !waiters.isEmpty {
            return Actions(resume: [Resumption(waiter: waiters.removeFirst().id, lease: .newConnection)])
        }
        inUse -= 1
        open -= 1
        return Actions()
    }

    /// The timer fired: every waiter whose deadline is past gives up, and the timer is set again
    /// for the next one. One timer at a time, for the first waiter, rather than one per waiter.
    mutating func deadlinePassed(now: UInt64, isReusable: (ConnectionID) -> Bool) -> Actions {
        let count = waiters.prefix { $0.deadline <= now }.count
        let expired = waiters.prefix(count)
        waiters.removeFirst(count)
        var actions = Actions(fail: expired.map(\.id), failure: .timedOut)
        if expired.contains(where: { !$0.forUnit }) { actions.resume = placeWaitingUnits(isReusable) }
        if let first = waiters.first {
            actions.setTimerFor = first.deadline
        } else {
            timerIsSet = false
        }
        return actions
    }

    /// Idle connections close and waiters fail; lent connections close when they come back.
    mutating func shutdown() -> Actions {
        isShutDown = true
        let actions = Actions(close: idle.flatMap { $0 }, fail: waiters.map(\.id), failure: .shutDown)
        open -= idleCount
        idle = idle.map { _ in [] }
        idleCount = 0
        waiters = []
        return actions
    }

    // MARK: Helpers

    /// `connection`, just taken from `lane`'s idle list, lent: for a unit, it runs units from
    /// now on (unless it is no longer reusable: lent whole, the pool replaces it).
    private mutating func lend(
        _ connection: ConnectionID, from lane: Int, forUnit: Bool, _ isReusable: (ConnectionID) -> Bool
    ) -> Lease {
        idleCount -= 1
        inUse += 1
        guard forUnit, isReusable(connection) else { return .connection(connection) }
        sharing[lane].append(Sharing(connection: connection, units: 1))
        return .idleForUnit(connection)
    }

    /// The busiest connection running units with room for one more, on `lane` (or, with
    /// `anyLane`, on any lane), counted in. Units pack onto few connections, so PostgreSQL
    /// finds the next one waiting. None while a caller waits for a connection of its own: units
    /// then take their turn in line, so the connections drain for it.
    private mutating func join(lane: Int, anyLane: Bool, _ isReusable: (ConnectionID) -> Bool) -> ConnectionID? {
        guard !waiters.contains(where: { !$0.forUnit }) else { return nil }
        var best: (lane: Int, index: Int)?
        for candidate in anyLane ? sharing.indices : lane..<lane + 1 {
            for (index, entry) in sharing[candidate].enumerated()
            where entry.units < pipelineDepth && isReusable(entry.connection) {
                if best.map({ sharing[$0.lane][$0.index].units < entry.units }) ?? true { best = (candidate, index) }
            }
        }
        guard let best else { return nil }
        sharing[best.lane][best.index].units += 1
        return sharing[best.lane][best.index].connection
    }

    /// The units at the head of the line, as many as a connection running `units` has room for
    /// (counted in).
    private mutating func takeUnitWaiters(units: inout Int) -> [Waiter] {
        var taken: [Waiter] = []
        while units < pipelineDepth, !isShutDown, let first = waiters.first, first.forUnit {
            taken.append(waiters.removeFirst())
            units += 1
        }
        return taken
    }

    /// Once a caller that waited for a connection of its own has left the head of the line:
    /// the units now at its head go where units have room (they could not join while it
    /// waited), as many as there is room for.
    private mutating func placeWaitingUnits(_ isReusable: (ConnectionID) -> Bool) -> [Resumption] {
        var placed: [Resumption] = []
        while !isShutDown, let first = waiters.first, first.forUnit,
              let shared = join(lane: sharing.count - 1, anyLane: true, isReusable) {
            placed.append(Resumption(waiter: waiters.removeFirst().id, lease: .shared(shared)))
        }
        return placed
    }
}

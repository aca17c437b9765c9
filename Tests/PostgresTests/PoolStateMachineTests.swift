import XCTest
@testable import Postgres

/// The pool's decisions, event by event, with connections and waiters known by number and
/// the time given: no database, no thread, no timer.
final class PoolStateMachineTests: XCTestCase {
    typealias Machine = PoolStateMachine
    typealias ID = PoolStateMachine.ConnectionID

    private static let second: UInt64 = 1_000_000_000

    private func machine(size: Int = 2, maxWaiters: Int = 10, depth: Int = 3, lanes: Int = 0) -> Machine {
        Machine(size: size, maxWaiters: maxWaiters, pipelineDepth: depth, lanes: lanes, acquireTimeout: Self.second)
    }

    /// Connection `number`, opened for callers on no lane (lane `lanes`) unless told otherwise.
    private func id(_ number: Int, lane: Int = 0) -> ID { ID(lane: lane, number: number) }

    private let healthy: (ID) -> Bool = { _ in true }

    /// Opens connection `number` in a new slot for a caller alone, as the pool would.
    private func openWhole(_ machine: inout Machine, lane: Int = 0) {
        XCTAssertEqual(machine.leaseRequested(lane: lane, forUnit: false, waiter: nil, now: 0, isReusable: healthy),
                       .lease(.newConnection))
    }

    func testACallerGetsAnIdleConnectionThenANewOneThenWaitsThenGivesUpAtItsDeadline() {
        var pool = machine(size: 1)
        openWhole(&pool)
        XCTAssertEqual(pool.connectionReleased(id(1), reusable: true, isReusable: healthy), Machine.Actions())
        XCTAssertEqual(pool.stats, PoolStats(size: 1, open: 1, inUse: 0, idle: 1, waiting: 0))
        XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: false, waiter: nil, now: 0, isReusable: healthy),
                       .lease(.connection(id(1))))
        // Every slot taken: asked without a waiter, nothing changes; with one, it waits and the
        // first waiter sets the timer, the second does not.
        XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: false, waiter: nil, now: 5, isReusable: healthy),
                       .wait(setTimerFor: nil))
        XCTAssertEqual(pool.stats.waiting, 0)
        XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: false, waiter: 1, now: 5, isReusable: healthy),
                       .wait(setTimerFor: 5 + Self.second))
        XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: false, waiter: 2, now: 9, isReusable: healthy),
                       .wait(setTimerFor: nil))
        // The timer fires: the first gives up, and the timer is set again for the second.
        XCTAssertEqual(pool.deadlinePassed(now: 5 + Self.second, isReusable: healthy),
                       Machine.Actions(setTimerFor: 9 + Self.second, fail: [1], failure: .timedOut))
        // The connection comes back: the second waiter gets it, still in use.
        XCTAssertEqual(pool.connectionReleased(id(1), reusable: true, isReusable: healthy),
                       Machine.Actions(resume: [.init(waiter: 2, lease: .connection(id(1)))]))
        XCTAssertEqual(pool.stats, PoolStats(size: 1, open: 1, inUse: 1, idle: 0, waiting: 0))
        // The timer set for it finds nobody left, and is not set again.
        XCTAssertEqual(pool.deadlinePassed(now: 9 + Self.second, isReusable: healthy), Machine.Actions(failure: .timedOut))
        XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: false, waiter: 3, now: 20, isReusable: healthy),
                       .wait(setTimerFor: 20 + Self.second), "a later waiter sets a timer of its own")
    }

    func testTooManyWaitersFailAtOnce() {
        var pool = machine(size: 1, maxWaiters: 1)
        openWhole(&pool)
        XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: false, waiter: 1, now: 0, isReusable: healthy),
                       .wait(setTimerFor: Self.second))
        XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: false, waiter: 2, now: 0, isReusable: healthy),
                       .fail(.tooManyWaiters))
        XCTAssertEqual(pool.stats.waiting, 1)
    }

    func testUnitsPackOntoTheBusiestConnectionUpToTheDepth() {
        var pool = machine(size: 2, maxWaiters: 0, depth: 3)
        // Two connections running units: one with two, one with one.
        for number in 1...2 {
            XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: true, waiter: nil, now: 0, isReusable: { _ in false }),
                           .lease(.newConnection))
            XCTAssertEqual(pool.connectionOpenedForUnit(id(number)), Machine.Actions())
        }
        XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: true, waiter: nil, now: 0, isReusable: healthy),
                       .lease(.shared(id(1))), "a tie goes to the first")
        XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: true, waiter: nil, now: 0, isReusable: healthy),
                       .lease(.shared(id(1))), "the busiest with room")
        XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: true, waiter: nil, now: 0, isReusable: healthy),
                       .lease(.shared(id(2))), "the busiest is full")
        XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: true, waiter: nil, now: 0, isReusable: { $0 != self.id(2) }),
                       .fail(.tooManyWaiters), "a connection found broken takes no more units")
        XCTAssertEqual(pool.stats, PoolStats(size: 2, open: 2, inUse: 2, idle: 0, waiting: 0, units: 5))
        // A caller alone finds nothing either: both connections are lent to units.
        XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: false, waiter: nil, now: 0, isReusable: healthy),
                       .fail(.tooManyWaiters))
        // Units finish; the last one out of a connection gives it back, idle.
        for _ in 0..<3 { XCTAssertEqual(pool.unitFinished(on: id(1), reusable: true, isReusable: healthy), Machine.Actions()) }
        XCTAssertEqual(pool.stats, PoolStats(size: 2, open: 2, inUse: 1, idle: 1, waiting: 0, units: 2))
    }

    func testAnIdleConnectionTakenForAUnitRunsTheUnitsThatFollow() {
        var pool = machine(size: 1)
        openWhole(&pool)
        _ = pool.connectionReleased(id(1), reusable: true, isReusable: healthy)
        XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: true, waiter: nil, now: 0, isReusable: healthy),
                       .lease(.idleForUnit(id(1))))
        XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: true, waiter: nil, now: 0, isReusable: healthy),
                       .lease(.shared(id(1))))
        XCTAssertEqual(pool.stats, PoolStats(size: 1, open: 1, inUse: 1, idle: 0, waiting: 0, units: 2))
    }

    func testAnIdleConnectionFoundBrokenIsLentWholeForThePoolToReplace() {
        var pool = machine(size: 1)
        openWhole(&pool)
        _ = pool.connectionReleased(id(1), reusable: true, isReusable: healthy)
        XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: true, waiter: nil, now: 0, isReusable: { _ in false }),
                       .lease(.connection(id(1))))
        // The pool opens a replacement in the same slot, and it runs the unit.
        XCTAssertEqual(pool.connectionOpenedForUnit(id(2)), Machine.Actions())
        XCTAssertEqual(pool.stats, PoolStats(size: 1, open: 1, inUse: 1, idle: 0, waiting: 0, units: 1))
    }

    func testUnitsWaitingForAFreedConnectionAllTakeItAsManyAsItsDepth() {
        var pool = machine(size: 1, depth: 3)
        openWhole(&pool)
        for waiter in 1...4 {
            XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: true, waiter: waiter, now: 0, isReusable: healthy),
                           .wait(setTimerFor: waiter == 1 ? Self.second : nil))
        }
        XCTAssertEqual(pool.connectionReleased(id(1), reusable: true, isReusable: healthy),
                       Machine.Actions(resume: (1...3).map { .init(waiter: $0, lease: .shared(id(1))) }))
        XCTAssertEqual(pool.stats, PoolStats(size: 1, open: 1, inUse: 1, idle: 0, waiting: 1, units: 3))
        // A unit done, the fourth takes its place.
        XCTAssertEqual(pool.unitFinished(on: id(1), reusable: true, isReusable: healthy),
                       Machine.Actions(resume: [.init(waiter: 4, lease: .shared(id(1)))]))
    }

    /// First come, first served: units and callers alone, mixed, are served in the order they
    /// came, and nobody who comes later is served before them, whatever frees up.
    func testWaitersAreServedInTheOrderTheyCame() {
        var pool = machine(size: 2, depth: 2)
        openWhole(&pool)  // connection 1, lent whole
        XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: true, waiter: nil, now: 0, isReusable: healthy), .lease(.newConnection))
        XCTAssertEqual(pool.connectionOpenedForUnit(id(2)), Machine.Actions())
        XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: true, waiter: nil, now: 0, isReusable: healthy), .lease(.shared(id(2))))
        // Everything is taken: 1 (a unit), 2 (alone), 3, 4 (units) wait, in that order.
        for (waiter, forUnit) in [(1, true), (2, false), (3, true), (4, true)] {
            XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: forUnit, waiter: waiter, now: 0, isReusable: healthy),
                           .wait(setTimerFor: waiter == 1 ? Self.second : nil))
        }
        // A unit finishes: its place goes to the first in line, not to anyone later.
        XCTAssertEqual(pool.unitFinished(on: id(2), reusable: true, isReusable: healthy),
                       Machine.Actions(resume: [.init(waiter: 1, lease: .shared(id(2)))]))
        // A newcomer unit finds room nowhere it may take: the caller alone (2) is ahead of it.
        XCTAssertEqual(pool.unitFinished(on: id(2), reusable: true, isReusable: healthy), Machine.Actions())
        XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: true, waiter: 5, now: 1, isReusable: healthy), .wait(setTimerFor: nil))
        // The connection empties: it goes to 2, whole.
        XCTAssertEqual(pool.unitFinished(on: id(2), reusable: true, isReusable: healthy),
                       Machine.Actions(resume: [.init(waiter: 2, lease: .connection(id(2)))]))
        // Connection 1 comes back: 3 and 4 take it (its depth), 5 still waits; then 5 takes a place.
        XCTAssertEqual(pool.connectionReleased(id(1), reusable: true, isReusable: healthy),
                       Machine.Actions(resume: [.init(waiter: 3, lease: .shared(id(1))), .init(waiter: 4, lease: .shared(id(1)))]))
        XCTAssertEqual(pool.stats.waiting, 1)
        XCTAssertEqual(pool.unitFinished(on: id(1), reusable: true, isReusable: healthy),
                       Machine.Actions(resume: [.init(waiter: 5, lease: .shared(id(1)))]))
        XCTAssertEqual(pool.stats.waiting, 0)
    }

    func testACallerWaitingForItsOwnConnectionStopsUnitsJoiningUntilItIsServed() {
        var pool = machine(size: 2, depth: 8)
        openWhole(&pool)  // connection 1, lent whole
        XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: true, waiter: nil, now: 0, isReusable: healthy),
                       .lease(.newConnection))
        _ = pool.connectionOpenedForUnit(id(2))  // connection 2 runs a unit, with room
        XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: false, waiter: 1, now: 0, isReusable: healthy),
                       .wait(setTimerFor: Self.second))
        XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: true, waiter: 2, now: 0, isReusable: healthy),
                       .wait(setTimerFor: nil), "the unit queues behind the caller, though connection 2 has room")
        // Connection 1 comes back: the caller gets it, and the unit behind it joins connection 2.
        XCTAssertEqual(pool.connectionReleased(id(1), reusable: true, isReusable: healthy),
                       Machine.Actions(resume: [.init(waiter: 1, lease: .connection(id(1))), .init(waiter: 2, lease: .shared(id(2)))]))
        XCTAssertEqual(pool.stats, PoolStats(size: 2, open: 2, inUse: 2, idle: 0, waiting: 0, units: 2))
    }

    func testWhenTheCallerWaitingForItsOwnConnectionGivesUpTheUnitsBehindItJoin() {
        var pool = machine(size: 2)
        openWhole(&pool)
        _ = pool.leaseRequested(lane: 0, forUnit: true, waiter: nil, now: 0, isReusable: healthy)
        _ = pool.connectionOpenedForUnit(id(2))
        _ = pool.leaseRequested(lane: 0, forUnit: false, waiter: 1, now: 0, isReusable: healthy)
        _ = pool.leaseRequested(lane: 0, forUnit: true, waiter: 2, now: 10, isReusable: healthy)
        XCTAssertEqual(pool.deadlinePassed(now: Self.second, isReusable: healthy),
                       Machine.Actions(resume: [.init(waiter: 2, lease: .shared(id(2)))], fail: [1], failure: .timedOut))
        XCTAssertEqual(pool.stats.waiting, 0)
    }

    func testABrokenConnectionIsClosedAndItsSlotGoesToTheFirstWaiter() {
        var pool = machine(size: 1)
        openWhole(&pool)
        _ = pool.leaseRequested(lane: 0, forUnit: false, waiter: 1, now: 0, isReusable: healthy)
        XCTAssertEqual(pool.connectionReleased(id(1), reusable: false, isReusable: healthy),
                       Machine.Actions(close: [id(1)], resume: [.init(waiter: 1, lease: .newConnection)]))
        // That connection cannot be opened either: the slot is freed.
        XCTAssertEqual(pool.slotReleased(), Machine.Actions())
        XCTAssertEqual(pool.stats, PoolStats(size: 1, open: 0, inUse: 0, idle: 0, waiting: 0))
        // With nobody waiting, a broken connection just closes.
        openWhole(&pool)
        XCTAssertEqual(pool.connectionReleased(id(3), reusable: false, isReusable: healthy), Machine.Actions(close: [id(3)]))
        XCTAssertEqual(pool.stats, PoolStats(size: 1, open: 0, inUse: 0, idle: 0, waiting: 0))
    }

    func testABrokenConnectionsLastUnitClosesItAndUnitsWaitingGetANewSlot() {
        var pool = machine(size: 1, depth: 2)
        XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: true, waiter: nil, now: 0, isReusable: healthy),
                       .lease(.newConnection))
        _ = pool.connectionOpenedForUnit(id(1))
        _ = pool.leaseRequested(lane: 0, forUnit: true, waiter: nil, now: 0, isReusable: healthy)
        _ = pool.leaseRequested(lane: 0, forUnit: true, waiter: 7, now: 0, isReusable: healthy)
        // The connection is lost: neither unit's place goes to the waiter; the last out closes it.
        XCTAssertEqual(pool.unitFinished(on: id(1), reusable: false, isReusable: { _ in false }), Machine.Actions())
        XCTAssertEqual(pool.unitFinished(on: id(1), reusable: false, isReusable: { _ in false }),
                       Machine.Actions(close: [id(1)], resume: [.init(waiter: 7, lease: .newConnection)]))
        XCTAssertEqual(pool.stats, PoolStats(size: 1, open: 1, inUse: 1, idle: 0, waiting: 0, units: 0))
    }

    func testACallerOnALanePrefersItsLaneAndBorrowsAnotherLanesIdleConnectionRatherThanWait() {
        var pool = machine(size: 2, lanes: 2)
        openWhole(&pool, lane: 0)
        openWhole(&pool, lane: 1)
        _ = pool.connectionReleased(id(1, lane: 0), reusable: true, isReusable: healthy)
        _ = pool.connectionReleased(id(2, lane: 1), reusable: true, isReusable: healthy)
        XCTAssertEqual(pool.leaseRequested(lane: 1, forUnit: false, waiter: nil, now: 0, isReusable: healthy),
                       .lease(.connection(id(2, lane: 1))))
        XCTAssertEqual(pool.leaseRequested(lane: 1, forUnit: false, waiter: nil, now: 0, isReusable: healthy),
                       .lease(.connection(id(1, lane: 0))), "every slot taken: lane 0's idle connection, not a wait")
        _ = pool.connectionReleased(id(1, lane: 0), reusable: true, isReusable: healthy)
        XCTAssertEqual(pool.leaseRequested(lane: 2, forUnit: false, waiter: nil, now: 0, isReusable: healthy),
                       .lease(.connection(id(1, lane: 0))), "a caller on no lane borrows too")
    }

    func testAUnitJoinsItsOwnLanesConnectionBeforeOpeningOneAndAnotherLanesBeforeBorrowing() {
        var pool = machine(size: 2, lanes: 2)
        XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: true, waiter: nil, now: 0, isReusable: healthy), .lease(.newConnection))
        _ = pool.connectionOpenedForUnit(id(1, lane: 0))
        XCTAssertEqual(pool.leaseRequested(lane: 1, forUnit: true, waiter: nil, now: 0, isReusable: healthy),
                       .lease(.newConnection), "a slot is free: lane 1 opens its own")
        _ = pool.connectionOpenedForUnit(id(2, lane: 1))
        XCTAssertEqual(pool.leaseRequested(lane: 1, forUnit: true, waiter: nil, now: 0, isReusable: healthy),
                       .lease(.shared(id(2, lane: 1))))
        XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: true, waiter: nil, now: 0, isReusable: { $0.lane != 0 }),
                       .lease(.shared(id(2, lane: 1))), "its own lane's is broken and no slot is free: another lane's")
    }

    func testShutdownClosesIdleConnectionsFailsWaitersAndClosesLentOnesAsTheyComeBack() {
        var pool = machine(size: 2)
        openWhole(&pool)
        openWhole(&pool)
        _ = pool.connectionReleased(id(2), reusable: true, isReusable: healthy)
        XCTAssertEqual(pool.shutdown(), Machine.Actions(close: [id(2)], failure: .shutDown))
        XCTAssertEqual(pool.stats, PoolStats(size: 2, open: 1, inUse: 1, idle: 0, waiting: 0))
        XCTAssertEqual(pool.connectionReleased(id(1), reusable: true, isReusable: healthy), Machine.Actions(close: [id(1)]))
        XCTAssertEqual(pool.stats, PoolStats(size: 2, open: 0, inUse: 0, idle: 0, waiting: 0))
        XCTAssertEqual(pool.leaseRequested(lane: 0, forUnit: false, waiter: 1, now: 0, isReusable: healthy), .fail(.shutDown))

        var waited = machine(size: 1)
        openWhole(&waited)
        _ = waited.leaseRequested(lane: 0, forUnit: true, waiter: 1, now: 0, isReusable: healthy)
        XCTAssertEqual(waited.shutdown(), Machine.Actions(fail: [1], failure: .shutDown))
        XCTAssertEqual(waited.deadlinePassed(now: Self.second, isReusable: healthy), Machine.Actions(failure: .timedOut))
        XCTAssertEqual(waited.connectionReleased(id(1), reusable: true, isReusable: healthy), Machine.Actions(close: [id(1)]))
    }
}

import Foundation
@testable import HeardAPI
import Postgres
import Synchronization
import XCTest

/// Requests of one key that come while its groups are in flight wait, and go together in the
/// next group, first come first served; a lone request goes at once.
final class CoalescerTests: XCTestCase {
    /// Records the groups run, and holds each until the test lets it go.
    private final class Recorder: Sendable {
        let groups = Mutex<[[Int]]>([])
        let gates = Mutex<[CheckedContinuation<Void, Never>]>([])

        func run(_ items: [Int], held: Bool) async -> [String] {
            groups.withLock { $0.append(items) }
            if held { await withCheckedContinuation { continuation in gates.withLock { $0.append(continuation) } } }
            return items.map { "done \($0)" }
        }

        /// Lets every held group go on.
        func release() {
            let waiting = gates.withLock { gates in
                defer { gates = [] }
                return gates
            }
            waiting.forEach { $0.resume() }
        }

        var heldCount: Int { gates.withLock { $0.count } }
    }

    private func eventually(_ condition: @Sendable () -> Bool, _ message: String) async throws {
        for _ in 0..<2000 where !condition() { try await Task.sleep(for: .milliseconds(1)) }
        XCTAssertTrue(condition(), message)
    }

    func testALoneRequestGoesAtOnceAndAlone() async {
        let coalescer = Coalescer<String, Int, String>(maxInFlight: 1, maxGroup: 10)
        let recorder = Recorder()
        let outcome = await coalescer.submit(7, key: "k") { await recorder.run($0, held: false) }
        XCTAssertEqual(outcome, "done 7")
        XCTAssertEqual(recorder.groups.withLock { $0 }, [[7]])
        XCTAssertEqual(coalescer.activeKeys, 0, "nothing is kept once no request is in flight")
    }

    func testRequestsThatCameWhileAGroupWasInFlightGoTogetherInTheOrderTheyCame() async throws {
        let coalescer = Coalescer<String, Int, String>(maxInFlight: 1, maxGroup: 100)
        let recorder = Recorder()
        let first = Task { await coalescer.submit(0, key: "k") { await recorder.run($0, held: true) } }
        try await eventually({ recorder.heldCount == 1 }, "the first request's group is in flight")
        // Ten more, one after another, while it is held: they wait.
        var waiting: [Task<String, Never>] = []
        for item in 1...10 {
            waiting.append(Task { await coalescer.submit(item, key: "k") { await recorder.run($0, held: false) } })
            try await eventually({ recorder.groups.withLock { $0.count } == 1 }, "no new group while one is in flight")
            try await Task.sleep(for: .milliseconds(2))
        }
        XCTAssertEqual(recorder.groups.withLock { $0.count }, 1, "none of them went alone")
        recorder.release()
        let firstOutcome = await first.value
        XCTAssertEqual(firstOutcome, "done 0")
        var outcomes: [String] = []
        for task in waiting { outcomes.append(await task.value) }
        XCTAssertEqual(outcomes, (1...10).map { "done \($0)" }, "each request gets its own outcome")
        let groups = recorder.groups.withLock { $0 }
        XCTAssertEqual(groups.count, 2)
        XCTAssertEqual(groups.last?.sorted(), Array(1...10), "the ten went in one group")
        XCTAssertEqual(groups.last?.first, 1, "led by the one that waited longest")
        XCTAssertEqual(coalescer.activeKeys, 0)
    }

    func testAGroupHoldsAtMostMaxGroupAndTheRestFollow() async throws {
        let coalescer = Coalescer<String, Int, String>(maxInFlight: 1, maxGroup: 4)
        let recorder = Recorder()
        let first = Task { await coalescer.submit(0, key: "k") { await recorder.run($0, held: true) } }
        try await eventually({ recorder.heldCount == 1 }, "the first group is in flight")
        let waiting = (1...10).map { item in Task { await coalescer.submit(item, key: "k") { await recorder.run($0, held: false) } } }
        try await Task.sleep(for: .milliseconds(50))
        recorder.release()
        _ = await first.value
        for (offset, task) in waiting.enumerated() {
            let outcome = await task.value
            XCTAssertEqual(outcome, "done \(offset + 1)")
        }
        let sizes = recorder.groups.withLock { $0.map(\.count) }
        XCTAssertEqual(sizes, [1, 4, 4, 2])
        XCTAssertEqual(recorder.groups.withLock { $0.dropFirst().flatMap { $0 }.sorted() }, Array(1...10), "every request once")
    }

    func testOtherKeysDoNotWait() async throws {
        let coalescer = Coalescer<String, Int, String>(maxInFlight: 1, maxGroup: 10)
        let recorder = Recorder()
        let held = Task { await coalescer.submit(1, key: "busy") { await recorder.run($0, held: true) } }
        try await eventually({ recorder.heldCount == 1 }, "one key's group is in flight")
        let other = await coalescer.submit(2, key: "other") { await recorder.run($0, held: false) }
        XCTAssertEqual(other, "done 2", "another key's request went at once")
        recorder.release()
        _ = await held.value
    }

    func testUpToMaxInFlightGroupsRunAtOnce() async throws {
        let coalescer = Coalescer<String, Int, String>(maxInFlight: 2, maxGroup: 10)
        let recorder = Recorder()
        let a = Task { await coalescer.submit(1, key: "k") { await recorder.run($0, held: true) } }
        let b = Task { await coalescer.submit(2, key: "k") { await recorder.run($0, held: true) } }
        try await eventually({ recorder.heldCount == 2 }, "two groups in flight at once")
        let c = Task { await coalescer.submit(3, key: "k") { await recorder.run($0, held: false) } }
        try await Task.sleep(for: .milliseconds(20))
        XCTAssertEqual(recorder.groups.withLock { $0.count }, 2, "a third waits")
        recorder.release()
        let outcomes = [await a.value, await b.value, await c.value]
        XCTAssertEqual(outcomes, ["done 1", "done 2", "done 3"])
    }

    /// A group that failed: its requests go again alone when the failure came from them (a
    /// statement refused, a lock waited on too long), but not when the group never reached
    /// PostgreSQL (no connection came free: a hundred callers more would not help), nor when
    /// the request was alone anyway.
    func testAFailedGroupsRequestsGoAloneOnlyWhenThatCanHelp() {
        func kinds(_ error: any Error, count: Int) -> [String] {
            TogetherOutcome<Int>.afterFailure(error, count: count).map { outcome in
                switch outcome {
                case .done: "done"
                case .alone: "alone"
                case .failed: "failed"
                }
            }
        }
        let refused = PostgresError(kind: .query, sqlState: "55P03", message: "canceling statement due to lock timeout")
        let full = PostgresError(kind: .poolTimeout, message: "no database connection became free within 2 seconds")
        XCTAssertEqual(kinds(refused, count: 3), ["alone", "alone", "alone"])
        XCTAssertEqual(kinds(PostgresError(kind: .connection, message: "lost"), count: 2), ["alone", "alone"])
        XCTAssertEqual(kinds(full, count: 3), ["failed", "failed", "failed"])
        XCTAssertEqual(kinds(refused, count: 1), ["failed"])
    }
}

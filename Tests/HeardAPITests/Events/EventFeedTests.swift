import Dispatch
import Foundation
import HTTPServer
@testable import HeardAPI
import HeardTesting
import Postgres
import Synchronization
import XCTest

/// `GET /v1/events`: every committed change once, in commit order per record, nothing that
/// rolled back, nothing skipped when a transaction commits late; long polls; who sees what.
final class EventFeedTests: XCTestCase {
    var harness: AccessHarness!
    var council: Registry.Tenant!
    /// Writes and reads feedback and complaints.
    var writer: String!

    override func setUp() async throws {
        // Rate limiting is tested elsewhere; following a feed page by page makes many requests.
        // Eight writers and a reader at once: a connection each, so none waits out the pool's timeout.
        harness = try await AccessHarness.start(access: .init(ratePerSecond: 10_000, burst: 10_000), poolSize: 10)
        council = try await harness.tenant("dudley")
        writer = try await harness.key(council, scopes: [.feedbackWrite, .feedbackRead, .complaintsWrite, .complaintsRead])
        try await waitForNoOtherWriters()
    }

    /// The feed gives out only what is below the oldest transaction still running anywhere in
    /// the cluster: while the harness copies the next test's database (CREATE DATABASE, a
    /// transaction too) nothing newer is readable. The tests here wait until it is done.
    func waitForNoOtherWriters() async throws {
        let superuser = PostgresPool(configuration: harness.database.configuration, size: 1)
        defer { superuser.shutdown() }
        for _ in 0..<3000 {
            let running = try await superuser.query("""
                SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
                """).first?.decode(Int.self, column: "n")
            if running == 0 { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        XCTFail("a transaction elsewhere in the cluster stayed open for 30 s")
    }

    override func tearDown() async throws {
        await harness?.stop()
    }

    var feed: FeedClient { FeedClient(harness: harness, tenant: council.id) }

    func read(_ key: String, after: String? = nil, _ parameters: String = "", file: StaticString = #filePath, line: UInt = #line) throws -> FeedPage {
        let page = try feed.read(key, after: after, parameters)
        XCTAssertEqual(page.response.status, 200, page.response.text, file: file, line: line)
        return page
    }

    func follow(_ key: String, after: String? = nil, _ parameters: String = "", file: StaticString = #filePath, line: UInt = #line) throws
        -> (events: [SeenEvent], next: String) {
        try feed.follow(key, after: after, parameters)
    }

    func pairs(_ events: [SeenEvent]) -> [String] { events.map(\.pair) }

    func createFeedback(_ key: String, overrides: [String: String] = [:]) throws -> String {
        try feed.createFeedback(key, overrides: overrides)
    }

    func createComplaint(_ key: String) throws -> String {
        let response = try harness.send("POST", "/v1/complaints", key: key, body: ComplaintSamples.body(externalID: UUID().lowercased))
        XCTAssertEqual(response.status, 201, response.text)
        return try XCTUnwrap(response.json["id"] as? String)
    }

    /// Runs `body` once per index, each on a thread of its own, all at once; the errors thrown.
    func inParallel(_ count: Int, _ body: @escaping @Sendable (Int) throws -> Void) -> [String] {
        let failures = Mutex<[String]>([])
        let group = DispatchGroup()
        for index in 0..<count {
            group.enter()
            Thread {
                do { try body(index) } catch { failures.withLock { $0.append("\(index): \(error)") } }
                group.leave()
            }.start()
        }
        group.wait()
        return failures.withLock { $0 }
    }

    func testAReaderFollowingEightWritersSeesEveryCommittedChangeOnceInCommitOrderAndNothingRolledBack() async throws {
        let feed = feed, harness = harness!, writer = writer!, pool = harness.app.pool
        let hotFeedback = try (0..<3).map { _ in try createFeedback(writer) }
        let hotComplaints = try (0..<2).map { _ in try createComplaint(writer) }
        for id in hotComplaints {
            let acknowledged = try harness.send("POST", "/v1/complaints/\(id)/transitions", key: writer, body: #"{"action":"acknowledge"}"#,
                                                headers: ["If-Match": "*"])
            XCTAssertEqual(acknowledged.status, 200, acknowledged.text)
        }
        // What the writers were told committed, and what they rolled back.
        let expected = Mutex<[String]>(hotFeedback.map { "feedback.created \($0)" }
                                       + hotComplaints.flatMap { ["complaint.created \($0)", "complaint.transitioned \($0)"] })
        let rolledBack = Mutex<[String]>([])
        let unexpected = Mutex<[String]>([])
        let writersDone = Atomic<Bool>(false)
        let seen = Mutex<[SeenEvent]>([])
        let readerDone = DispatchSemaphore(value: 0)

        Thread {
            var cursor: String?
            while true {
                let finished = writersDone.load(ordering: .acquiring)
                guard let page = try? feed.read(writer, after: cursor, "limit=7"), page.response.status == 200 else {
                    unexpected.withLock { $0.append("the reader failed") }
                    break
                }
                seen.withLock { $0 += page.events }
                cursor = page.next
                if page.events.isEmpty && finished { break }
            }
            readerDone.signal()
        }.start()

        let failures = inParallel(8) { w in
            for i in 0..<10 {
                switch (w + i) % 5 {
                case 0:
                    let id = try feed.createFeedback(writer)
                    expected.withLock { $0.append("feedback.created \(id)") }
                case 1:
                    let id = hotFeedback[(w + i) % hotFeedback.count]
                    let response = try harness.send("PATCH", "/v1/feedback/\(id)", key: writer, body: #"{"team":"w\#(w)-\#(i)"}"#, headers: ["If-Match": "*"])
                    switch response.status {
                    case 200: expected.withLock { $0.append("feedback.changed \(id)") }
                    case 412: break  // another writer's correction won the race
                    default: unexpected.withLock { $0.append("PATCH: \(response.status) \(response.text)") }
                    }
                case 2:
                    let id = hotComplaints[(w + i) % hotComplaints.count]
                    let current = try harness.send("GET", "/v1/complaints/\(id)", key: writer).json["status"] as? String
                    let action = current == "suspended" ? #"{"action":"resume"}"# : #"{"action":"suspend","reason":"awaiting_advocate"}"#
                    let response = try harness.send("POST", "/v1/complaints/\(id)/transitions", key: writer, body: action, headers: ["If-Match": "*"])
                    switch response.status {
                    case 200: expected.withLock { $0.append("complaint.transitioned \(id)") }
                    case 409, 412: break  // another writer moved it first
                    default: unexpected.withLock { $0.append("transition: \(response.status) \(response.text)") }
                    }
                case 3:
                    // A new record and a change to a hot one, rolled back.
                    let id = UUID(), hot = UUID(uuidString: hotFeedback[w % hotFeedback.count])!
                    rolledBack.withLock { $0.append(id.lowercased) }
                    try FeedClient.blocking {
                        do {
                            try await pool.transaction(settings: feed.settings) { tx in
                                try await feed.insertFeedback(id, on: tx)
                                try await tx.execute("UPDATE feedback SET team = 'rolled back', version = version + 1 WHERE tenant_id = \(feed.tenant) AND id = \(hot)")
                                throw RolledBack()
                            }
                        } catch is RolledBack {}
                    }
                default:
                    // A committed record, and one rolled back to a savepoint in the same transaction.
                    let kept = UUID(), undone = UUID()
                    rolledBack.withLock { $0.append(undone.lowercased) }
                    try FeedClient.blocking {
                        try await pool.transaction(settings: feed.settings) { tx in
                            try await feed.insertFeedback(kept, on: tx)
                            try await tx.execute("SAVEPOINT undone")
                            try await feed.insertFeedback(undone, on: tx)
                            try await tx.execute("ROLLBACK TO SAVEPOINT undone")
                        }
                    }
                    expected.withLock { $0.append("feedback.created \(kept.lowercased)") }
                }
            }
        }
        XCTAssertEqual(failures, [])
        writersDone.store(true, ordering: .releasing)
        readerDone.wait()
        XCTAssertEqual(unexpected.withLock { $0 }, [])

        let events = seen.withLock { $0 }
        let ids = events.map(\.id)
        XCTAssertEqual(Set(ids).count, ids.count, "an event seen twice")
        XCTAssertEqual(pairs(events).sorted(), expected.withLock { $0 }.sorted(), "every committed change, once, and nothing else")
        for id in rolledBack.withLock({ $0 }) {
            XCTAssertFalse(events.contains { $0.resourceID == id }, "rolled back: \(id)")
        }
        XCTAssertGreaterThan(pairs(events).filter { $0.hasPrefix("feedback.changed") }.count, 0)
        XCTAssertGreaterThan(pairs(events).filter { $0.hasPrefix("complaint.transitioned") }.count, hotComplaints.count)

        // Everything the database holds for the tenant is what the reader saw.
        let superuser = PostgresPool(configuration: harness.database.configuration, size: 1)
        defer { superuser.shutdown() }
        let stored = try await superuser.query("SELECT id FROM events WHERE tenant_id = \(council.id) ORDER BY id").map { try $0.decode(Int.self, column: "id") }
        XCTAssertEqual(stored, ids.sorted())

        // Commit order per record: each change's event is matched to the version its transaction
        // wrote (the history row comes from the same transaction; versions follow commits, since
        // the row lock serializes the writers of one record), and the reader met them in version order.
        let versions = try await superuser.query("""
            SELECT e.id, e.resource_id, h.version FROM events e
              JOIN feedback_history h ON h.tenant_id = e.tenant_id AND h.feedback_id = e.resource_id
               AND h.xmin::text::bigint = e.xid::text::bigint % 4294967296
             WHERE e.tenant_id = \(council.id) AND e.type = 'feedback.changed'
            UNION ALL
            SELECT e.id, e.resource_id, h.version FROM events e
              JOIN lifecycle_history h ON h.tenant_id = e.tenant_id AND h.resource_type = 'complaint' AND h.resource_id = e.resource_id
               AND h.xmin::text::bigint = e.xid::text::bigint % 4294967296
             WHERE e.tenant_id = \(council.id) AND e.type = 'complaint.transitioned'
            """).reduce(into: [Int: (resource: UUID, version: Int)]()) {
            $0[try $1.decode(Int.self, column: "id")] = (try $1.decode(UUID.self, column: "resource_id"), try $1.decode(Int.self, column: "version"))
        }
        XCTAssertEqual(versions.count, events.filter { ["feedback.changed", "complaint.transitioned"].contains($0.type) }.count)
        var last: [UUID: Int] = [:]
        for id in ids {
            guard let (resource, version) = versions[id] else { continue }
            XCTAssertGreaterThan(version, last[resource] ?? 1, "\(resource): version \(version) after \(last[resource] ?? 1)")
            last[resource] = version
        }
    }

    func testATransactionThatBeganFirstAndCommitsLastIsNotSkipped() async throws {
        let (_, start) = try follow(writer)
        let early = UUID()
        let holding = Atomic<Bool>(true), inserted = DispatchSemaphore(value: 0)
        let feed = feed, pool = harness.app.pool
        let late = Task {
            try await pool.transaction(settings: feed.settings) { tx in
                try await feed.insertFeedback(early, on: tx)
                inserted.signal()
                while holding.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(10)) }
            }
        }
        inserted.wait()
        let later = try (0..<3).map { _ in try createFeedback(writer) }
        // Committed, but after a transaction still open: held back, not given out past it.
        XCTAssertEqual(try read(writer, after: start).events.count, 0)

        holding.store(false, ordering: .releasing)
        try await late.value
        let (events, _) = try follow(writer, after: start)
        XCTAssertEqual(Set(pairs(events)), Set(([early.lowercased] + later).map { "feedback.created \($0)" }))
        XCTAssertEqual(events.first?.resourceID, early.lowercased, "its place is where its transaction began")
    }

    func testOneRecordsEventsComeInTheOrderItsChangesCommitted() async throws {
        let record = try createFeedback(writer)
        let (_, start) = try follow(writer)
        let feed = feed, pool = harness.app.pool, id = try XCTUnwrap(UUID(uuidString: record))
        let holding = Atomic<Bool>(true), begun = DispatchSemaphore(value: 0)
        // The older transaction takes its id first (it records something else), and changes the
        // record only after a newer one has changed it and committed.
        let older = Task {
            try await pool.transaction(settings: feed.settings) { tx in
                try await feed.insertFeedback(UUID(), on: tx)
                begun.signal()
                while holding.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(10)) }
                try await tx.execute("UPDATE feedback SET team = 'older', version = version + 1 WHERE tenant_id = \(feed.tenant) AND id = \(id)")
            }
        }
        begun.wait()
        try await pool.transaction(settings: feed.settings) { tx in
            try await tx.execute("UPDATE feedback SET team = 'newer', version = version + 1 WHERE tenant_id = \(feed.tenant) AND id = \(id)")
        }
        holding.store(false, ordering: .releasing)
        try await older.value

        let changes = try follow(writer, after: start).events.filter { $0.resourceID == record }
        XCTAssertEqual(changes.map(\.type), ["feedback.changed", "feedback.changed"])
        let superuser = PostgresPool(configuration: harness.database.configuration, size: 1)
        defer { superuser.shutdown() }
        let transaction = try await superuser.query("SELECT id, xid::text AS xid FROM events WHERE id = ANY(\(changes.map(\.id))::bigint[])")
            .reduce(into: [Int: UInt64]()) { $0[try $1.decode(Int.self, column: "id")] = UInt64(try $1.decode(String.self, column: "xid")) }
        XCTAssertEqual(transaction.count, 2)
        XCTAssertGreaterThan(transaction[changes[0].id] ?? 0, transaction[changes[1].id] ?? 0,
                             "the newer transaction committed its change first, and its event comes first")
    }

    /// A change made where no area code thinks of the feed (a closure day moving an open
    /// complaint's due dates) is an event like any other; one that moves nothing is none.
    func testEveryChangeIsAnEventWhereverItIsMade() async throws {
        let open = try createComplaint(writer)  // received 2025-03-03, its response due 2025-03-17
        let admin = try await harness.key(council, scopes: [.admin])
        let (_, start) = try follow(writer)
        XCTAssertEqual(try harness.send("POST", "/v1/admin/closure-days", key: admin, body: #"{"day":"2025-03-20","reason":"After"}"#).status, 201)
        XCTAssertEqual(try follow(writer, after: start).events.count, 0, "a day after the due date moves nothing")
        XCTAssertEqual(try harness.send("POST", "/v1/admin/closure-days", key: admin, body: #"{"day":"2025-03-12","reason":"Training"}"#).status, 201)
        XCTAssertEqual(pairs(try follow(writer, after: start).events), ["complaint.changed \(open)"])
    }

    /// An event's type is its resource, a dot and what happened, and its resource a lower-case
    /// name: the table refuses anything else, whoever writes it (the owner here, past row-level
    /// security), as the triggers' own rows are checked.
    func testTheFeedTakesOnlyWellFormedEvents() async throws {
        let id = UUID()
        func insert(_ type: String, _ resource: String) async -> Bool {
            do {
                try await harness.ownerPool.execute("""
                    INSERT INTO events (tenant_id, type, resource, resource_id, xid, position)
                    VALUES (\(council.id), \(type), \(resource), \(id), pg_current_xact_id(), pg_current_xact_id())
                    """)
                return true
            } catch {
                return false
            }
        }
        for (type, resource) in [("feedback.created", "feedback"), ("safeguarding_alert.transitioned", "safeguarding_alert"),
                                 ("complaint.changed", "complaint"), (String(repeating: "a", count: 60) + ".created", String(repeating: "a", count: 60))] {
            let taken = await insert(type, resource)
            XCTAssertTrue(taken, "\(type) of \(resource)")
        }
        let refused: [(String, String)] = [
            ("feedback.deleted", "feedback"), ("feedback.created", "complaint"), ("complaint.created", "feedback"),
            ("Feedback.created", "Feedback"), ("feed-back.created", "feed-back"), ("feedback1.created", "feedback1"),
            (".created", ""), ("feedback.created.created", "feedback"), ("feedback.created", "feedback.created"),
            (String(repeating: "a", count: 61) + ".created", String(repeating: "a", count: 61)), ("é.created", "é"),
            ("feedback .created", "feedback "), ("feedback.createdx", "feedback"),
        ]
        for (type, resource) in refused {
            let taken = await insert(type, resource)
            XCTAssertFalse(taken, "\(type) of \(resource) is refused")
        }
    }

    // MARK: Long polls

    /// A deployment may hold long polls for less than a client asks (LONG_POLL_MAX_SECONDS): the
    /// answer is then the empty page, at the limit, not at the `wait` asked for.
    func testALongPollIsHeldNoLongerThanTheDeploymentAllows() async throws {
        let limited = try await AccessHarness.start(access: .init(longPollSeconds: 1))
        do {
            let key = try await limited.key(try await limited.tenant("walsall"), scopes: [.feedbackRead])
            let clock = ContinuousClock(), began = clock.now
            let empty = try limited.send("GET", "/v1/events?wait=20", key: key)
            let held = clock.now - began
            XCTAssertEqual(empty.status, 200, empty.text)
            XCTAssertEqual((empty.json["events"] as? [Any])?.count, 0)
            XCTAssertGreaterThanOrEqual(held, .seconds(1), "it waited up to the limit")
            XCTAssertLessThan(held, .seconds(15), "not the 20 s asked for")
        } catch {
            await limited.stop()
            throw error
        }
        await limited.stop()
    }

    func testALongPollAnswersWhenAnEventArrivesAndEmptyWhenTheWaitIsOver() async throws {
        let writer = writer!
        try harness.serveOverSockets()
        let (_, start) = try follow(writer)

        let clock = ContinuousClock()
        let began = clock.now
        let empty = try read(writer, after: start, "wait=1")
        XCTAssertGreaterThanOrEqual(clock.now - began, .seconds(1), "it waited")
        XCTAssertEqual(empty.events.count, 0)
        XCTAssertEqual(empty.next, start, "nothing read, the same place")

        let answer = Mutex<(page: FeedPage, waited: Duration)?>(nil)
        let asking = DispatchSemaphore(value: 0), answered = DispatchSemaphore(value: 0)
        let feed = feed
        Thread {
            let began = clock.now
            asking.signal()
            let page = try? feed.read(writer, after: start, "wait=20")
            answer.withLock { $0 = page.map { ($0, clock.now - began) } }
            answered.signal()
        }.start()
        asking.wait()
        try await Task.sleep(for: .seconds(1))
        let id = try createFeedback(writer)
        XCTAssertEqual(answered.wait(timeout: .now() + 15), .success, "the poll answered well before its 20 s")
        let (page, waited) = try XCTUnwrap(answer.withLock { $0 })
        XCTAssertEqual(page.response.status, 200)
        XCTAssertEqual(pairs(page.events), ["feedback.created \(id)"])
        XCTAssertGreaterThanOrEqual(waited, .seconds(1), "it waited for the event")
    }

    func testLongPollsAreBounded() async throws {
        var router = RouterBuilder()
        EventRoutes(access: AccessControl(database: harness.app.pool), feed: EventFeed(maxWaiting: 1)).add(to: &router)
        let client = RouterClient(router.build(cors: CORSPolicy(), mapError: HeardApp.problem(for:)), loops: harness.app.client.loops)
        let authorization = [("Authorization", "Bearer \(writer!)")]
        let held = DispatchSemaphore(value: 0)
        Thread {
            _ = client.send("GET", "/v1/events?wait=2", headers: authorization)
            held.signal()
        }.start()
        try await Task.sleep(for: .milliseconds(500))
        let refused = client.send("GET", "/v1/events?wait=2", headers: authorization)
        XCTAssertEqual(refused.status, 503)
        XCTAssertEqual(refused.json["type"] as? String, "urn:heard:problem:feed-busy")
        XCTAssertEqual(refused.header("Retry-After"), "1")
        XCTAssertEqual(client.send("GET", "/v1/events", headers: authorization).status, 200, "a read that does not wait")
        held.wait()
        XCTAssertEqual(client.send("GET", "/v1/events?wait=1", headers: authorization).status, 200, "room again")
    }

    // MARK: Who sees what

    func testAPartnersKeySeesOnlyItsOrganisationsEvents() async throws {
        let partnerX = try await harness.organisation("partner-x", in: council), partnerY = try await harness.organisation("partner-y", in: council)
        let keyX = try await harness.key(council, scopes: [.feedbackWrite, .feedbackRead], organisation: partnerX)
        let keyY = try await harness.key(council, scopes: [.feedbackWrite, .feedbackRead], organisation: partnerY)
        let ours = try createFeedback(keyX), theirs = try createFeedback(keyY), council = try createFeedback(writer)
        let corrected = try harness.send("PATCH", "/v1/feedback/\(ours)", key: keyX, body: #"{"team":"south"}"#, headers: ["If-Match": "*"])
        XCTAssertEqual(corrected.status, 200, corrected.text)

        XCTAssertEqual(pairs(try follow(keyX).events), ["feedback.created \(ours)", "feedback.changed \(ours)"])
        XCTAssertEqual(pairs(try follow(keyY).events), ["feedback.created \(theirs)"])
        XCTAssertEqual(Set(pairs(try follow(writer).events)),
                       Set(["feedback.created \(ours)", "feedback.changed \(ours)", "feedback.created \(theirs)", "feedback.created \(council)"]))
    }

    func testEachKeySeesTheResourcesItsScopesRead() async throws {
        let involvement = try await harness.key(council, scopes: [.involvementWrite, .involvementRead])
        let feedbackOnly = try await harness.key(council, scopes: [.feedbackRead])
        let feedback = try createFeedback(writer, overrides: ["safeguarding_concern": "true"])
        let complaint = try createComplaint(writer)
        let participant = try ParticipationSamples.makeParticipant(harness, key: involvement)
        let activity = try ParticipationSamples.makeActivity(harness, key: involvement)
        let alert = try XCTUnwrap((harness.send("GET", "/v1/feedback/\(feedback)", key: writer).json["safeguarding_alert"] as? [String: Any])?["id"] as? String)

        XCTAssertEqual(Set(pairs(try follow(feedbackOnly).events)), ["feedback.created \(feedback)", "safeguarding_alert.created \(alert)"])
        XCTAssertEqual(Set(pairs(try follow(involvement).events)), ["participant.created \(participant)", "activity.created \(activity)"])
        XCTAssertEqual(Set(pairs(try follow(writer).events)),
                       ["feedback.created \(feedback)", "safeguarding_alert.created \(alert)", "complaint.created \(complaint)"])
        XCTAssertEqual(pairs(try follow(writer, "types=complaint.created,complaint.transitioned").events), ["complaint.created \(complaint)"])

        let refused = try harness.send("GET", "/v1/events?types=participant.created", key: writer)
        XCTAssertEqual(refused.status, 400)
        XCTAssertEqual(Self.fields(refused), ["types"])
        let reportsOnly = try await harness.key(council, scopes: [.reportsRead, .freeTextRead])
        XCTAssertEqual(try harness.send("GET", "/v1/events", key: reportsOnly).status, 403)
    }

    func testNoEventHoldsFreeTextOrAnyFieldOfTheRecord() async throws {
        let canary = "CANARY-\(UUID().uuidString)"
        let everything = try await harness.key(council, scopes: Scope.allCases)
        let feedback = try createFeedback(everything, overrides: ["comment": "\"\(canary)\"", "team": "\"\(canary.prefix(40))\"", "safeguarding_concern": "true"])
        XCTAssertEqual(try harness.send("PATCH", "/v1/feedback/\(feedback)", key: everything, body: #"{"comment":"\#(canary) again"}"#,
                                        headers: ["If-Match": "*"]).status, 200)
        let complaint = try harness.send("POST", "/v1/complaints", key: everything,
                                         body: ComplaintSamples.body(externalID: UUID().lowercased, overrides: ["summary": "\"\(canary)\""]))
        XCTAssertEqual(complaint.status, 201)
        _ = try ParticipationSamples.makeParticipant(harness, key: everything, overrides: ["notes": "\"\(canary)\""])
        let activity = try harness.send("POST", "/v1/activities", key: everything,
                                        body: ParticipationSamples.activity(summary: canary))
        XCTAssertEqual(activity.status, 201, activity.text)

        try await waitForNoOtherWriters()
        let page = try read(everything, "limit=500")
        XCTAssertEqual(page.events.count, 6)
        XCTAssertFalse(page.response.text.contains("CANARY"), "free text in the feed")
        for event in page.events {
            XCTAssertEqual(event.keys, ["id", "type", "resource", "resource_id", "occurred_at"])
        }
    }

    /// The isolation of `GET /v1/events` (IsolatedResource.notRecords names this test).
    func testAnotherTenantsEventsAreNeverSeen() async throws {
        let other = try await harness.tenant("redcar")
        let otherKey = try await harness.key(other, scopes: [.feedbackWrite, .feedbackRead, .complaintsWrite, .complaintsRead])
        let theirs = try createFeedback(otherKey), theirComplaint = try createComplaint(otherKey)
        let ours = try createFeedback(writer)
        let (events, next) = try follow(writer)
        XCTAssertEqual(pairs(events), ["feedback.created \(ours)"])
        XCTAssertEqual(Set(pairs(try follow(otherKey).events)), ["feedback.created \(theirs)", "complaint.created \(theirComplaint)"])
        // Another tenant's cursor is only a place in the order: it opens nothing of theirs.
        let (_, theirNext) = try follow(otherKey)
        XCTAssertTrue(try follow(writer, after: theirNext).events.allSatisfy { ![theirs, theirComplaint].contains($0.resourceID) })
        XCTAssertEqual(try follow(writer, after: next).events.count, 0)
    }

    /// `openapi.yaml` lists the types and resources the feed has.
    func testTheContractListsEveryTypeAndResource() throws {
        let text = try String(contentsOf: HeardBinary.packageRoot.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        func enumeration(_ schema: String) throws -> [String] {
            let start = try XCTUnwrap(text.range(of: "\n    \(schema):\n      type: string\n      enum: ["), schema)
            let end = try XCTUnwrap(text[start.upperBound...].firstIndex(of: "]"))
            return text[start.upperBound..<end].split(separator: ",").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        }
        XCTAssertEqual(try enumeration("EventType"), EventType.all.map(\.rawValue))
        XCTAssertEqual(try enumeration("EventResource"), EventResource.allCases.map(\.rawValue))
    }

    // MARK: Parameters

    static func fields(_ response: RawResponse) -> [String] {
        (response.json["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String }
    }

    func testBadParametersAreA400NamingTheField() async throws {
        _ = try createFeedback(writer)
        let cases: [(String, [String])] = [
            ("after=garbage!", ["after"]),
            ("after=\(Cursor.encode(["1"]))", ["after"]),
            ("after=\(Cursor.encode(["x", "1"]))", ["after"]),
            ("after=\(Cursor.encode(["+1", "1"]))", ["after"]),
            ("after=\(Cursor.encode(["18446744073709551616", "1"]))", ["after"]),
            ("after=\(Cursor.encode(["1", "9223372036854775808"]))", ["after"]),
            ("after=\(Cursor.encode([1, 2]))", ["after"]),
            ("after=\(String(repeating: "A", count: 600))", ["after"]),
            ("limit=0", ["limit"]), ("limit=501", ["limit"]), ("limit=ten", ["limit"]),
            ("wait=31", ["wait"]), ("wait=-1", ["wait"]), ("wait=1.5", ["wait"]),
            ("types=", ["types"]), ("types=feedback", ["types"]), ("types=feedback.created,feedback.deleted", ["types"]),
            ("cursor=abc", ["cursor"]), ("limit=1&limit=2", ["limit"]), ("format=csv", ["format"]),
        ]
        for (query, expected) in cases {
            let response = try harness.send("GET", "/v1/events?\(query)", key: writer)
            XCTAssertEqual(response.status, 400, "\(query): \(response.text)")
            XCTAssertEqual(response.header("Content-Type"), "application/problem+json", query)
            XCTAssertEqual(Self.fields(response), expected, query)
        }
        // The largest position there can be is a place, not an error: nothing after it yet.
        let end = try read(writer, after: Cursor.encode(["18446744073709551615", "9223372036854775807"]))
        XCTAssertEqual(end.events.count, 0)
        XCTAssertEqual(try read(writer, "limit=1").events.count, 1)
    }
}

struct RolledBack: Error {}

/// An event as a test reads it.
struct SeenEvent: Sendable, Equatable {
    let id: Int
    let type: String
    let resourceID: String
    /// The event's keys, all of them.
    let keys: Set<String>

    var pair: String { "\(type) \(resourceID)" }
}

struct FeedPage: Sendable {
    let events: [SeenEvent]
    let next: String
    let response: RawResponse
}

/// Reads the feed and makes records, from any thread.
struct FeedClient: Sendable {
    let harness: AccessHarness
    let tenant: UUID

    func read(_ key: String, after: String? = nil, _ parameters: String = "") throws -> FeedPage {
        var query = [parameters].filter { !$0.isEmpty }
        if let after { query.append("after=\(after)") }
        let response = try harness.send("GET", "/v1/events" + (query.isEmpty ? "" : "?" + query.joined(separator: "&")), key: key)
        let events = (response.json["events"] as? [[String: Any]] ?? []).map { event in
            SeenEvent(id: event["id"] as? Int ?? -1, type: event["type"] as? String ?? "?", resourceID: event["resource_id"] as? String ?? "?",
                      keys: Set(event.keys))
        }
        return FeedPage(events: events, next: response.json["next_cursor"] as? String ?? "", response: response)
    }

    /// Every event `key` may read from `after` on, page by page, and the cursor after the last.
    func follow(_ key: String, after: String? = nil, _ parameters: String = "") throws -> (events: [SeenEvent], next: String) {
        var events: [SeenEvent] = [], cursor = after
        while true {
            let page = try read(key, after: cursor, parameters)
            guard page.response.status == 200 else { throw IsolationFailure(description: "GET /v1/events: \(page.response.status) \(page.response.text)") }
            guard !page.events.isEmpty else { return (events, page.next) }
            events += page.events
            cursor = page.next
        }
    }

    func createFeedback(_ key: String, overrides: [String: String] = [:]) throws -> String {
        let response = try harness.send("POST", "/v1/feedback", key: key, body: FeedbackSamples.body(externalID: UUID().lowercased, overrides: overrides))
        guard response.status == 201, let id = response.json["id"] as? String else {
            throw IsolationFailure(description: "POST /v1/feedback: \(response.status) \(response.text)")
        }
        return id
    }

    var settings: [(name: String, value: String)] {
        [("heard.tenant_id", tenant.lowercased), ("heard.organisation_id", "")]
    }

    /// A feedback row inserted straight into the table, as the service's role, in `tx`.
    func insertFeedback(_ id: UUID, on tx: PostgresTransaction) async throws {
        try await tx.execute("""
            INSERT INTO feedback (tenant_id, id, source_system, external_id, channel, respondent_role, age_band, service_area, stage,
                                  kind, given_at, anonymous, consent_to_follow_up, safeguarding_concern, content_hash)
            VALUES (\(tenant), \(id), 'direct', \(id.lowercased), 'survey', 'child', '8_to_12', 'other', 'review', 'general', now(),
                    false, false, false, 'direct')
            """)
    }

    /// Waits for `work` from a thread that is not the concurrency pool's.
    static func blocking(_ work: @escaping @Sendable () async throws -> Void) throws {
        let outcome = Mutex<(any Error)?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            do { try await work() } catch { outcome.withLock { $0 = error } }
            done.signal()
        }
        done.wait()
        if let error = outcome.withLock({ $0 }) { throw error }
    }
}

import Foundation
import HTTPServer
@testable import HeardAPI
import HeardTesting
import Postgres
import XCTest

/// `/v1/safeguarding-alerts`: a concern opens an alert that somebody must acknowledge, and an
/// unacknowledged alert is overdue after one working day (DOMAIN.md §1).
final class SafeguardingTests: XCTestCase {
    var harness: AccessHarness!
    var council: Registry.Tenant!
    /// feedback:write, feedback:read and free_text:read.
    var writer: String!

    override func setUp() async throws {
        // Rate limiting is tested elsewhere; paging one item at a time makes many requests.
        harness = try await AccessHarness.start(access: .init(ratePerSecond: 1_000, burst: 1_000))
        council = try await harness.tenant("dudley")
        writer = try await harness.key(council, scopes: [.feedbackWrite, .feedbackRead, .freeTextRead])
    }

    override func tearDown() async throws {
        await harness.stop()
    }

    static let acknowledgement = #"{"acknowledged_by":"Duty team manager (DTM-4)","action_taken":"Referred to the MASH the same morning; strategy discussion held."}"#

    // MARK: Helpers

    /// Posts feedback raising a concern; returns (feedback id, alert id).
    @discardableResult
    func raiseConcern(_ key: String? = nil, externalID: String = UUID().lowercased) throws -> (feedback: String, alert: String) {
        let created = try harness.send("POST", "/v1/feedback", key: key ?? writer,
                                       body: FeedbackSamples.body(externalID: externalID, overrides: ["safeguarding_concern": "true", "kind": #""concern""#]))
        XCTAssertEqual(created.status, 201, created.text)
        let alert = try XCTUnwrap(created.json["safeguarding_alert"] as? [String: Any])
        return (try XCTUnwrap(created.json["id"] as? String), try XCTUnwrap(alert["id"] as? String))
    }

    /// Sets an alert's raised_at as the superuser (RLS does not apply).
    func setRaisedAt(_ alert: String, _ instant: String) async throws {
        let superuser = PostgresPool(configuration: harness.database.configuration, size: 1)
        defer { superuser.shutdown() }
        let changed = try await superuser.execute("UPDATE safeguarding_alerts SET raised_at = \(instant)::timestamptz WHERE id = \(alert)::uuid")
        XCTAssertEqual(changed, 1)
    }

    /// Every item of a list, following `next_cursor`.
    func all(_ query: String = "", key: String? = nil, limit: Int = 500) throws -> [[String: Any]] {
        var items: [[String: Any]] = []
        var cursor: String?
        var pages = 0
        repeat {
            var parameters = ["limit=\(limit)"]
            if !query.isEmpty { parameters.append(query) }
            if let cursor { parameters.append("cursor=\(cursor)") }
            let target = "/v1/safeguarding-alerts?" + parameters.joined(separator: "&")
            let page = try harness.send("GET", target, key: key ?? writer)
            XCTAssertEqual(page.status, 200, page.text)
            guard page.status == 200 else { break }
            items += page.items
            cursor = page.json["next_cursor"] as? String
            pages += 1
        } while cursor != nil && pages < 100
        return items
    }

    func ids(_ items: [[String: Any]]) -> [String] { items.compactMap { $0["id"] as? String } }

    static func instant(_ text: String) -> Date {
        FieldReader.parseInstant(text)!
    }

    // MARK: The lifecycle

    func testAConcernOpensAnAlertThatIsAcknowledgedOnceAndOnlyOnce() async throws {
        try harness.serveOverSockets()  // the area's end-to-end test
        let (feedbackID, alertID) = try raiseConcern(externalID: "form-sg-1")
        _ = try harness.send("POST", "/v1/feedback", key: writer, body: FeedbackSamples.body(externalID: "no-concern"))

        let listed = try all()
        XCTAssertEqual(ids(listed), [alertID], "only the concern opens an alert")
        let open = try XCTUnwrap(listed.first)
        XCTAssertEqual(open["feedback_id"] as? String, feedbackID)
        XCTAssertEqual(open["status"] as? String, "open")
        XCTAssertEqual(open["overdue"] as? Bool, false)
        XCTAssertTrue(open["organisation"] is NSNull)
        XCTAssertTrue(open["acknowledged_at"] is NSNull)
        XCTAssertTrue(open["acknowledged_by"] is NSNull)
        XCTAssertTrue(open["action_taken"] is NSNull, "present (null) for a key with free_text:read")
        let raisedAt = try XCTUnwrap((open["raised_at"] as? String).flatMap(FieldReader.parseInstant))
        let dueAt = try XCTUnwrap((open["due_at"] as? String).flatMap(FieldReader.parseInstant))
        XCTAssertEqual(dueAt, WorkingDayCalendar().deadline(afterWorkingDays: 1, from: raisedAt))
        XCTAssertGreaterThan(dueAt, Date())

        let read = try harness.send("GET", "/v1/safeguarding-alerts/\(alertID)", key: writer)
        XCTAssertEqual(read.status, 200, read.text)
        XCTAssertEqual(read.json["id"] as? String, alertID)
        XCTAssertEqual(read.json["due_at"] as? String, open["due_at"] as? String)

        let acknowledged = try harness.send("POST", "/v1/safeguarding-alerts/\(alertID)/acknowledge", key: writer, body: Self.acknowledgement)
        XCTAssertEqual(acknowledged.status, 200, acknowledged.text)
        XCTAssertEqual(acknowledged.json["status"] as? String, "acknowledged")
        XCTAssertEqual(acknowledged.json["overdue"] as? Bool, false)
        XCTAssertEqual(acknowledged.json["acknowledged_by"] as? String, "Duty team manager (DTM-4)")
        XCTAssertEqual(acknowledged.json["action_taken"] as? String, "Referred to the MASH the same morning; strategy discussion held.")
        let acknowledgedAt = try XCTUnwrap((acknowledged.json["acknowledged_at"] as? String).flatMap(FieldReader.parseInstant))
        XCTAssertLessThan(abs(acknowledgedAt.timeIntervalSinceNow), 60)

        XCTAssertEqual(ids(try all("status=acknowledged")), [alertID])
        XCTAssertEqual(ids(try all("status=open")), [])
        let feedback = try harness.send("GET", "/v1/feedback/\(feedbackID)", key: writer)
        XCTAssertEqual((feedback.json["safeguarding_alert"] as? [String: Any])?["status"] as? String, "acknowledged")

        let again = try harness.send("POST", "/v1/safeguarding-alerts/\(alertID)/acknowledge", key: writer,
                                     body: #"{"acknowledged_by":"Someone else","action_taken":"Overwrite attempt"}"#)
        XCTAssertEqual(again.status, 409, again.text)
        XCTAssertEqual(again.header("Content-Type"), "application/problem+json")
        XCTAssertEqual(again.json["type"] as? String, "urn:heard:problem:already-acknowledged")
        XCTAssertEqual(again.json["acknowledged_by"] as? String, "Duty team manager (DTM-4)")
        XCTAssertEqual(again.json["acknowledged_at"] as? String, acknowledged.json["acknowledged_at"] as? String)
        let after = try harness.send("GET", "/v1/safeguarding-alerts/\(alertID)", key: writer)
        XCTAssertEqual(after.json["acknowledged_by"] as? String, "Duty team manager (DTM-4)", "the acknowledgement stands unchanged")
        XCTAssertEqual(after.json["action_taken"] as? String, "Referred to the MASH the same morning; strategy discussion held.")
        XCTAssertEqual(after.json["acknowledged_at"] as? String, acknowledged.json["acknowledged_at"] as? String)
    }

    func testConcurrentAcknowledgementsLetExactlyOneWin() async throws {
        let (_, alertID) = try raiseConcern()
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<12 {
                group.addTask { [harness, writer] in
                    try harness!.send("POST", "/v1/safeguarding-alerts/\(alertID)/acknowledge", key: writer!,
                                      body: #"{"acknowledged_by":"Worker \#(index)","action_taken":"Action \#(index)"}"#).status
                }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        XCTAssertEqual(statuses.filter { $0 == 200 }.count, 1, "\(statuses)")
        XCTAssertEqual(statuses.filter { $0 == 409 }.count, 11, "\(statuses)")
    }

    // MARK: The overdue rule, end to end

    /// Raised at fixed past instants (so surely overdue now), each deadline crossing a weekend,
    /// bank holidays or a change of clocks; and one raised just now, which is not overdue.
    func testDueAtAndOverdueAcrossWeekendsBankHolidaysAndSummerTime() async throws {
        let cases: [(raised: String, due: String, why: String)] = [
            ("2025-01-10T14:00:00Z", "2025-01-14T00:00:00Z", "a Friday: due by the end of Monday"),
            ("2025-04-17T16:00:00Z", "2025-04-22T23:00:00Z", "Thursday before Easter: Good Friday, the weekend and Easter Monday skipped; midnight BST"),
            ("2024-12-24T10:00:00Z", "2024-12-28T00:00:00Z", "Christmas Eve: Christmas Day and Boxing Day skipped, due by the end of Friday 27th"),
            ("2025-05-03T09:00:00Z", "2025-05-06T23:00:00Z", "a Saturday before the early May bank holiday: due by the end of Tuesday"),
            ("2025-06-05T23:30:00Z", "2025-06-09T23:00:00Z", "00:30 BST on Friday is Friday in England, not Thursday: due by the end of Monday"),
            ("2025-03-28T12:00:00Z", "2025-03-31T23:00:00Z", "a Friday in GMT, due by the end of Monday in BST"),
        ]
        var alerts: [String: (due: String, why: String)] = [:]
        for (raised, due, why) in cases {
            let (_, alertID) = try raiseConcern()
            try await setRaisedAt(alertID, raised)
            alerts[alertID] = (due, why)
        }
        let (_, fresh) = try raiseConcern()

        let listed = try all()
        XCTAssertEqual(listed.count, cases.count + 1)
        for item in listed {
            let id = try XCTUnwrap(item["id"] as? String)
            if let expected = alerts[id] {
                XCTAssertEqual(item["due_at"] as? String, expected.due, expected.why)
                XCTAssertEqual(item["overdue"] as? Bool, true, expected.why)
                let read = try harness.send("GET", "/v1/safeguarding-alerts/\(id)", key: writer)
                XCTAssertEqual(read.json["due_at"] as? String, expected.due)
                XCTAssertEqual(read.json["overdue"] as? Bool, true)
            } else {
                XCTAssertEqual(id, fresh)
                XCTAssertEqual(item["overdue"] as? Bool, false, "raised just now")
            }
        }
        let oldest = try XCTUnwrap(alerts.first { $0.value.due == "2024-12-28T00:00:00Z" }?.key)
        XCTAssertEqual(ids(listed).first, oldest, "oldest first")
        XCTAssertEqual(ids(listed).last, fresh)

        XCTAssertEqual(Set(ids(try all("overdue=true"))), Set(alerts.keys))
        XCTAssertEqual(ids(try all("overdue=false")), [fresh])

        // Acknowledged, even late, an alert is no longer overdue.
        let late = try XCTUnwrap(alerts.keys.first)
        let acknowledged = try harness.send("POST", "/v1/safeguarding-alerts/\(late)/acknowledge", key: writer, body: Self.acknowledgement)
        XCTAssertEqual(acknowledged.status, 200)
        XCTAssertEqual(acknowledged.json["overdue"] as? Bool, false)
        XCTAssertEqual(acknowledged.json["due_at"] as? String, alerts[late]?.due, "due_at is kept: acknowledged_at > due_at shows it was late")
        XCTAssertEqual(Set(ids(try all("overdue=true"))), Set(alerts.keys).subtracting([late]))
        XCTAssertEqual(Set(ids(try all("overdue=false"))), [fresh, late])
        XCTAssertEqual(ids(try all("overdue=true&status=acknowledged")), [])
        XCTAssertEqual(Set(ids(try all("overdue=false&status=open"))), [fresh])
    }

    /// Through HTTP with the clock held: a second before the deadline the alert is not overdue,
    /// at the deadline it is, in the item and in the filter.
    func testTheOverdueBoundaryToTheSecondWithAHeldClock() async throws {
        let cases: [(raised: String, due: String)] = [
            ("2025-01-10T14:00:00Z", "2025-01-14T00:00:00Z"),  // Friday, GMT
            ("2025-04-17T16:00:00Z", "2025-04-22T23:00:00Z"),  // before Easter, BST
            ("2025-08-22T08:00:00Z", "2025-08-26T23:00:00Z"),  // Friday before the summer bank holiday
        ]
        for (raised, due) in cases {
            let (_, alertID) = try raiseConcern()
            try await setRaisedAt(alertID, raised)
            let deadline = Self.instant(due)
            for (now, overdue) in [(Self.instant(raised), false), (deadline.addingTimeInterval(-1), false),
                                   (deadline, true), (deadline.addingTimeInterval(86_400 * 30), true)] {
                harness.clock.hold(at: now)
                let read = try harness.send("GET", "/v1/safeguarding-alerts/\(alertID)", key: writer)
                XCTAssertEqual(read.status, 200, read.text)
                XCTAssertEqual(read.json["due_at"] as? String, due)
                XCTAssertEqual(read.json["overdue"] as? Bool, overdue, "raised \(raised), now \(now)")
                XCTAssertEqual(ids(try all("overdue=true")).contains(alertID), overdue, "filter at \(now)")
                XCTAssertEqual(ids(try all("overdue=false")).contains(alertID), !overdue, "filter at \(now)")
            }
            harness.clock.hold(at: nil)
            let acknowledged = try harness.send("POST", "/v1/safeguarding-alerts/\(alertID)/acknowledge", key: writer, body: Self.acknowledgement)
            XCTAssertEqual(acknowledged.status, 200)
        }
    }

    /// The SQL filter's cutoff agrees with `WorkingDayCalendar.isOverdue` for every pair of
    /// instants tried: hourly (and a second before each hour) over Christmas, Easter, both
    /// changes of clocks and the summer bank holiday.
    func testTheOverdueCutoffAgreesWithTheCalendarEverywhere() {
        let rule = SafeguardingRule()
        let calendar = WorkingDayCalendar()
        let windows = [("2024-12-18T00:00:00Z", 30), ("2025-03-25T00:00:00Z", 40), ("2025-08-20T00:00:00Z", 12), ("2025-10-20T00:00:00Z", 14)]
        var checked = 0
        for (start, days) in windows {
            let origin = Self.instant(start)
            for hour in stride(from: 0, to: days * 24, by: 1) {
                for now in [origin.addingTimeInterval(Double(hour) * 3_600), origin.addingTimeInterval(Double(hour) * 3_600 - 1)] {
                    let cutoff = rule.overdueIfRaisedBefore(now: now)
                    // Raised every 5 hours (and a second either side of the cutoff) over the 12 days before.
                    var raised = (0..<58).map { now.addingTimeInterval(-Double($0) * 5 * 3_600) }
                    raised += [cutoff.addingTimeInterval(-1), cutoff, cutoff.addingTimeInterval(1)]
                    for raisedAt in raised where raisedAt <= now {
                        if (raisedAt < cutoff) != calendar.isOverdue(raisedAt: raisedAt, workingDays: 1, now: now) {
                            XCTFail("raised \(raisedAt), now \(now): cutoff \(cutoff) disagrees with the calendar")
                            return
                        }
                        checked += 1
                    }
                }
            }
        }
        XCTAssertGreaterThan(checked, 100_000)
    }

    // MARK: Filters and paging

    func testPagingIsExactToTheMicrosecondAndFiltersByDayInEngland() async throws {
        // Three alerts within the same second, two at the very same microsecond.
        let instants = [
            "2025-03-03T10:00:00.123456Z", "2025-03-03T10:00:00.123456Z", "2025-03-03T10:00:00.123457Z",
            "2025-03-02T23:59:59.999999Z", "2025-03-04T00:00:00Z",
            "2025-06-05T23:30:00Z",  // 00:30 BST on 6 June
            "2025-06-06T22:59:59Z",  // 23:59:59 BST on 6 June
            "2025-06-06T23:00:00Z",  // 00:00 BST on 7 June
        ]
        var expected: [(instant: String, id: String)] = []
        for instant in instants {
            let (_, alertID) = try raiseConcern()
            try await setRaisedAt(alertID, instant)
            expected.append((instant, alertID))
        }
        let inOrder = expected.sorted { ($0.instant, $0.id) < ($1.instant, $1.id) }.map(\.id)
        for limit in [1, 2, 3, 500] {
            XCTAssertEqual(ids(try all(limit: limit)), inOrder, "limit \(limit): every alert once, oldest first")
        }
        let first = try harness.send("GET", "/v1/safeguarding-alerts?limit=2&status=open", key: writer)
        XCTAssertEqual(first.items.count, 2)
        let cursor = try XCTUnwrap(first.json["next_cursor"] as? String)
        XCTAssertEqual(first.header("Link"), "</v1/safeguarding-alerts?limit=2&status=open&cursor=\(cursor)>; rel=\"next\"")
        let last = try harness.send("GET", "/v1/safeguarding-alerts?limit=500", key: writer)
        XCTAssertTrue(last.json["next_cursor"] is NSNull)

        XCTAssertEqual(ids(try all("from=2025-03-03&to=2025-03-03")), Array(inOrder[1...3]), "one day: from and to are both included")
        XCTAssertEqual(ids(try all("from=2025-03-03")), Array(inOrder[1...]))
        XCTAssertEqual(ids(try all("to=2025-03-02")), [inOrder[0]])
        XCTAssertEqual(ids(try all("from=2025-06-06&to=2025-06-06")), [expected[5].id, expected[6].id], "days are days in England (BST)")
        XCTAssertEqual(ids(try all("from=2025-06-07")), [expected[7].id])
        XCTAssertEqual(ids(try all("from=2025-06-06", limit: 1)), [expected[5].id, expected[6].id, expected[7].id])

        for bad in ["status=closed", "overdue=yes", "overdue=", "from=2025-13-01", "from=03/03/2025", "to=tomorrow",
                    "from=2025-03-04&to=2025-03-03", "limit=0", "limit=501", "cursor=garbage", "format=csv", "colour=red",
                    "status=open&status=open", "tenant_id=x", "organisation_id=x"] {
            let response = try harness.send("GET", "/v1/safeguarding-alerts?\(bad)", key: writer)
            XCTAssertEqual(response.status, 400, "\(bad): \(response.text)")
            XCTAssertEqual(response.header("Content-Type"), "application/problem+json")
        }
        XCTAssertEqual(try harness.send("GET", "/v1/safeguarding-alerts?format=json", key: writer).status, 200)
    }

    // MARK: Scopes, narrative and partners

    func testScopesAndTheNarrativeNeedsFreeTextRead() async throws {
        let (_, alertID) = try raiseConcern()
        let blindWriter = try await harness.key(council, scopes: [.feedbackWrite, .feedbackRead])
        let acknowledged = try harness.send("POST", "/v1/safeguarding-alerts/\(alertID)/acknowledge", key: blindWriter, body: Self.acknowledgement)
        XCTAssertEqual(acknowledged.status, 200, acknowledged.text)
        XCTAssertFalse(acknowledged.json.keys.contains("action_taken"), "a writer without free_text:read does not read it back")
        XCTAssertFalse(acknowledged.text.contains("MASH"))
        XCTAssertEqual(acknowledged.json["acknowledged_by"] as? String, "Duty team manager (DTM-4)", "the role is not narrative")

        let reader = try await harness.key(council, scopes: [.feedbackRead])
        let read = try harness.send("GET", "/v1/safeguarding-alerts/\(alertID)", key: reader)
        XCTAssertEqual(read.status, 200)
        XCTAssertFalse(read.json.keys.contains("action_taken"), "absent, not empty: \(read.text)")
        let list = try harness.send("GET", "/v1/safeguarding-alerts", key: reader)
        XCTAssertEqual(list.items.count, 1)
        XCTAssertFalse(list.items[0].keys.contains("action_taken"))
        XCTAssertFalse(list.text.contains("MASH"))
        XCTAssertEqual(try harness.send("GET", "/v1/safeguarding-alerts/\(alertID)", key: writer).json["action_taken"] as? String,
                       "Referred to the MASH the same morning; strategy discussion held.")

        let (_, other) = try raiseConcern()
        XCTAssertEqual(try harness.send("POST", "/v1/safeguarding-alerts/\(other)/acknowledge", key: reader, body: Self.acknowledgement).status, 403,
                       "acknowledging needs feedback:write")
        let writeOnly = try await harness.key(council, scopes: [.feedbackWrite])
        XCTAssertEqual(try harness.send("GET", "/v1/safeguarding-alerts", key: writeOnly).status, 403, "reading needs feedback:read")
        XCTAssertEqual(try harness.send("GET", "/v1/safeguarding-alerts/\(other)", key: writeOnly).status, 403)
        XCTAssertEqual(try harness.send("GET", "/v1/safeguarding-alerts", key: nil).status, 401)
        XCTAssertEqual(try harness.send("GET", "/v1/safeguarding-alerts/\(other)", key: writer).json["status"] as? String, "open")
    }

    func testAPartnerSeesAndAcknowledgesOnlyItsOwnOrganisationsAlerts() async throws {
        let advocacy = try await harness.organisation("advocacy", in: council)
        let provider = try await harness.organisation("provider", in: council)
        let advocacyKey = try await harness.key(council, scopes: [.feedbackWrite, .feedbackRead, .freeTextRead], organisation: advocacy)
        let providerKey = try await harness.key(council, scopes: [.feedbackWrite, .feedbackRead, .freeTextRead], organisation: provider)
        let (_, mine) = try raiseConcern(advocacyKey)
        let (_, theirs) = try raiseConcern(providerKey)
        let (_, councils) = try raiseConcern()

        let seen = try all(key: advocacyKey)
        XCTAssertEqual(ids(seen), [mine])
        XCTAssertEqual(seen.first?["organisation"] as? String, "advocacy")
        XCTAssertEqual(ids(try all("status=open", key: advocacyKey)), [mine])
        XCTAssertEqual(ids(try all("overdue=false", key: advocacyKey)), [mine])
        XCTAssertEqual(try harness.send("GET", "/v1/safeguarding-alerts/\(theirs)", key: advocacyKey).status, 404)
        XCTAssertEqual(try harness.send("GET", "/v1/safeguarding-alerts/\(councils)", key: advocacyKey).status, 404)
        let intrusion = try harness.send("POST", "/v1/safeguarding-alerts/\(theirs)/acknowledge", key: advocacyKey, body: Self.acknowledgement)
        XCTAssertEqual(intrusion.status, 404, intrusion.text)
        XCTAssertEqual(try harness.send("GET", "/v1/safeguarding-alerts/\(theirs)", key: providerKey).json["status"] as? String, "open",
                       "another partner's attempt changed nothing")
        XCTAssertEqual(try harness.send("POST", "/v1/safeguarding-alerts/\(mine)/acknowledge", key: advocacyKey, body: Self.acknowledgement).status, 200)

        let tenantWide = try all()
        XCTAssertEqual(Set(ids(tenantWide)), [mine, theirs, councils], "the council sees its partners' alerts")
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: tenantWide.map { ($0["id"] as! String, $0["organisation"] as? String ?? "-") }),
                       [mine: "advocacy", theirs: "provider", councils: "-"])

        let elsewhere = try await harness.tenant("kirklees")
        let stranger = try await harness.key(elsewhere, scopes: [.feedbackWrite, .feedbackRead, .freeTextRead])
        XCTAssertEqual(ids(try all(key: stranger)), [])
        XCTAssertEqual(try harness.send("GET", "/v1/safeguarding-alerts/\(councils)", key: stranger).status, 404)
        XCTAssertEqual(try harness.send("POST", "/v1/safeguarding-alerts/\(councils)/acknowledge", key: stranger, body: Self.acknowledgement).status, 404)
        XCTAssertEqual(try harness.send("GET", "/v1/safeguarding-alerts/\(councils)", key: writer).json["status"] as? String, "open")
    }

    // MARK: Validation

    func testTheAcknowledgementBodyIsValidatedStrictly() async throws {
        let (_, alertID) = try raiseConcern()
        let by = #""Duty team manager""#, action = #""Referred to the MASH""#
        let cases: [(field: String, body: String)] = [
            ("acknowledged_by", #"{"action_taken":\#(action)}"#),
            ("acknowledged_by", #"{"acknowledged_by":null,"action_taken":\#(action)}"#),
            ("acknowledged_by", #"{"acknowledged_by":"","action_taken":\#(action)}"#),
            ("acknowledged_by", #"{"acknowledged_by":"   ","action_taken":\#(action)}"#),
            ("acknowledged_by", #"{"acknowledged_by":7,"action_taken":\#(action)}"#),
            ("acknowledged_by", #"{"acknowledged_by":"\#(String(repeating: "b", count: 101))","action_taken":\#(action)}"#),
            ("action_taken", #"{"acknowledged_by":\#(by)}"#),
            ("action_taken", #"{"acknowledged_by":\#(by),"action_taken":""}"#),
            ("action_taken", #"{"acknowledged_by":\#(by),"action_taken":["a"]}"#),
            ("action_taken", #"{"acknowledged_by":\#(by),"action_taken":"\#(String(repeating: "a", count: 2001))"}"#),
            ("status", #"{"acknowledged_by":\#(by),"action_taken":\#(action),"status":"open"}"#),
            ("acknowledged_at", #"{"acknowledged_by":\#(by),"action_taken":\#(action),"acknowledged_at":"2025-01-01T00:00:00Z"}"#),
            ("tenant_id", #"{"acknowledged_by":\#(by),"action_taken":\#(action),"tenant_id":"x"}"#),
            ("(body)", #"["acknowledged_by"]"#),
        ]
        for (field, body) in cases {
            let response = try harness.send("POST", "/v1/safeguarding-alerts/\(alertID)/acknowledge", key: writer, body: body)
            XCTAssertEqual(response.status, 422, "\(field): \(response.text)")
            let fields = (response.json["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String }
            XCTAssertEqual(fields, [field], body.prefix(120).description)
        }
        let both = try harness.send("POST", "/v1/safeguarding-alerts/\(alertID)/acknowledge", key: writer, body: "{}")
        XCTAssertEqual(both.status, 422)
        XCTAssertEqual(Set((both.json["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String }), ["acknowledged_by", "action_taken"])
        for malformed in ["", "{", #"{"acknowledged_by":"a","acknowledged_by":"b","action_taken":"c"}"#] {
            let response = try harness.send("POST", "/v1/safeguarding-alerts/\(alertID)/acknowledge", key: writer, body: malformed)
            XCTAssertEqual(response.status, 400, "\(malformed): \(response.text)")
        }
        XCTAssertEqual(try harness.send("GET", "/v1/safeguarding-alerts/\(alertID)", key: writer).json["status"] as? String, "open",
                       "nothing was acknowledged")

        let longest = #"{"acknowledged_by":"\#(String(repeating: "b", count: 100))","action_taken":"\#(String(repeating: "é", count: 2000))"}"#
        XCTAssertEqual(try harness.send("POST", "/v1/safeguarding-alerts/\(alertID)/acknowledge", key: writer, body: longest).status, 200,
                       "100 and 2000 characters are allowed")

        for id in [UUID().lowercased, "not-an-id"] {
            XCTAssertEqual(try harness.send("GET", "/v1/safeguarding-alerts/\(id)", key: writer).status, 404)
            let unknown = try harness.send("POST", "/v1/safeguarding-alerts/\(id)/acknowledge", key: writer, body: Self.acknowledgement)
            XCTAssertEqual(unknown.status, 404)
            XCTAssertEqual(unknown.header("Content-Type"), "application/problem+json")
        }
    }

    // MARK: Audit

    func testEveryReadListAndAcknowledgementIsAudited() async throws {
        let (_, alertID) = try raiseConcern()
        try raiseConcern()
        let list = try harness.send("GET", "/v1/safeguarding-alerts?limit=1", key: writer, headers: ["X-Request-Id": "sg-list"])
        XCTAssertEqual(list.status, 200)
        let read = try harness.send("GET", "/v1/safeguarding-alerts/\(alertID)", key: writer, headers: ["X-Request-Id": "sg-read"])
        XCTAssertEqual(read.status, 200)
        let ack = try harness.send("POST", "/v1/safeguarding-alerts/\(alertID)/acknowledge", key: writer, body: Self.acknowledgement,
                                   headers: ["X-Request-Id": "sg-ack"])
        XCTAssertEqual(ack.status, 200)
        let again = try harness.send("POST", "/v1/safeguarding-alerts/\(alertID)/acknowledge", key: writer, body: Self.acknowledgement,
                                     headers: ["X-Request-Id": "sg-ack-again"])
        XCTAssertEqual(again.status, 409)
        let missing = UUID().lowercased
        let unknown = try harness.send("POST", "/v1/safeguarding-alerts/\(missing)/acknowledge", key: writer, body: Self.acknowledgement,
                                       headers: ["X-Request-Id": "sg-unknown"])
        XCTAssertEqual(unknown.status, 404)
        let invalid = try harness.send("POST", "/v1/safeguarding-alerts/\(alertID)/acknowledge", key: writer, body: "{}",
                                       headers: ["X-Request-Id": "sg-invalid"])
        XCTAssertEqual(invalid.status, 422)

        func rows(_ requestID: String) async throws -> [String] {
            try await harness.auditRows(requestID: requestID).map {
                "\($0.tenant == council.id ? "tenant" : "?") \($0.action) \($0.outcome) \($0.status) \($0.resourceID ?? "-")"
            }
        }
        let listed = try await rows("sg-list")
        XCTAssertEqual(listed, ["tenant list success 200 -"])
        let exported = try await harness.superuserCount(
            "SELECT rows_exported FROM audit_events WHERE request_id = 'sg-list' AND resource_type = 'safeguarding_alert'")
        XCTAssertEqual(exported, 1, "the rows in the page")
        let readRows = try await rows("sg-read")
        XCTAssertEqual(readRows, ["tenant read success 200 \(alertID)"])
        let ackRows = try await rows("sg-ack")
        XCTAssertEqual(ackRows, ["tenant update success 200 \(alertID)"])
        let againRows = try await rows("sg-ack-again")
        XCTAssertEqual(againRows, ["tenant read success 200 \(alertID)"], "the 409 discloses the acknowledgement: a read")
        let unknownRows = try await rows("sg-unknown")
        XCTAssertEqual(unknownRows, ["tenant create not_found 404 \(missing)"])
        let invalidRows = try await rows("sg-invalid")
        XCTAssertEqual(invalidRows, [], "nothing was read or written")
        let types = try await harness.superuserCount(
            "SELECT count(*) FROM audit_events WHERE request_id LIKE 'sg-%' AND resource_type <> 'safeguarding_alert'")
        XCTAssertEqual(types, 0)
    }
}

/// The alert's lifecycle and its preconditions, from the shared kit.
final class SafeguardingLifecycleTests: XCTestCase {
    var harness: AccessHarness!
    var writer: String!

    override func setUp() async throws {
        harness = try await AccessHarness.start()
        let council = try await harness.tenant("redcar")
        writer = try await harness.key(council, scopes: [.feedbackWrite, .feedbackRead])
    }

    override func tearDown() async throws {
        await harness.stop()
    }

    private func raiseConcern() throws -> String {
        let created = try harness.send("POST", "/v1/feedback", key: writer,
                                       body: FeedbackSamples.body(externalID: UUID().lowercased, overrides: ["safeguarding_concern": "true"]))
        XCTAssertEqual(created.status, 201, created.text)
        return try XCTUnwrap((created.json["safeguarding_alert"] as? [String: Any])?["id"] as? String)
    }

    func testAnAlertShowsItsVersionAndWhatCanBeDoneAndAnswers304() throws {
        let alertID = try raiseConcern()
        let read = try harness.send("GET", "/v1/safeguarding-alerts/\(alertID)", key: writer)
        XCTAssertEqual(read.status, 200)
        XCTAssertEqual(read.header("ETag"), "\"1\"")
        XCTAssertEqual(read.json["version"] as? Int, 1)
        XCTAssertEqual(read.json["allowed_actions"] as? [String], ["acknowledge"])
        XCTAssertEqual(try harness.send("GET", "/v1/safeguarding-alerts/\(alertID)", key: writer, headers: ["If-None-Match": "\"1\""]).status, 304)
        XCTAssertEqual(try harness.send("GET", "/v1/safeguarding-alerts/\(alertID)", key: writer, headers: ["If-None-Match": "W/\"1\""]).status, 304)
        XCTAssertEqual(try harness.send("GET", "/v1/safeguarding-alerts/\(alertID)", key: writer, headers: ["If-None-Match": "\"2\""]).status, 200)

        let acknowledged = try harness.send("POST", "/v1/safeguarding-alerts/\(alertID)/acknowledge", key: writer,
                                            body: SafeguardingTests.acknowledgement, headers: ["If-Match": "\"1\""])
        XCTAssertEqual(acknowledged.status, 200, acknowledged.text)
        XCTAssertEqual(acknowledged.header("ETag"), "\"2\"")
        XCTAssertEqual(acknowledged.json["allowed_actions"] as? [String], [])
        XCTAssertEqual(try harness.send("GET", "/v1/safeguarding-alerts/\(alertID)", key: writer, headers: ["If-None-Match": "\"1\""]).status, 200)
    }

    /// A stale `If-Match` changes nothing and says which version is current; a 409 lists what
    /// the alert now allows (nothing).
    func testAStaleIfMatchIs412AndAnActionNotAllowedIs409ListingTheAllowedOnes() throws {
        let alertID = try raiseConcern()
        let stale = try harness.send("POST", "/v1/safeguarding-alerts/\(alertID)/acknowledge", key: writer,
                                     body: SafeguardingTests.acknowledgement, headers: ["If-Match": "\"7\""])
        XCTAssertEqual(stale.status, 412, stale.text)
        XCTAssertEqual(stale.header("ETag"), "\"1\"")
        XCTAssertEqual(stale.json["type"] as? String, "urn:heard:problem:stale-etag")
        let weak = try harness.send("POST", "/v1/safeguarding-alerts/\(alertID)/acknowledge", key: writer,
                                    body: SafeguardingTests.acknowledgement, headers: ["If-Match": "W/\"1\""])
        XCTAssertEqual(weak.status, 412, "If-Match compares strongly: a weak tag never matches")
        XCTAssertEqual(try harness.send("GET", "/v1/safeguarding-alerts/\(alertID)", key: writer).json["status"] as? String, "open")

        XCTAssertEqual(try harness.send("POST", "/v1/safeguarding-alerts/\(alertID)/acknowledge", key: writer,
                                        body: SafeguardingTests.acknowledgement, headers: ["If-Match": "*"]).status, 200)
        let again = try harness.send("POST", "/v1/safeguarding-alerts/\(alertID)/acknowledge", key: writer, body: SafeguardingTests.acknowledgement)
        XCTAssertEqual(again.status, 409)
        XCTAssertEqual(again.json["state"] as? String, "acknowledged")
        XCTAssertEqual(again.json["allowed_actions"] as? [String], [])
    }

    /// The acknowledgement and its history row are written by one statement: the row names the
    /// action, the states, the key's request and the fields (never the narrative).
    func testTheAcknowledgementWritesOneHistoryRow() async throws {
        let alertID = try raiseConcern()
        let acknowledged = try harness.send("POST", "/v1/safeguarding-alerts/\(alertID)/acknowledge", key: writer,
                                            body: SafeguardingTests.acknowledgement, headers: ["X-Request-Id": "ack-\(alertID.prefix(8))"])
        XCTAssertEqual(acknowledged.status, 200)
        let superuser = PostgresPool(configuration: harness.database.configuration, size: 1)
        defer { superuser.shutdown() }
        let rows = try await superuser.query("""
            SELECT resource_type, version, action, from_state, to_state, details::text AS details, request_id
              FROM lifecycle_history WHERE resource_id = \(alertID)::uuid
            """)
        XCTAssertEqual(rows.count, 1)
        let row = try XCTUnwrap(rows.first)
        XCTAssertEqual(try row.decode(String.self, column: "resource_type"), "safeguarding_alert")
        XCTAssertEqual(try row.decode(Int.self, column: "version"), 2)
        XCTAssertEqual(try row.decode(String.self, column: "action"), "acknowledge")
        XCTAssertEqual(try row.decode(String.self, column: "from_state"), "open")
        XCTAssertEqual(try row.decode(String.self, column: "to_state"), "acknowledged")
        XCTAssertEqual(try row.decode(String.self, column: "request_id"), "ack-\(alertID.prefix(8))")
        let details = try row.decode(String.self, column: "details")
        XCTAssertTrue(details.contains("Duty team manager"), details)
        XCTAssertFalse(details.contains("MASH"), "the narrative stays out of the history: \(details)")
    }
}

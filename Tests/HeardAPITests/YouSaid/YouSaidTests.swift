import Foundation
import HeardAPI
import HeardTesting
import XCTest

enum YouSaidSamples {
    /// A valid item body; `overrides` replace or add top-level fields (raw JSON values).
    static func body(overrides: [String: String] = [:]) -> String {
        var fields: [String: String] = [
            "said": #""The bus pass runs out before college starts""#, "theme": #""transport""#,
            "service_area": #""care_leavers""#, "raised_on": #""2026-10-05""#,
        ]
        for (name, value) in overrides { fields[name] = value }
        return "{" + fields.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}"
    }

    static func make(_ harness: AccessHarness, key: String, overrides: [String: String] = [:]) throws -> String {
        try ParticipationSamples.createdID(harness.send("POST", "/v1/you-said", key: key, body: body(overrides: overrides)), "raise an item")
    }

    /// PATCHes `item` with `body` on its current ETag.
    static func change(_ harness: AccessHarness, key: String, _ item: String, _ body: String) throws -> RawResponse {
        let tag = try harness.send("GET", "/v1/you-said/\(item)", key: key).header("ETag") ?? "*"
        return try harness.send("PATCH", "/v1/you-said/\(item)", key: key, body: body, headers: ["If-Match": tag])
    }

    static func errorFields(_ response: RawResponse) -> [String] {
        (response.json["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String }
    }
}

extension IsolatedResource {
    static let youSaidItem = IsolatedResource(
        name: "you_said_item", scopes: [.involvementWrite, .involvementRead],
        create: { harness, key in try YouSaidSamples.make(harness, key: key) },
        itemPath: { "/v1/you-said/\($0)" }, reads: ["/timeline", "/milestones", "/feedback-given"], listPath: "/v1/you-said",
        changes: [("PATCH", "", #"{"status":"in_progress"}"#), ("POST", "/milestones", #"{"title":"A stranger's"}"#),
                  ("POST", "/feedback-given", #"{"on":"2026-11-01","how":"letter"}"#)],
        deletable: false, csv: true,
        routes: ["POST /v1/you-said", "GET /v1/you-said/{id}", "GET /v1/you-said", "PATCH /v1/you-said/{id}", "GET /v1/you-said/{id}/timeline",
                 "GET /v1/you-said/{id}/milestones", "POST /v1/you-said/{id}/milestones", "GET /v1/you-said/{id}/feedback-given",
                 "POST /v1/you-said/{id}/feedback-given"])

    /// Its id here is "<item id>/<milestone id>": it lives under its item.
    static let youSaidMilestone = IsolatedResource(
        name: "you_said_milestone", scopes: [.involvementWrite, .involvementRead],
        create: { harness, key in
            let item = try YouSaidSamples.make(harness, key: key)
            return "\(item)/" + (try create(harness, key, "/v1/you-said/\(item)/milestones", #"{"title":"Talk to the bus company"}"#, "id"))
        },
        itemPath: { path in
            let parts = path.split(separator: "/")
            return "/v1/you-said/\(parts.first ?? "")/milestones/\(parts.last ?? "")"
        },
        changes: [("PATCH", "", #"{"done_on":"2026-11-01"}"#)], deletable: false, csv: false,
        routes: ["GET /v1/you-said/{id}/milestones/{milestone_id}", "PATCH /v1/you-said/{id}/milestones/{milestone_id}"])

    static let youSaidRound = IsolatedResource(
        name: "you_said_round", scopes: [.involvementWrite, .involvementRead, .admin],
        create: { harness, key in
            let item = try YouSaidSamples.make(harness, key: key)
            return try create(harness, key, "/v1/you-said/publish", #"{"title":"Autumn","published_on":"2026-11-02","items":["\#(item)"]}"#, "id")
        },
        itemPath: { "/v1/you-said/rounds/\($0)" }, listPath: "/v1/you-said/rounds",
        changes: [], deletable: false, csv: false,
        routes: ["POST /v1/you-said/publish", "GET /v1/you-said/rounds", "GET /v1/you-said/rounds/{id}"])
}

class YouSaidTestCase: XCTestCase {
    var harness: AccessHarness!
    var council: Registry.Tenant!
    /// involvement:write, involvement:read, free_text:read and admin.
    var writer: String!

    override func setUp() async throws {
        harness = try await AccessHarness.start(access: .init(ratePerSecond: 1_000, burst: 1_000))
        council = try await harness.tenant("redcar")
        writer = try await harness.key(council, scopes: [.involvementWrite, .involvementRead, .freeTextRead, .admin])
    }

    override func tearDown() async throws {
        await harness?.stop()
    }

    func item(_ id: String, key: String? = nil) throws -> [String: Any] {
        let response = try harness.send("GET", "/v1/you-said/\(id)", key: key ?? writer)
        XCTAssertEqual(response.status, 200, response.text)
        return response.json
    }

    @discardableResult
    func change(_ id: String, _ body: String, expect status: Int = 200, file: StaticString = #filePath, line: UInt = #line) throws -> RawResponse {
        let response = try YouSaidSamples.change(harness, key: writer, id, body)
        XCTAssertEqual(response.status, status, "\(body): \(response.text)", file: file, line: line)
        return response
    }
}

/// `/v1/you-said`: items raised from the tenant's sources, the answer, its state machine, the
/// telling and the timeline.
final class YouSaidTests: YouSaidTestCase {
    /// Raising an item and answering it are events of the change feed (an involvement key reads them).
    func testItemsAreInTheChangeFeed() async throws {
        let id = try YouSaidSamples.make(harness, key: writer)
        try change(id, #"{"status":"in_progress","owner_team":"leaving care"}"#)
        try change(id, #"{"progress_percent":40}"#)
        var types: [String] = []
        for _ in 0..<300 {  // the feed gives out what is below every transaction still running
            let page = try harness.send("GET", "/v1/events?types=you_said_item.created,you_said_item.changed,you_said_item.transitioned",
                                        key: writer)
            XCTAssertEqual(page.status, 200, page.text)
            types = (page.json["events"] as? [[String: Any]] ?? []).filter { $0["resource_id"] as? String == id }.compactMap { $0["type"] as? String }
            if types.count == 3 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        XCTAssertEqual(types, ["you_said_item.created", "you_said_item.transitioned", "you_said_item.changed"])
    }

    func testAnItemIsRaisedFromTheCouncilsSourcesAndAnotherCouncilsIdIsRefusedWithoutSayingItExists() async throws {
        let complaintsKey = try await harness.key(council, scopes: [.complaintsWrite, .feedbackWrite])
        let complaint = try IsolatedResource.create(harness, complaintsKey, "/v1/complaints", ComplaintSamples.body(), "id")
        let feedback = try IsolatedResource.create(harness, complaintsKey, "/v1/feedback", FeedbackSamples.body(), "id")
        let group = try ParticipationSamples.makeGroup(harness, key: writer)
        let activity = try ParticipationSamples.makeActivity(harness, key: writer)
        let sources = #"{"feedback":["\#(feedback)"],"complaints":["\#(complaint)"],"activities":["\#(activity)"],"groups":["\#(group)"]}"#
        let created = try harness.send("POST", "/v1/you-said", key: writer, body: YouSaidSamples.body(overrides: ["sources": sources]))
        XCTAssertEqual(created.status, 201, created.text)
        XCTAssertEqual(created.json["status"] as? String, "planned")
        XCTAssertEqual(created.json["allowed_statuses"] as? [String], ["in_progress", "done", "not_possible"])
        XCTAssertEqual(created.json["due_feedback"] as? Bool, false, "no answer yet")
        let stored = try XCTUnwrap(created.json["sources"] as? [String: [String]])
        XCTAssertEqual(stored, ["feedback": [feedback], "complaints": [complaint], "activities": [activity], "groups": [group]])
        XCTAssertEqual(created.header("ETag"), #""1""#)

        // Another council's feedback, and an id that exists nowhere, are the same 422.
        let elsewhere = try await harness.tenant("dudley")
        let strangerKey = try await harness.key(elsewhere, scopes: [.feedbackWrite])
        let theirs = try IsolatedResource.create(harness, strangerKey, "/v1/feedback", FeedbackSamples.body(), "id")
        let nowhere = UUID().lowercased
        let refused = try harness.send("POST", "/v1/you-said", key: writer, body: YouSaidSamples.body(overrides: [
            "sources": #"{"feedback":["\#(feedback)","\#(theirs)"],"groups":["\#(nowhere)"]}"#]))
        XCTAssertEqual(refused.status, 422, refused.text)
        let errors = try XCTUnwrap(refused.json["errors"] as? [[String: String]])
        XCTAssertEqual(errors.map { $0["field"] }, ["sources.feedback[1]", "sources.groups[0]"])
        XCTAssertEqual(errors[0]["message"], "is not a feedback record of this council")
        XCTAssertFalse(refused.text.contains("dudley"))
        let items = try await harness.superuserCount("SELECT count(*) FROM you_said_items")
        XCTAssertEqual(items, 1, "nothing stored")

        let other = try harness.send("POST", "/v1/you-said", key: writer, body: YouSaidSamples.body(overrides: [
            "sources": #"{"feedback":[]}"#, "tenant_id": #""x""#, "service_area": #""nowhere""#]))
        XCTAssertEqual(Set(YouSaidSamples.errorFields(other)), ["tenant_id", "service_area"])
    }

    func testTheStateMachineRefusesEveryDisallowedChangeNamingTheAllowedOnes() async throws {
        let allowed: [String: [String]] = [
            "planned": ["in_progress", "done", "not_possible"], "in_progress": ["done", "not_possible"],
            "done": ["in_progress"], "not_possible": ["in_progress"],
        ]
        let fieldsFor: [String: String] = ["not_possible": #","reason_not_possible":"The budget went to another service""#]
        func reach(_ status: String) throws -> String {
            let id = try YouSaidSamples.make(harness, key: writer)
            let path: [String] = ["planned": [], "in_progress": ["in_progress"], "done": ["done"], "not_possible": ["not_possible"]][status] ?? []
            for step in path { try change(id, #"{"status":"\#(step)"\#(fieldsFor[step] ?? "")}"#) }
            return id
        }
        for (from, targets) in allowed {
            for to in ["planned", "in_progress", "done", "not_possible"] where to != from {
                let id = try reach(from)
                var body = #"{"status":"\#(to)"\#(fieldsFor[to] ?? "")"#
                if from == "done" || from == "not_possible" { body += #","reopen_reason":"The new contract lets us try again""# }
                body += "}"
                if targets.contains(to) {
                    let moved = try change(id, body)
                    XCTAssertEqual(moved.json["status"] as? String, to)
                } else {
                    let refused = try change(id, body, expect: 409)
                    XCTAssertEqual(refused.json["state"] as? String, from, "\(from) -> \(to)")
                    XCTAssertEqual(refused.json["allowed_states"] as? [String], targets, "\(from) -> \(to)")
                    XCTAssertNotNil(refused.json["allowed_actions"] as? [String])
                    XCTAssertEqual(try item(id)["status"] as? String, from, "nothing changed")
                }
            }
        }
        // Reopening needs its reason; the status stays as it was without one.
        let done = try reach("done")
        XCTAssertEqual(YouSaidSamples.errorFields(try change(done, #"{"status":"in_progress"}"#, expect: 422)), ["reopen_reason"])
        XCTAssertEqual(try item(done)["allowed_actions"] as? [String], ["reopen"])
    }

    func testNotPossibleNeedsTheReasonGivenAndTheReasonIsRefusedOtherwise() async throws {
        let id = try YouSaidSamples.make(harness, key: writer)
        XCTAssertEqual(YouSaidSamples.errorFields(try change(id, #"{"status":"not_possible"}"#, expect: 422)), ["reason_not_possible"])
        XCTAssertEqual(YouSaidSamples.errorFields(try change(id, #"{"status":"done","reason_not_possible":"Why"}"#, expect: 422)),
                       ["reason_not_possible"])
        XCTAssertEqual(YouSaidSamples.errorFields(try change(id, #"{"reason_not_possible":"Why"}"#, expect: 422)), ["reason_not_possible"])
        XCTAssertEqual(try item(id)["status"] as? String, "planned")

        let declared = try change(id, #"{"status":"not_possible","reason_not_possible":"The law does not let us"}"#)
        XCTAssertEqual(declared.json["reason_not_possible"] as? String, "The law does not let us")
        // Its wording can be corrected while it stands; reopened, the reason goes.
        XCTAssertEqual(try change(id, #"{"reason_not_possible":"National rules do not let us"}"#).json["reason_not_possible"] as? String,
                       "National rules do not let us")
        XCTAssertEqual(YouSaidSamples.errorFields(try change(id, #"{"reason_not_possible":null}"#, expect: 422)), ["reason_not_possible"])
        let reopened = try change(id, #"{"status":"in_progress","reopen_reason":"The rules changed"}"#)
        XCTAssertTrue(reopened.json["reason_not_possible"] is NSNull)
        let timeline = try harness.send("GET", "/v1/you-said/\(id)/timeline", key: writer).items
        let reasons = timeline.compactMap { ($0["details"] as? [String: Any])?["reason_not_possible"] as? String }
        XCTAssertEqual(reasons, ["The law does not let us", "National rules do not let us"], "every reason given is kept")
    }

    func testProgressGoingBackwardsNeedsANote() async throws {
        let id = try YouSaidSamples.make(harness, key: writer)
        XCTAssertEqual(try change(id, #"{"status":"in_progress","progress_percent":60}"#).json["progress_percent"] as? Int, 60)
        XCTAssertEqual(YouSaidSamples.errorFields(try change(id, #"{"progress_percent":40}"#, expect: 422)), ["progress_note"])
        XCTAssertEqual(YouSaidSamples.errorFields(try change(id, #"{"progress_percent":101}"#, expect: 422)), ["progress_percent"])
        XCTAssertEqual(try item(id)["progress_percent"] as? Int, 60)
        XCTAssertEqual(try change(id, #"{"progress_percent":40,"progress_note":"The first supplier pulled out"}"#).json["progress_percent"] as? Int, 40)
        XCTAssertEqual(try change(id, #"{"progress_percent":90}"#).json["progress_percent"] as? Int, 90, "forwards needs no note")
    }

    func testAChangeNeedsTheCurrentETag() async throws {
        let id = try YouSaidSamples.make(harness, key: writer)
        let missing = try harness.send("PATCH", "/v1/you-said/\(id)", key: writer, body: #"{"owner_team":"leaving care"}"#)
        XCTAssertEqual(missing.status, 428)
        let stale = try harness.send("PATCH", "/v1/you-said/\(id)", key: writer, body: #"{"owner_team":"leaving care"}"#, headers: ["If-Match": #""7""#])
        XCTAssertEqual(stale.status, 412)
        XCTAssertEqual(stale.header("ETag"), #""1""#)
        let changed = try harness.send("PATCH", "/v1/you-said/\(id)", key: writer, body: #"{"owner_team":"leaving care"}"#, headers: ["If-Match": #""1""#])
        XCTAssertEqual(changed.status, 200, changed.text)
        XCTAssertEqual(changed.header("ETag"), #""2""#)
        XCTAssertEqual(try harness.send("GET", "/v1/you-said/\(id)", key: writer, headers: ["If-None-Match": #""2""#]).status, 304)
    }

    func testDueFeedbackFollowsTheAnswerAndWhenYoungPeopleWereTold() async throws {
        let group = try ParticipationSamples.makeGroup(harness, key: writer)
        let participant = try ParticipationSamples.makeParticipant(harness, key: writer)
        let id = try YouSaidSamples.make(harness, key: writer)
        XCTAssertEqual(try item(id)["due_feedback"] as? Bool, false)
        try change(id, #"{"we_did":"Passes now run to the end of September","status":"in_progress"}"#)
        XCTAssertEqual(try item(id)["due_feedback"] as? Bool, true, "an answer nobody was told of")

        let told = try harness.send("POST", "/v1/you-said/\(id)/feedback-given", key: writer, body: """
            {"on":"2026-11-03","how":"forum","groups":["\(group)"],"participants":["\(participant)"],"note":"Told at the CiCC meeting"}
            """)
        XCTAssertEqual(told.status, 201, told.text)
        XCTAssertEqual(told.json["groups"] as? [String], [group])
        XCTAssertEqual(try item(id)["due_feedback"] as? Bool, false)
        XCTAssertEqual(try harness.send("GET", "/v1/you-said?due_feedback=true", key: writer).items.count, 0)

        // A milestone done is news again; a milestone merely added is not.
        let milestone = try harness.send("POST", "/v1/you-said/\(id)/milestones", key: writer, body: #"{"title":"Agree dates with the college","due_on":"2026-12-01"}"#)
        XCTAssertEqual(milestone.status, 201, milestone.text)
        XCTAssertEqual(try item(id)["due_feedback"] as? Bool, false)
        let milestoneID = try XCTUnwrap(milestone.json["id"] as? String)
        let done = try harness.send("PATCH", "/v1/you-said/\(id)/milestones/\(milestoneID)", key: writer, body: #"{"done_on":"2026-11-20"}"#,
                                    headers: ["If-Match": #""1""#])
        XCTAssertEqual(done.status, 200, done.text)
        XCTAssertEqual(try item(id)["due_feedback"] as? Bool, true)
        XCTAssertEqual(try harness.send("GET", "/v1/you-said?due_feedback=true", key: writer).items.map { $0["id"] as? String }, [id])

        // Told of groups or participants that are not the council's: 422 naming them.
        let refused = try harness.send("POST", "/v1/you-said/\(id)/feedback-given", key: writer,
                                       body: #"{"on":"2026-11-21","how":"pigeon","groups":["\#(UUID().lowercased)"]}"#)
        XCTAssertEqual(Set(YouSaidSamples.errorFields(refused)), ["how", "groups[0]"])
        XCTAssertEqual(try harness.send("GET", "/v1/you-said/\(id)/feedback-given", key: writer).items.count, 1)
    }

    func testTheTimelineIsCompleteAndInOrderAndNeverRewritten() async throws {
        let id = try YouSaidSamples.make(harness, key: writer)
        try change(id, #"{"status":"in_progress","we_did":"Asked the bus company","owner_team":"leaving care"}"#)
        let milestone = try IsolatedResource.create(harness, writer, "/v1/you-said/\(id)/milestones", #"{"title":"New passes printed"}"#, "id")
        _ = try harness.send("PATCH", "/v1/you-said/\(id)/milestones/\(milestone)", key: writer, body: #"{"done_on":"2026-11-10"}"#,
                             headers: ["If-Match": #""1""#])
        try change(id, #"{"status":"done","progress_percent":100}"#)
        _ = try harness.send("POST", "/v1/you-said/\(id)/feedback-given", key: writer, body: #"{"on":"2026-11-12","how":"letter"}"#)
        _ = try harness.send("POST", "/v1/you-said/publish", key: writer, body: #"{"title":"Autumn","published_on":"2026-11-13","items":["\#(id)"]}"#)
        try change(id, #"{"status":"in_progress","reopen_reason":"The passes ran out again"}"#)

        let timeline = try harness.send("GET", "/v1/you-said/\(id)/timeline", key: writer)
        XCTAssertEqual(timeline.status, 200, timeline.text)
        let entries = timeline.items
        XCTAssertEqual(entries.map { $0["event"] as? String }, [
            "raised", "status_changed", "changed", "milestone_added", "milestone_changed", "status_changed", "changed", "feedback_given",
            "published", "status_changed",
        ])
        let statuses = entries.filter { $0["event"] as? String == "status_changed" }.map { $0["details"] as? [String: Any] ?? [:] }
        XCTAssertEqual(statuses.map { "\($0["from"] ?? ""):\($0["to"] ?? "")" }, ["planned:in_progress", "in_progress:done", "done:in_progress"])
        XCTAssertEqual(statuses.last?["reopen_reason"] as? String, "The passes ran out again")
        let instants = entries.compactMap { $0["occurred_at"] as? String }
        XCTAssertEqual(instants, instants.sorted(), "oldest first")
        XCTAssertTrue(entries.allSatisfy { ($0["key_id"] as? String)?.count == 36 }, "who")
        let raised = try XCTUnwrap(entries.first?["details"] as? [String: Any])
        XCTAssertEqual(raised["said"] as? String, "The bus pass runs out before college starts")

        // A later change is appended; what was there stays as it was.
        try change(id, #"{"theme":"travel"}"#)
        let after = try harness.send("GET", "/v1/you-said/\(id)/timeline", key: writer).items
        XCTAssertEqual(after.count, entries.count + 1)
        XCTAssertTrue(NSArray(array: Array(after.prefix(entries.count))).isEqual(to: entries), "earlier entries unchanged")
        XCTAssertEqual(after.last?["event"] as? String, "changed")
        XCTAssertEqual((after.last?["details"] as? [String: Any])?["theme"] as? String, "travel")
    }

    func testFreeTextIsOnlyForTheFreeTextScopeEverywhere() async throws {
        let reader = try await harness.key(council, scopes: [.involvementRead])
        let id = try YouSaidSamples.make(harness, key: writer, overrides: ["we_did": #""Secret answer words""#])
        try change(id, #"{"status":"not_possible","reason_not_possible":"Secret reason words","progress_percent":10}"#)
        try change(id, #"{"progress_percent":5,"progress_note":"Secret note words"}"#)
        _ = try harness.send("POST", "/v1/you-said/\(id)/feedback-given", key: writer, body: #"{"on":"2026-11-12","how":"letter","note":"Secret told words"}"#)
        let secrets = ["bus pass", "Secret answer", "Secret reason", "Secret note", "Secret told"]
        for path in ["/v1/you-said/\(id)", "/v1/you-said", "/v1/you-said?format=csv", "/v1/you-said/\(id)/timeline", "/v1/you-said/\(id)/feedback-given"] {
            let withScope = try harness.send("GET", path, key: writer)
            let without = try harness.send("GET", path, key: reader)
            XCTAssertEqual(without.status, 200, "\(path): \(without.text)")
            for secret in secrets where without.text.contains(secret) { XCTFail("\(path) shows \(secret) without free_text:read") }
            XCTAssertTrue(secrets.contains { withScope.text.contains($0) }, "\(path) shows free text with the scope")
        }
        XCTAssertEqual(try item(id, key: reader)["status"] as? String, "not_possible")

        // Without the scope, sending the stored text is a change like any other: no oracle.
        let blindWriter = try await harness.key(council, scopes: [.involvementWrite, .involvementRead])
        let version = try XCTUnwrap(try item(id)["version"] as? Int)
        let same = try YouSaidSamples.change(harness, key: blindWriter, id, #"{"said":"The bus pass runs out before college starts"}"#)
        XCTAssertEqual(same.json["version"] as? Int, version + 1)
        XCTAssertEqual(try YouSaidSamples.change(harness, key: writer, id, #"{"said":"The bus pass runs out before college starts"}"#)
            .json["version"] as? Int, version + 1, "with the scope, the same text changes nothing")
    }

    func testTheListFiltersPagesAndExports() async throws {
        let group = try ParticipationSamples.makeGroup(harness, key: writer)
        let fromGroup = try YouSaidSamples.make(harness, key: writer, overrides: ["sources": #"{"groups":["\#(group)"]}"#, "theme": #""housing""#])
        let plain = try YouSaidSamples.make(harness, key: writer, overrides: ["raised_on": #""2026-01-05""#])
        try change(plain, #"{"status":"done","we_did":"Done"}"#)
        _ = try harness.send("POST", "/v1/you-said/publish", key: writer, body: #"{"title":"Winter","published_on":"2026-11-13","items":["\#(plain)"]}"#)
        func ids(_ query: String) throws -> [String] {
            let page = try harness.send("GET", "/v1/you-said?\(query)", key: writer)
            XCTAssertEqual(page.status, 200, "\(query): \(page.text)")
            return page.items.compactMap { $0["id"] as? String }
        }
        XCTAssertEqual(try ids("source_kind=groups"), [fromGroup])
        XCTAssertEqual(try ids("status=done"), [plain])
        XCTAssertEqual(try ids("theme=housing"), [fromGroup])
        XCTAssertEqual(try ids("published=true"), [plain])
        XCTAssertEqual(try ids("published=false"), [fromGroup])
        XCTAssertEqual(try ids("from=2026-06-01"), [fromGroup])
        XCTAssertEqual(try ids("service_area=care_leavers&limit=1").count, 1)
        XCTAssertEqual(try harness.send("GET", "/v1/you-said?status=maybe&colour=red", key: writer).status, 400)
        let csv = try harness.send("GET", "/v1/you-said", key: writer, headers: ["Accept": "text/csv"])
        XCTAssertEqual(csv.status, 200)
        XCTAssertTrue(csv.text.hasPrefix("id,said,theme,"), csv.text)
        XCTAssertTrue(csv.text.contains(group))
    }
}

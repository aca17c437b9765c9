import Foundation
import HTTPServer
@testable import HeardAPI
import HeardTesting
import Postgres
import XCTest

/// `POST /v1/complaints/{id}/transitions`: the procedure as one state machine, its clocks,
/// suspensions, extensions and escalation windows.
final class ComplaintLifecycleTests: ComplaintTestCase {
    /// A complaint received on `received` (statutory unless `procedure` says otherwise): its id.
    func complaint(_ received: String = "2025-03-03", procedure: String = "statutory_children_act") throws -> String {
        let created = try harness.send("POST", "/v1/complaints", key: writer, body: ComplaintSamples.body(
            externalID: UUID().lowercased, overrides: ["received_on": "\"\(received)\"", "procedure": "\"\(procedure)\""]))
        XCTAssertEqual(created.status, 201, created.text)
        return try XCTUnwrap(created.json["id"] as? String)
    }

    /// Sends `action` with `fields` (raw JSON values) on the complaint's current ETag.
    @discardableResult
    func act(_ id: String, _ action: String, on day: String? = nil, _ fields: [String: String] = [:], etag: String? = nil,
             expect status: Int = 200, file: StaticString = #filePath, line: UInt = #line) throws -> RawResponse {
        let tag = try etag ?? XCTUnwrap(harness.send("GET", "/v1/complaints/\(id)", key: writer).header("ETag"))
        var body = fields
        body["action"] = "\"\(action)\""
        if let day { body["on"] = "\"\(day)\"" }
        let text = "{" + body.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}"
        let response = try harness.send("POST", "/v1/complaints/\(id)/transitions", key: writer, body: text, headers: ["If-Match": tag])
        XCTAssertEqual(response.status, status, "\(action) on \(day ?? "today"): \(response.text)", file: file, line: line)
        return response
    }

    func errorFields(_ response: RawResponse) -> [String] {
        (response.json["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String }
    }

    /// The whole statutory procedure, every due date counted by hand.
    func testTheStatutoryPathThroughThreeStages() async throws {
        let id = try complaint("2025-03-03")
        var now = try act(id, "acknowledge", on: "2025-03-04")
        XCTAssertEqual(now.json["status"] as? String, "acknowledged")
        XCTAssertEqual(now.json["response_due_on"] as? String, "2025-03-17", "the statutory clock runs from receipt")

        // Suspended until an advocate is appointed: nothing is due; resumed, the due date moves
        // later by the working days stopped (5, 6 and 7 March).
        now = try act(id, "suspend", on: "2025-03-05", ["reason": #""awaiting_advocate""#])
        XCTAssertEqual(now.json["status"] as? String, "suspended")
        XCTAssertTrue(now.json["response_due_on"] is NSNull)
        XCTAssertEqual(now.json["overdue"] as? Bool, false)
        now = try act(id, "resume", on: "2025-03-10")
        XCTAssertEqual(now.json["response_due_on"] as? String, "2025-03-20")
        let suspensions = try XCTUnwrap(now.json["suspensions"] as? [[String: Any]])
        XCTAssertEqual(suspensions.first?["from"] as? String, "2025-03-05")
        XCTAssertEqual(suspensions.first?["resumed_on"] as? String, "2025-03-10")
        XCTAssertEqual(suspensions.first?["reason"] as? String, "awaiting_advocate")

        // Extended to the most stage 1 allows: 20 working days, plus the 3 suspended.
        XCTAssertEqual(errorFields(try act(id, "extend", ["working_days": "21", "reason": #""Complex""#], expect: 422)), ["working_days"])
        XCTAssertEqual(errorFields(try act(id, "extend", ["working_days": "10", "reason": #""Complex""#], expect: 422)), ["working_days"])
        now = try act(id, "extend", on: "2025-03-11", ["working_days": "20", "reason": #""Three services involved""#])
        XCTAssertEqual(now.json["response_due_on"] as? String, "2025-04-03")
        XCTAssertEqual(now.json["response_allowance"] as? Int, 20)
        XCTAssertEqual((now.json["extensions"] as? [[String: Any]])?.first?["reason"] as? String, "Three services involved")
        XCTAssertFalse((now.json["allowed_actions"] as? [String] ?? []).contains("extend"), "no more to extend to")

        now = try act(id, "respond", on: "2025-03-28", ["outcome": #""partly_upheld""#])
        XCTAssertEqual(now.json["status"] as? String, "responded")
        XCTAssertEqual(now.json["outcome"] as? String, "partly_upheld")
        XCTAssertEqual(now.json["overdue"] as? Bool, false)
        XCTAssertEqual(now.json["allowed_actions"] as? [String], ["escalate", "close"])

        // Stage 2 may be asked for within 20 working days of the response (Easter skipped: 29 April).
        let late = try act(id, "escalate", on: "2025-04-30", expect: 422)
        XCTAssertEqual(errorFields(late), ["late_reason"])
        now = try act(id, "escalate", on: "2025-04-29")
        XCTAssertEqual(now.json["stage"] as? Int, 2)
        XCTAssertEqual(now.json["status"] as? String, "received")
        XCTAssertTrue(now.json["response_due_on"] is NSNull, "stage 2's clock starts when the statement is agreed")
        XCTAssertEqual(now.json["allowed_actions"] as? [String], ["acknowledge", "extend", "agree_statement", "withdraw"])
        try act(id, "respond", on: "2025-05-01", ["outcome": #""upheld""#], expect: 409)

        now = try act(id, "agree_statement", on: "2025-05-06")
        XCTAssertEqual(now.json["status"] as? String, "investigating")
        XCTAssertEqual(now.json["response_due_on"] as? String, "2025-06-11", "25 working days, the spring bank holiday skipped")
        XCTAssertEqual(errorFields(try act(id, "extend", ["working_days": "66", "reason": #""x""#], expect: 422)), ["working_days"])
        now = try act(id, "extend", on: "2025-05-07", ["working_days": "65", "reason": #""Independent person unavailable""#])
        XCTAssertEqual(now.json["response_due_on"] as? String, WorkingDayCalendar().adding(workingDays: 65, to: CalendarDate("2025-05-06")!).description)
        now = try act(id, "respond", on: "2025-06-10", ["outcome": #""not_upheld""#])

        // Stage 3: the panel within 30 working days of the request, its report within 5, the
        // council's response within 15 of the report.
        now = try act(id, "escalate", on: "2025-06-20")
        XCTAssertEqual(now.json["stage"] as? Int, 3)
        XCTAssertEqual(now.json["panel_due_on"] as? String, "2025-08-01")
        XCTAssertTrue(now.json["panel_report_due_on"] is NSNull)
        XCTAssertTrue(now.json["response_due_on"] is NSNull)
        XCTAssertEqual(now.json["allowed_actions"] as? [String], ["acknowledge", "convene_panel", "withdraw"])
        now = try act(id, "convene_panel", on: "2025-07-15")
        XCTAssertEqual(now.json["panel_report_due_on"] as? String, "2025-07-22")
        now = try act(id, "report_panel", on: "2025-07-21")
        XCTAssertEqual(now.json["response_due_on"] as? String, "2025-08-11")
        now = try act(id, "final_response", on: "2025-08-08", ["outcome": #""not_upheld""#])
        XCTAssertEqual(now.json["allowed_actions"] as? [String], ["close"])
        now = try act(id, "close", on: "2025-08-11", ["note": #""Told about the Ombudsman""#])
        XCTAssertEqual(now.json["status"] as? String, "closed")
        XCTAssertEqual(now.json["allowed_actions"] as? [String], [])

        let history = try XCTUnwrap(now.json["history"] as? [[String: Any]])
        XCTAssertEqual(history.compactMap { $0["action"] as? String }, [
            "receive", "acknowledge", "suspend", "resume", "extend", "respond", "escalate", "agree_statement", "extend", "respond",
            "escalate", "convene_panel", "report_panel", "final_response", "close",
        ])
        XCTAssertEqual(history.last?["note"] as? String, "Told about the Ombudsman")
        XCTAssertEqual(history.last?["on"] as? String, "2025-08-11")
        XCTAssertNotNil(history.last?["key_id"] as? String)
        XCTAssertNotNil(history.last?["recorded_at"] as? String)

        // Without free_text:read, notes and reasons given in words are absent.
        let plain = try await harness.key(council, scopes: [.complaintsRead])
        let read = try harness.send("GET", "/v1/complaints/\(id)", key: plain)
        XCTAssertFalse(read.text.contains("Ombudsman"))
        XCTAssertFalse(read.text.contains("Independent person"))
    }

    func testTheCorporatePath() async throws {
        let id = try complaint("2025-03-03", procedure: "corporate")
        var now = try harness.send("GET", "/v1/complaints/\(id)", key: writer)
        XCTAssertEqual(now.json["acknowledge_due_on"] as? String, "2025-03-10")
        XCTAssertEqual(now.json["response_due_on"] as? String, "2025-03-24")
        XCTAssertFalse((now.json["allowed_actions"] as? [String] ?? []).contains("suspend"), "the corporate clock is not suspended")
        now = try act(id, "acknowledge", on: "2025-03-05")
        XCTAssertTrue(now.json["acknowledge_due_on"] is NSNull)
        XCTAssertEqual(now.json["response_due_on"] as? String, "2025-03-19", "ten after the acknowledgement")
        XCTAssertEqual(errorFields(try act(id, "extend", ["working_days": "21", "reason": #""x""#], expect: 422)), ["working_days"])
        now = try act(id, "extend", on: "2025-03-06", ["working_days": "20", "reason": #""Waiting for a provider""#])
        XCTAssertEqual(now.json["response_due_on"] as? String, "2025-04-02")
        now = try act(id, "respond", on: "2025-03-31", ["outcome": #""upheld""#])
        now = try act(id, "escalate", on: "2025-06-02")
        XCTAssertEqual(now.json["stage"] as? Int, 2, "the corporate procedure sets no escalation window")
        XCTAssertEqual(now.json["acknowledge_due_on"] as? String, "2025-06-09")
        XCTAssertEqual(now.json["response_due_on"] as? String, "2025-07-07")
        now = try act(id, "acknowledge", on: "2025-06-03")
        XCTAssertEqual(now.json["response_due_on"] as? String, "2025-07-01")
        XCTAssertEqual(errorFields(try act(id, "extend", ["working_days": "41", "reason": #""x""#], expect: 422)), ["working_days"])
        now = try act(id, "extend", on: "2025-06-04", ["working_days": "40", "reason": #""x""#])
        now = try act(id, "respond", on: "2025-07-10", ["outcome": #""not_upheld""#])
        XCTAssertEqual(now.json["allowed_actions"] as? [String], ["close"], "no stage 3 in the corporate procedure")
        try act(id, "escalate", expect: 409)
    }

    func testEveryDisallowedActionIsA409NamingTheAllowedOnes() async throws {
        let id = try complaint()
        let allowed = ["acknowledge", "suspend", "extend", "respond", "withdraw"]
        for action in ComplaintAction.allCases.map(\.rawValue) where !allowed.contains(action) {
            let refused = try act(id, action, expect: 409)
            XCTAssertEqual(refused.json["type"] as? String, "urn:heard:problem:action-not-allowed")
            XCTAssertEqual(refused.json["state"] as? String, "received")
            XCTAssertEqual(refused.json["allowed_actions"] as? [String], allowed, action)
        }
        try act(id, "withdraw", on: "2025-03-05")
        for action in ComplaintAction.allCases.map(\.rawValue) where action != "close" {
            XCTAssertEqual(try act(id, action, expect: 409).json["allowed_actions"] as? [String], ["close"], action)
        }
        try act(id, "close", on: "2025-03-05")
        for action in ComplaintAction.allCases.map(\.rawValue) {
            XCTAssertEqual(try act(id, action, expect: 409).json["allowed_actions"] as? [String], [], action)
        }
        XCTAssertEqual(try act(id, "launch", expect: 422).json["type"] as? String, "urn:heard:problem:validation-failed")
    }

    func testPreconditionsFieldsAndDays() async throws {
        let id = try complaint()
        let bare = try harness.send("POST", "/v1/complaints/\(id)/transitions", key: writer, body: #"{"action":"acknowledge"}"#)
        XCTAssertEqual(bare.status, 428)
        XCTAssertEqual(try act(id, "acknowledge", etag: "\"7\"", expect: 412).header("ETag"), "\"1\"")
        XCTAssertEqual(errorFields(try act(id, "acknowledge", on: "2025-03-01", expect: 422)), ["on"], "before receipt")
        XCTAssertEqual(errorFields(try act(id, "acknowledge", on: "2999-01-01", expect: 422)), ["on"])
        XCTAssertEqual(errorFields(try act(id, "suspend", ["reason": #""other""#], expect: 422)), ["note"])
        XCTAssertEqual(Set(errorFields(try act(id, "suspend", ["reason": #""holiday""#, "outcome": #""upheld""#], expect: 422))), ["reason", "outcome"])
        XCTAssertEqual(errorFields(try act(id, "respond", expect: 422)), ["outcome"])
        try act(id, "suspend", on: "2025-03-04", ["reason": #""other""#, "note": #""Waiting for the family""#])
    }

    func testTwoPeopleActingAtOnceCannotBothWin() async throws {
        let id = try complaint()
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<8 {
                group.addTask { [harness, writer] in
                    try harness!.send("POST", "/v1/complaints/\(id)/transitions", key: writer!,
                                      body: index % 2 == 0 ? #"{"action":"acknowledge","on":"2025-03-04"}"# : #"{"action":"withdraw","on":"2025-03-04"}"#,
                                      headers: ["If-Match": "\"1\""]).status
                }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        XCTAssertEqual(statuses.filter { $0 == 200 }.count, 1, "\(statuses)")
        XCTAssertEqual(statuses.filter { $0 == 412 || $0 == 409 }.count, 7, "\(statuses)")
        let history = try XCTUnwrap(harness.send("GET", "/v1/complaints/\(id)", key: writer).json["history"] as? [[String: Any]])
        XCTAssertEqual(history.count, 2)
    }

    func testOverdueAsOfADay() async throws {
        let id = try complaint("2025-03-03")
        try act(id, "acknowledge", on: "2025-03-04")
        XCTAssertEqual(try harness.send("GET", "/v1/complaints/\(id)?as_of=2025-03-17", key: writer).json["overdue"] as? Bool, false)
        XCTAssertEqual(try harness.send("GET", "/v1/complaints/\(id)?as_of=2025-03-18", key: writer).json["overdue"] as? Bool, true)
        try act(id, "respond", on: "2025-03-20", ["outcome": #""upheld""#])
        let read = try harness.send("GET", "/v1/complaints/\(id)?as_of=2025-03-25", key: writer)
        XCTAssertEqual(read.json["overdue"] as? Bool, false, "responded, however late")
        XCTAssertTrue(read.json["working_days_left"] is NSNull)
        XCTAssertEqual(try harness.send("GET", "/v1/complaints/\(id)?as_of=someday", key: writer).status, 400)
    }

    /// A complaint with several elements is answered element by element; its outcome follows.
    func testARespondWithElementsGivesEachItsOutcomeAndTheComplaintTheirs() async throws {
        let mixed = #"[{"element":"1","outcome":"upheld"},{"element":"2","outcome":"not_upheld"},{"element":"3a","outcome":"upheld"}]"#
        let id = try complaint()
        XCTAssertEqual(errorFields(try act(id, "respond", on: "2025-03-10", expect: 422)), ["outcome"], "neither outcome nor elements")
        XCTAssertEqual(errorFields(try act(id, "respond", on: "2025-03-10", ["elements": mixed, "outcome": #""upheld""#], expect: 422)),
                       ["outcome"], "an outcome its elements contradict")
        XCTAssertEqual(errorFields(try act(id, "respond", on: "2025-03-10", ["elements": #"[{"element":"1","outcome":"upheld"}]"#], expect: 422)),
                       ["elements"], "one element is an outcome")
        XCTAssertEqual(errorFields(try act(id, "respond", on: "2025-03-10", ["elements": #"[{"element":"1","outcome":"upheld"},{"element":"1","outcome":"upheld"},{"element":"Jo's","outcome":"maybe"}]"#], expect: 422)),
                       ["elements[1].element", "elements[2].element", "elements[2].outcome"])
        XCTAssertEqual(errorFields(try act(id, "acknowledge", on: "2025-03-04", ["elements": mixed], expect: 422)), ["elements"],
                       "only a response has elements")

        let answered = try act(id, "respond", on: "2025-03-10", ["elements": mixed, "outcome": #""partly_upheld""#])
        XCTAssertEqual(answered.json["outcome"] as? String, "partly_upheld")
        let response = try XCTUnwrap((answered.json["history"] as? [[String: Any]])?.last)
        let elements = try XCTUnwrap((response["details"] as? [String: Any])?["elements"] as? [[String: Any]], "\(response)")
        XCTAssertEqual(elements.map { $0["element"] as? String }, ["1", "2", "3a"])
        XCTAssertEqual(elements.map { $0["outcome"] as? String }, ["upheld", "not_upheld", "upheld"])

        for (given, outcome) in [(#"[{"element":"1","outcome":"upheld"},{"element":"2","outcome":"upheld"}]"#, "upheld"),
                                 (#"[{"element":"1","outcome":"not_upheld"},{"element":"2","outcome":"not_upheld"}]"#, "not_upheld")] {
            let other = try complaint()
            let done = try act(other, "respond", on: "2025-03-10", ["elements": given])
            XCTAssertEqual(done.json["outcome"] as? String, outcome, given)
            let details = (done.json["history"] as? [[String: Any]])?.last?["details"] as? [String: Any]
            XCTAssertEqual(details?["outcome"] as? String, outcome, given)
        }
    }
}

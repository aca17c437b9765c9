import Foundation
import HTTPServer
@testable import HeardAPI
import HeardTesting
import Postgres
import XCTest

enum ComplaintSamples {
    /// A valid complaint body; `overrides` replace or add top-level fields (raw JSON values).
    static func body(externalID: String = "case-1", overrides: [String: String] = [:], removing: [String] = [], reversed: Bool = false) -> String {
        var fields: [String: String] = [
            "source_system": #""icasework""#, "external_id": "\"\(externalID)\"", "procedure": #""statutory_children_act""#,
            "received_on": #""2025-03-03""#, "complainant_role": #""young_person""#, "subject_ref": #""P-77""#,
            "service_area": #""children_looked_after""#, "team": #""north""#, "categories": #"["communication","delay"]"#,
            "summary": #""My social worker changed three times and nobody told me""#, "advocacy_offered": "true",
        ]
        for (name, value) in overrides { fields[name] = value }
        for name in removing { fields.removeValue(forKey: name) }
        let ordered = fields.sorted { reversed ? $0.key > $1.key : $0.key < $1.key }
        return "{" + ordered.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}"
    }
}

/// A migrated database serving one council ("dudley") and a key that writes and reads its
/// complaints with their free text.
class ComplaintTestCase: XCTestCase {
    var harness: AccessHarness!
    var council: Registry.Tenant!
    /// complaints:write, complaints:read and free_text:read.
    var writer: String!

    override func setUp() async throws {
        // Rate limiting is tested elsewhere; paging one item at a time makes many requests.
        harness = try await AccessHarness.start(access: .init(ratePerSecond: 1_000, burst: 1_000))
        council = try await harness.tenant("dudley")
        writer = try await harness.key(council, scopes: [.complaintsWrite, .complaintsRead, .freeTextRead])
    }

    override func tearDown() async throws {
        await harness?.stop()
    }
}

/// `/v1/complaints`, `/v1/complaint-procedures` and `/v1/calendar/working-days`: recording a
/// complaint, its reference and due dates, the procedures as data, and the shared calendar.
final class ComplaintsTests: ComplaintTestCase {
    func create(_ body: String, key: String? = nil) throws -> RawResponse {
        try harness.send("POST", "/v1/complaints", key: key ?? writer, body: body)
    }

    func testAComplaintIsRecordedWithItsReferenceDueDatesAndReceipt() async throws {
        let created = try create(ComplaintSamples.body())
        XCTAssertEqual(created.status, 201, created.text)
        let id = try XCTUnwrap(created.json["id"] as? String)
        XCTAssertEqual(created.header("Location"), "/v1/complaints/\(id)")
        XCTAssertEqual(created.header("ETag"), "\"1\"")
        XCTAssertEqual(created.json["reference"] as? String, "CMP-2025-00001")
        XCTAssertEqual(created.json["stage"] as? Int, 1)
        XCTAssertEqual(created.json["status"] as? String, "received")
        // Monday 3 March 2025: ten working days later is Monday 17 March; no acknowledgement deadline.
        XCTAssertEqual(created.json["response_due_on"] as? String, "2025-03-17")
        XCTAssertTrue(created.json["acknowledge_due_on"] is NSNull)
        XCTAssertEqual(created.json["overdue"] as? Bool, true, "long past")
        XCTAssertEqual(created.json["allowed_actions"] as? [String], ["acknowledge", "suspend", "extend", "respond", "withdraw"])
        XCTAssertEqual(created.json["summary"] as? String, "My social worker changed three times and nobody told me")
        let history = try XCTUnwrap(created.json["history"] as? [[String: Any]])
        XCTAssertEqual(history.count, 1)
        XCTAssertEqual(history.first?["action"] as? String, "receive")
        XCTAssertEqual(history.first?["on"] as? String, "2025-03-03")

        // As of a day: working days left up to and including the due date, 0 on it, negative after.
        for (asOf, left, overdue) in [("2025-03-03", 10, false), ("2025-03-14", 1, false), ("2025-03-17", 0, false), ("2025-03-18", -1, true),
                                      ("2025-03-24", -5, true)] {
            let read = try harness.send("GET", "/v1/complaints/\(id)?as_of=\(asOf)", key: writer)
            XCTAssertEqual(read.status, 200, read.text)
            XCTAssertEqual(read.json["working_days_left"] as? Int, left, asOf)
            XCTAssertEqual(read.json["overdue"] as? Bool, overdue, asOf)
        }
        XCTAssertEqual(try harness.send("GET", "/v1/complaints/\(id)", key: writer, headers: ["If-None-Match": "\"1\""]).status, 304)

        // References count from 1 each year, per tenant.
        XCTAssertEqual(try create(ComplaintSamples.body(externalID: "case-2")).json["reference"] as? String, "CMP-2025-00002")
        XCTAssertEqual(try create(ComplaintSamples.body(externalID: "case-3", overrides: ["received_on": #""2024-12-30""#])).json["reference"] as? String,
                       "CMP-2024-00001")
        let elsewhere = try await harness.tenant("sandwell")
        let theirs = try await harness.key(elsewhere, scopes: [.complaintsWrite, .complaintsRead])
        XCTAssertEqual(try create(ComplaintSamples.body(), key: theirs).json["reference"] as? String, "CMP-2025-00001")
    }

    func testARetryIsTheSameComplaintAndDifferentContentIsAConflictThatUsesNoNumber() async throws {
        let first = try create(ComplaintSamples.body())
        XCTAssertEqual(first.status, 201)
        let retry = try create(ComplaintSamples.body(reversed: true))
        XCTAssertEqual(retry.status, 200, retry.text)
        XCTAssertEqual(retry.json["id"] as? String, first.json["id"] as? String)
        XCTAssertEqual(retry.json["reference"] as? String, "CMP-2025-00001")
        let conflict = try create(ComplaintSamples.body(overrides: ["team": #""south""#]))
        XCTAssertEqual(conflict.status, 409)
        XCTAssertEqual(conflict.json["type"] as? String, "urn:heard:problem:natural-key-conflict")
        XCTAssertEqual(conflict.json["existing_id"] as? String, first.json["id"] as? String)
        XCTAssertEqual(try create(ComplaintSamples.body(externalID: "case-2")).json["reference"] as? String, "CMP-2025-00002",
                       "neither the retry nor the conflict used up a number")

        // Idempotency-Key is honoured too.
        let keyed = try harness.send("POST", "/v1/complaints", key: writer, body: ComplaintSamples.body(externalID: "case-3"),
                                     headers: ["Idempotency-Key": "k-1"])
        XCTAssertEqual(keyed.status, 201)
        let replay = try harness.send("POST", "/v1/complaints", key: writer, body: ComplaintSamples.body(externalID: "case-3"),
                                      headers: ["Idempotency-Key": "k-1"])
        XCTAssertEqual(replay.status, 201)
        XCTAssertEqual(replay.json["id"] as? String, keyed.json["id"] as? String)
    }

    func testValidationNamesEveryFieldAtFault() async throws {
        let bad = try create(ComplaintSamples.body(overrides: [
            "procedure": #""informal""#, "received_on": #""2999-01-01""#, "complainant_role": #""child""#, "categories": #"["delay","delay"]"#,
            "summary": "\"\(String(repeating: "x", count: 8001))\"", "matter_date": #""2025-03-04""#, "extra": "1",
        ], removing: ["advocacy_offered", "service_area"]))
        XCTAssertEqual(bad.status, 422, bad.text)
        let fields = Set((bad.json["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String })
        XCTAssertEqual(fields, ["procedure", "received_on", "categories[1]", "summary", "service_area", "extra", "late_acceptance_reason"])

        // A child under the statutory procedure must be offered an advocate.
        let noAdvocacy = try create(ComplaintSamples.body(overrides: ["complainant_role": #""child""#], removing: ["advocacy_offered"]))
        XCTAssertEqual((noAdvocacy.json["errors"] as? [[String: Any]])?.compactMap { $0["field"] as? String }, ["advocacy_offered"])
        XCTAssertEqual(try create(ComplaintSamples.body(overrides: ["complainant_role": #""parent_carer""#], removing: ["advocacy_offered"])).status, 201)

        // A matter more than a year before receipt needs a reason for accepting it late.
        let late = try create(ComplaintSamples.body(externalID: "late", overrides: ["matter_date": #""2024-03-02""#]))
        XCTAssertEqual((late.json["errors"] as? [[String: Any]])?.compactMap { $0["field"] as? String }, ["late_acceptance_reason"])
        XCTAssertEqual(try create(ComplaintSamples.body(externalID: "late", overrides: ["matter_date": #""2024-03-03""#])).status, 201,
                       "exactly a year before is in time")
        XCTAssertEqual(try create(ComplaintSamples.body(externalID: "late-2", overrides: [
            "matter_date": #""2023-01-01""#, "late_acceptance_reason": #""The young person was in hospital""#,
        ])).status, 201)
    }

    func testTheSummaryNeedsTheFreeTextScopeOnEveryPath() async throws {
        let created = try create(ComplaintSamples.body())
        let id = try XCTUnwrap(created.json["id"] as? String)
        let plain = try await harness.key(council, scopes: [.complaintsWrite, .complaintsRead])
        let read = try harness.send("GET", "/v1/complaints/\(id)", key: plain)
        XCTAssertEqual(read.status, 200)
        XCTAssertNil(read.json["summary"], "absent, not null")
        XCTAssertFalse(read.text.contains("social worker"))
        let retried = try create(ComplaintSamples.body(), key: plain)
        XCTAssertEqual(retried.status, 200)
        XCTAssertFalse(retried.text.contains("social worker"), "a retry answers without the summary too")
        let listed = try harness.send("GET", "/v1/complaints", key: plain)
        XCTAssertEqual(listed.items.count, 1)
        XCTAssertFalse(listed.text.contains("social worker"))
        let csv = try harness.send("GET", "/v1/complaints?format=csv", key: plain)
        XCTAssertEqual(csv.status, 200)
        XCTAssertFalse(csv.text.contains("social worker"))
        XCTAssertFalse(csv.text.split(separator: "\n").first?.contains("summary") ?? true)
        XCTAssertTrue(try harness.send("GET", "/v1/complaints?format=csv", key: writer).text.contains("social worker"))
    }

    /// Statutory stage 1 (ten working days) and the corporate stage 1 acknowledgement (five),
    /// hand-counted across the holidays of England and Wales.
    func testDueDatesAcrossBankHolidaysWeekendsAndClosureDays() async throws {
        let cases: [(received: String, due: String, why: String)] = [
            ("2020-12-18", "2021-01-06", "Christmas Day on a Friday, Boxing Day's substitute on Monday 28th, New Year's Day"),
            ("2021-12-17", "2022-01-05", "Christmas and Boxing Day at the weekend: substitutes on 27th and 28th; New Year's on Monday 3rd"),
            ("2025-04-10", "2025-04-28", "Good Friday and Easter Monday"),
            ("2025-04-30", "2025-05-15", "the early May bank holiday"),
            ("2025-05-16", "2025-06-02", "the spring bank holiday"),
            ("2025-08-18", "2025-09-02", "the summer bank holiday"),
            ("2025-03-08", "2025-03-21", "a Saturday receipt counts from Monday, as a Friday one does"),
            ("2025-03-07", "2025-03-21", "the Friday before"),
        ]
        for (index, item) in cases.enumerated() {
            let created = try create(ComplaintSamples.body(externalID: "due-\(index)", overrides: ["received_on": "\"\(item.received)\""]))
            XCTAssertEqual(created.status, 201, created.text)
            XCTAssertEqual(created.json["response_due_on"] as? String, item.due, item.why)
        }
        // Corporate: acknowledge within 5, respond within 10 of the acknowledgement (of its due date until then).
        let corporate = try create(ComplaintSamples.body(externalID: "corporate", overrides: ["procedure": #""corporate""#, "received_on": #""2025-04-14""#]))
        XCTAssertEqual(corporate.json["acknowledge_due_on"] as? String, "2025-04-23", "Good Friday and Easter Monday skipped")
        XCTAssertEqual(corporate.json["response_due_on"] as? String, "2025-05-08", "ten after 23 April, skipping the early May bank holiday")

        // A closure day of the council's moves the deadline; another council's does not.
        let admin = try await harness.key(council, scopes: [.admin])
        XCTAssertEqual(try harness.send("POST", "/v1/admin/closure-days", key: admin, body: #"{"day":"2025-03-12","reason":"Training"}"#).status, 201)
        let closed = try create(ComplaintSamples.body(externalID: "closure", overrides: ["received_on": #""2025-03-08""#]))
        XCTAssertEqual(closed.json["response_due_on"] as? String, "2025-03-24")
    }

    func testTheCalendarIsSharedWithAnyKey() async throws {
        let anyKey = try await harness.key(council, scopes: [.feedbackRead])
        let sum = try harness.send("GET", "/v1/calendar/working-days?from=2020-12-18&add=10", key: anyKey)
        XCTAssertEqual(sum.status, 200, sum.text)
        XCTAssertEqual(sum.json["date"] as? String, "2021-01-06")
        XCTAssertEqual(try harness.send("GET", "/v1/calendar/working-days?from=2025-03-08&add=0", key: anyKey).json["date"] as? String, "2025-03-10")
        let count = try harness.send("GET", "/v1/calendar/working-days?from=2020-12-18&to=2021-01-06", key: anyKey)
        XCTAssertEqual(count.json["working_days"] as? Int, 10)
        XCTAssertEqual(try harness.send("GET", "/v1/calendar/working-days?from=2025-03-10&to=2025-03-10", key: anyKey).json["working_days"] as? Int, 0)

        let admin = try await harness.key(council, scopes: [.admin])
        _ = try harness.send("POST", "/v1/admin/closure-days", key: admin, body: #"{"day":"2025-03-12","reason":"Training"}"#)
        XCTAssertEqual(try harness.send("GET", "/v1/calendar/working-days?from=2025-03-08&add=10", key: anyKey).json["date"] as? String, "2025-03-24")
        let elsewhere = try await harness.key(try await harness.tenant("walsall"), scopes: [.feedbackRead])
        XCTAssertEqual(try harness.send("GET", "/v1/calendar/working-days?from=2025-03-08&add=10", key: elsewhere).json["date"] as? String, "2025-03-21")

        for bad in ["from=2025-03-08", "add=3", "from=2025-03-08&add=3&to=2025-04-01", "from=2025-03-08&to=2025-03-01", "from=x&add=1",
                    "from=2025-03-08&add=-1", "from=3000-01-01&add=1"] {
            XCTAssertEqual(try harness.send("GET", "/v1/calendar/working-days?\(bad)", key: anyKey).status, 400, bad)
        }
    }

    func testProceduresAreDataAndOnlyTheCorporateOneChanges() async throws {
        let listed = try harness.send("GET", "/v1/complaint-procedures", key: writer)
        XCTAssertEqual(listed.status, 200, listed.text)
        XCTAssertEqual(listed.items.compactMap { $0["procedure"] as? String }, ["statutory_children_act", "corporate"])
        let statutory = try XCTUnwrap(listed.items.first?["stages"] as? [[String: Any]])
        XCTAssertEqual(statutory.map { $0["respond_within"] as? Int }, [10, 25, 15])
        XCTAssertEqual(statutory.map { $0["extendable_to"] as? Int }, [20, 65, nil])
        XCTAssertEqual(statutory.map { $0["escalate_within"] as? Int }, [20, 20, nil])
        XCTAssertEqual(statutory.last?["panel_within"] as? Int, 30)
        XCTAssertEqual(statutory.last?["panel_report_within"] as? Int, 5)

        let admin = try await harness.key(council, scopes: [.admin])
        let change = #"{"stages":[{"stage":1,"acknowledge_within":3,"respond_within":15,"extendable_to":25},{"stage":2,"acknowledge_within":5,"respond_within":20,"extendable_to":40}]}"#
        XCTAssertEqual(try harness.send("PATCH", "/v1/complaint-procedures/statutory_children_act", key: admin, body: change).status, 409)
        XCTAssertEqual(try harness.send("PATCH", "/v1/complaint-procedures/corporate", key: writer, body: change).status, 403)
        let changed = try harness.send("PATCH", "/v1/complaint-procedures/corporate", key: admin, body: change)
        XCTAssertEqual(changed.status, 200, changed.text)
        XCTAssertEqual(changed.json["version"] as? Int, 2)
        XCTAssertEqual(changed.header("ETag"), "\"2\"")
        XCTAssertEqual(try harness.send("PATCH", "/v1/complaint-procedures/corporate", key: admin, body: change, headers: ["If-Match": "\"1\""]).status, 412)

        // The change applies to complaints received after today; earlier receipts keep the Code's timescales.
        let earlier = try create(ComplaintSamples.body(externalID: "before", overrides: ["procedure": #""corporate""#, "received_on": #""2025-04-14""#]))
        XCTAssertEqual(earlier.json["acknowledge_due_on"] as? String, "2025-04-23")

        let superuser = PostgresPool(configuration: harness.database.configuration, size: 1)
        defer { superuser.shutdown() }
        try await superuser.execute("UPDATE complaint_procedure_versions SET effective_from = '2025-04-15'")
        let later = try create(ComplaintSamples.body(externalID: "after", overrides: ["procedure": #""corporate""#, "received_on": #""2025-04-15""#]))
        XCTAssertEqual(later.json["acknowledge_due_on"] as? String, "2025-04-22", "three working days, skipping Easter")
        XCTAssertEqual(later.json["response_due_on"] as? String, "2025-05-14", "fifteen after the acknowledgement's due date")
        XCTAssertEqual(try harness.send("GET", "/v1/complaints/\(try XCTUnwrap(earlier.json["id"] as? String))", key: writer)
            .json["acknowledge_due_on"] as? String, "2025-04-23", "a complaint keeps the timescales it was received under")

        let invalid = try harness.send("PATCH", "/v1/complaint-procedures/corporate", key: admin,
                                       body: #"{"stages":[{"stage":1,"acknowledge_within":0,"respond_within":15,"extendable_to":10}]}"#)
        XCTAssertEqual(invalid.status, 422)
        let fields = Set((invalid.json["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String })
        XCTAssertEqual(fields, ["stages", "stages[0].acknowledge_within", "stages[0].extendable_to"])
    }

    /// A closure day added after a complaint was received moves the due dates of every open
    /// stage it falls within (a new version), and removing it moves them back; a complaint
    /// already answered keeps what its response recorded.
    func testAClosureDayAddedLaterMovesTheDueDatesOfOpenComplaints() async throws {
        let open = try XCTUnwrap(create(ComplaintSamples.body(externalID: "open")).json["id"] as? String)  // received 2025-03-03
        let answered = try XCTUnwrap(create(ComplaintSamples.body(externalID: "answered")).json["id"] as? String)
        let responded = try harness.send("POST", "/v1/complaints/\(answered)/transitions", key: writer,
                                         body: #"{"action":"respond","on":"2025-03-14","outcome":"upheld"}"#, headers: ["If-Match": "\"1\""])
        XCTAssertEqual(responded.status, 200, responded.text)
        let admin = try await harness.key(council, scopes: [.admin])
        func read(_ id: String) throws -> RawResponse { try harness.send("GET", "/v1/complaints/\(id)", key: writer) }
        XCTAssertEqual(try read(open).json["response_due_on"] as? String, "2025-03-17")

        XCTAssertEqual(try harness.send("POST", "/v1/admin/closure-days", key: admin, body: #"{"day":"2025-03-20","reason":"After"}"#).status, 201)
        XCTAssertEqual(try read(open).header("ETag"), "\"1\"", "a day after the due date moves nothing")

        XCTAssertEqual(try harness.send("POST", "/v1/admin/closure-days", key: admin, body: #"{"day":"2025-03-12","reason":"Training"}"#).status, 201)
        let moved = try read(open)
        XCTAssertEqual(moved.json["response_due_on"] as? String, "2025-03-18")
        XCTAssertEqual(moved.header("ETag"), "\"2\"")
        let kept = try read(answered)
        XCTAssertEqual(kept.header("ETag"), "\"2\"", "only its response changed it")
        XCTAssertEqual((kept.json["history"] as? [[String: Any]])?.last.flatMap { $0["details"] as? [String: Any] }?["on_time"] as? Bool, true)

        XCTAssertEqual(try harness.send("DELETE", "/v1/admin/closure-days/2025-03-12", key: admin).status, 204)
        let back = try read(open)
        XCTAssertEqual(back.json["response_due_on"] as? String, "2025-03-17")
        XCTAssertEqual(back.header("ETag"), "\"3\"")
        XCTAssertEqual(try harness.send("GET", "/v1/complaints?due_before=2025-03-18&overdue=true&as_of=2025-03-18", key: writer).items.count, 1)
    }
}

import Foundation
import HTTPServer
@testable import HeardAPI
import HeardTesting
import Postgres
import XCTest

/// `GET /v1/complaints`: filters, overdue as of a day, paging and CSV.
final class ComplaintListTests: ComplaintTestCase {
    func create(_ externalID: String, _ overrides: [String: String]) throws -> String {
        let created = try harness.send("POST", "/v1/complaints", key: writer, body: ComplaintSamples.body(externalID: externalID, overrides: overrides))
        XCTAssertEqual(created.status, 201, created.text)
        return try XCTUnwrap(created.json["reference"] as? String)
    }

    func references(_ query: String) throws -> [String] {
        let page = try harness.send("GET", "/v1/complaints?\(query)", key: writer)
        XCTAssertEqual(page.status, 200, "\(query): \(page.text)")
        return page.items.compactMap { $0["reference"] as? String }
    }

    func testFiltersOverdueAsOfADayPagingAndCSV() async throws {
        let a = try create("a", ["received_on": #""2025-03-03""#])  // stage 1 response due 2025-03-17
        let b = try create("b", ["received_on": #""2025-03-10""#, "procedure": #""corporate""#, "categories": #"["placement"]"#,
                                 "service_area": #""fostering""#, "team": #""south""#, "subject_ref": #""P-9""#])  // due 2025-03-31
        let c = try create("c", ["received_on": #""2025-04-01""#])  // due 2025-04-15
        let cID = try XCTUnwrap(harness.send("GET", "/v1/complaints?subject_ref=P-77&received_from=2025-04-01", key: writer).items.first?["id"] as? String)
        let responded = try harness.send("POST", "/v1/complaints/\(cID)/transitions", key: writer,
                                         body: #"{"action":"respond","on":"2025-04-02","outcome":"upheld"}"#, headers: ["If-Match": "\"1\""])
        XCTAssertEqual(responded.status, 200, responded.text)

        XCTAssertEqual(try references(""), [a, b, c])
        XCTAssertEqual(try references("procedure=corporate"), [b])
        XCTAssertEqual(try references("category=placement"), [b])
        XCTAssertEqual(try references("category=delay"), [a, c])
        XCTAssertEqual(try references("service_area=fostering&team=south"), [b])
        XCTAssertEqual(try references("status=responded"), [c])
        XCTAssertEqual(try references("stage=1"), [a, b, c])
        XCTAssertEqual(try references("stage=2"), [])
        XCTAssertEqual(try references("received_from=2025-03-04&received_to=2025-03-31"), [b])
        XCTAssertEqual(try references("due_before=2025-03-31"), [a])
        XCTAssertEqual(try references("subject_ref=P-9"), [b])
        // Overdue as of a day: awaiting a response, its due date before that day.
        XCTAssertEqual(try references("overdue=true&as_of=2025-03-17"), [])
        XCTAssertEqual(try references("overdue=true&as_of=2025-03-18"), [a])
        XCTAssertEqual(try references("overdue=true&as_of=2025-04-20"), [a, b], "c was answered")
        XCTAssertEqual(try references("overdue=false&as_of=2025-04-20"), [c])
        let judged = try harness.send("GET", "/v1/complaints?as_of=2025-03-18", key: writer).items
        XCTAssertEqual(judged.map { $0["working_days_left"] as? Int }, [-1, 9, nil])
        XCTAssertTrue(judged.allSatisfy { $0["history"] is NSNull })

        // One at a time, following the cursor.
        var seen: [String] = []
        var target = "/v1/complaints?limit=1"
        while true {
            let page = try harness.send("GET", target, key: writer)
            seen += page.items.compactMap { $0["reference"] as? String }
            guard let next = page.json["next_cursor"] as? String else { break }
            target = "/v1/complaints?limit=1&cursor=\(next)"
        }
        XCTAssertEqual(seen, [a, b, c])

        let csv = try harness.send("GET", "/v1/complaints?format=csv&as_of=2025-03-18", key: writer)
        XCTAssertEqual(csv.status, 200)
        XCTAssertEqual(csv.header("Content-Disposition"), #"attachment; filename="complaints.csv""#)
        let lines = csv.text.split(separator: "\r\n").map(String.init)
        XCTAssertEqual(lines.count, 4)
        XCTAssertTrue(lines[0].hasPrefix("id,reference,source_system,external_id,procedure,received_on"), lines[0])
        XCTAssertTrue(lines[0].hasSuffix(",working_days_left,overdue"), lines[0])
        XCTAssertTrue(lines[1].contains(a) && lines[1].hasSuffix(",-1,true"), "a negative count is a number, not a formula: \(lines[1])")
        XCTAssertTrue(lines[1].contains("communication delay"), lines[1])

        for bad in ["stage=4", "overdue=yes", "as_of=tomorrow", "category=Noise!", "colour=red", "received_from=2025-13-01"] {
            XCTAssertEqual(try harness.send("GET", "/v1/complaints?\(bad)", key: writer).status, 400, bad)
        }
        // Categories are the council's own: a code it does not have matches nothing.
        XCTAssertEqual(try references("category=noise"), [])
    }

    func testAPartnerSeesOnlyItsOwnOrganisationsComplaints() async throws {
        let partner = try await harness.organisation("advocacy", in: council)
        let partnerKey = try await harness.key(council, scopes: [.complaintsWrite, .complaintsRead], organisation: partner)
        let own = try harness.send("POST", "/v1/complaints", key: partnerKey, body: ComplaintSamples.body(externalID: "p-1"))
        XCTAssertEqual(own.status, 201, own.text)
        XCTAssertEqual(own.json["organisation"] as? String, "advocacy")
        _ = try create("council-1", [:])
        XCTAssertEqual(try harness.send("GET", "/v1/complaints", key: partnerKey).items.count, 1)
        XCTAssertEqual(try references(""), ["CMP-2025-00001", "CMP-2025-00002"], "the council sees both; one numbering")
    }

    /// The overdue filter names the states whose clock runs as the partial index
    /// `complaints_running` does, so PostgreSQL pages overdue complaints from the index.
    func testTheOverdueFilterAndItsIndexNameTheSameStates() async throws {
        let states = ComplaintList.runningStates.map { "'\($0.rawValue)'::text" }
        let predicate = "(status = ANY (ARRAY[\(states.joined(separator: ", "))]))"
        let matching = try await harness.superuserCount("""
            SELECT count(*) FROM pg_index WHERE indexrelid = 'complaints_running'::regclass AND pg_get_expr(indpred, indrelid) = \(predicate)
            """)
        XCTAssertEqual(matching, 1, predicate)
    }
}

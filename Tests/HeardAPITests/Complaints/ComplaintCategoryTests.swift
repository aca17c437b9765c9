import Foundation
import HTTPServer
@testable import HeardAPI
import HeardTesting
import Postgres
import XCTest

/// `/v1/complaint-categories`: each council's own vocabulary of complaint categories, starting
/// from the default set; what complaints, their list and the annual figures make of it.
final class ComplaintCategoryTests: ComplaintTestCase {
    static let defaults = ["communication", "delay", "decision", "staff_conduct", "quality_of_service", "placement", "contact",
                           "financial", "other"]

    func codes(_ query: String = "", key: String? = nil) throws -> [String] {
        let listed = try harness.send("GET", "/v1/complaint-categories\(query)", key: key ?? writer)
        XCTAssertEqual(listed.status, 200, listed.text)
        return listed.items.compactMap { $0["code"] as? String }
    }

    func testACouncilStartsWithTheDefaultsAddsItsOwnAndRetiresThem() async throws {
        XCTAssertEqual(try codes(), Self.defaults)
        let admin = try await harness.key(council, scopes: [.admin])

        let added = try harness.send("POST", "/v1/complaint-categories", key: admin, body: #"{"code":"short_breaks","label":"Short breaks"}"#)
        XCTAssertEqual(added.status, 201, added.text)
        XCTAssertEqual(added.header("Location"), "/v1/complaint-categories/short_breaks")
        XCTAssertEqual(added.header("ETag"), "\"1\"")
        XCTAssertEqual(added.json["active"] as? Bool, true)
        XCTAssertEqual(try codes(), Self.defaults + ["short_breaks"])
        let again = try harness.send("POST", "/v1/complaint-categories", key: admin, body: #"{"code":"short_breaks","label":"Again"}"#)
        XCTAssertEqual(again.status, 409)
        XCTAssertEqual(again.json["type"] as? String, "urn:heard:problem:category-exists")
        for (body, field) in [(#"{"code":"Short Breaks","label":"x"}"#, "code"), (#"{"code":"9lives","label":"x"}"#, "code"),
                              (#"{"code":"ok_code","label":""}"#, "label"), (#"{"code":"ok_code"}"#, "label")] {
            let refused = try harness.send("POST", "/v1/complaint-categories", key: admin, body: body)
            XCTAssertEqual(refused.status, 422, body)
            XCTAssertEqual(refused.fieldErrors.first, field, body)
        }

        // A complaint may name the council's own category; not one it does not have.
        let complaint = try harness.send("POST", "/v1/complaints", key: writer,
                                         body: ComplaintSamples.body(externalID: "breaks", overrides: ["categories": #"["short_breaks","delay"]"#]))
        XCTAssertEqual(complaint.status, 201, complaint.text)
        XCTAssertEqual(complaint.json["categories"] as? [String], ["short_breaks", "delay"])
        let unknown = try harness.send("POST", "/v1/complaints", key: writer,
                                       body: ComplaintSamples.body(externalID: "unknown", overrides: ["categories": #"["delay","respite"]"#]))
        XCTAssertEqual(unknown.status, 422, unknown.text)
        XCTAssertEqual(unknown.fieldErrors, ["categories[1]"])
        let malformed = try harness.send("POST", "/v1/complaints", key: writer,
                                         body: ComplaintSamples.body(externalID: "malformed", overrides: ["categories": #"["Delay!"]"#]))
        XCTAssertEqual(malformed.status, 422)
        XCTAssertEqual(malformed.fieldErrors, ["categories[0]"])

        // Retired: refused on new complaints, kept on the complaint that has it, still filtered and counted.
        XCTAssertEqual(try harness.send("PATCH", "/v1/complaint-categories/short_breaks", key: admin, body: #"{"active":false}"#).status, 428)
        XCTAssertEqual(try harness.send("PATCH", "/v1/complaint-categories/short_breaks", key: admin, body: #"{"active":false}"#,
                                        headers: ["If-Match": "\"7\""]).status, 412)
        let retired = try harness.send("PATCH", "/v1/complaint-categories/short_breaks", key: admin, body: #"{"active":false}"#,
                                       headers: ["If-Match": "\"1\""])
        XCTAssertEqual(retired.status, 200, retired.text)
        XCTAssertEqual(retired.json["active"] as? Bool, false)
        XCTAssertEqual(retired.header("ETag"), "\"2\"")
        XCTAssertEqual(try codes("?active=false"), ["short_breaks"])
        let late = try harness.send("POST", "/v1/complaints", key: writer,
                                    body: ComplaintSamples.body(externalID: "late", overrides: ["categories": #"["short_breaks"]"#]))
        XCTAssertEqual(late.status, 422)
        XCTAssertEqual(late.fieldErrors, ["categories[0]"])
        let filtered = try harness.send("GET", "/v1/complaints?category=short_breaks", key: writer)
        XCTAssertEqual(filtered.items.map { $0["external_id"] as? String }, ["breaks"])
        XCTAssertEqual(try harness.send("GET", "/v1/complaints?category=Short%20breaks", key: writer).status, 400)

        let analyst = try await harness.key(council, scopes: [.reportsRead, .smallNumbersRead])
        let report = try harness.send("GET", "/v1/reports/complaints?from=2025-01-01&to=2025-12-31", key: analyst)
        let table = (report.json["tables"] as? [[String: Any]] ?? []).first { $0["name"] as? String == "category" }
        let rows = table?["rows"] as? [[String: Any]] ?? []
        XCTAssertEqual(rows.compactMap { $0["key"] as? String }, Self.defaults + ["short_breaks"])
        XCTAssertEqual((rows.last?["complaints"] as? [String: Any])?["value"] as? Int, 1)

        // Read by any complaints key; changed only by a council-wide admin key.
        let one = try harness.send("GET", "/v1/complaint-categories/short_breaks", key: writer)
        XCTAssertEqual(one.status, 200)
        XCTAssertEqual(try harness.send("GET", "/v1/complaint-categories/short_breaks", key: writer, headers: ["If-None-Match": "\"2\""]).status, 304)
        XCTAssertEqual(try harness.send("GET", "/v1/complaint-categories/respite", key: writer).status, 404)
        XCTAssertEqual(try harness.send("GET", "/v1/complaint-categories/NOT-A-CODE", key: writer).status, 404)
        XCTAssertEqual(try harness.send("POST", "/v1/complaint-categories", key: writer, body: #"{"code":"x_y","label":"x"}"#).status, 403)
        let partner = try await harness.key(council, scopes: [.admin, .complaintsRead], organisation: try await harness.organisation("advocacy", in: council))
        XCTAssertEqual(try codes(key: partner).count, Self.defaults.count + 1)
        let refused = try harness.send("POST", "/v1/complaint-categories", key: partner, body: #"{"code":"x_y","label":"x"}"#)
        XCTAssertEqual(refused.status, 403)
        XCTAssertEqual(refused.json["type"] as? String, "urn:heard:problem:council-key-required")

        // Another council still has only the defaults.
        let elsewhere = try await harness.key(try await harness.tenant("walsall"), scopes: [.complaintsRead])
        XCTAssertEqual(try codes(key: elsewhere), Self.defaults)
    }
}

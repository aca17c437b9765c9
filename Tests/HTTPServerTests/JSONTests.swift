import Foundation
@testable import HTTPServer
import XCTest

/// Heard's one way of writing JSON: keys as the types spell them, dates as whole UTC seconds.
final class JSONTests: XCTestCase {
    struct Sample: Encodable {
        var givenAt: Date
        var note: String?
        enum CodingKeys: String, CodingKey { case givenAt = "given_at", note }
    }

    func testDatesAreWholeUTCSecondsAndKeysAreSortedAndKept() {
        let body = JSON.encode(Sample(givenAt: Date(timeIntervalSince1970: 1_763_803_800.987), note: "a/b"))
        XCTAssertEqual(String(decoding: body, as: UTF8.self), #"{"given_at":"2025-11-22T09:30:00Z","note":"a/b"}"#)
        XCTAssertEqual(JSON.iso8601(Date(timeIntervalSince1970: -0.5)), "1969-12-31T23:59:59Z")
        // Found by the conformance run: a year before 1000 keeps its four digits.
        XCTAssertEqual(JSON.iso8601(Date(timeIntervalSince1970: -61_615_126_434 + 0.904)), "0017-06-29T23:06:06Z")
        XCTAssertEqual(JSON.iso8601(Date(timeIntervalSince1970: 253_402_300_799)), "9999-12-31T23:59:59Z")
    }

    func testTheDebugCheckFindsAKeyNotInSnakeCase() {
        XCTAssertNil(JSON.camelCaseKey(in: Array(#"{"a_b":[{"c":1}],"d":{"e_f":null}}"#.utf8)))
        XCTAssertEqual(JSON.camelCaseKey(in: Array(#"{"a_b":[{"nextCursor":1}]}"#.utf8)), "nextCursor")
    }
}

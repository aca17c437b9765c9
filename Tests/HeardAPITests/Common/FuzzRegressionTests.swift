import Foundation
import HTTPServer
@testable import HeardAPI
import XCTest

/// Inputs the fuzz targets (`scripts/fuzz`) found failing, kept failing-proof here; each input
/// is also in the target's corpus (`fuzz/corpus/<target>/`).
final class FuzzRegressionTests: XCTestCase {
    /// csv, crash-2e4c6d9e: a quote followed by a combining mark is one Character, and
    /// `replacingOccurrences(of: "\"", ...)` did not double it, so the quoted cell ended early
    /// and what followed became cells of their own (`"\u{5BF},=1+1` gave a formula cell).
    func testAQuoteFollowedByACombiningMarkIsDoubled() {
        XCTAssertEqual(CSVWriter.field("\"\u{5BF}"), "\"\"\"\u{5BF}\"")
        var csv = CSVWriter(header: ["id", "comment"])
        csv.append(["1", "\"\u{301},=1+1"])
        let row = csv.text.components(separatedBy: "\r\n")[1]
        XCTAssertEqual(row, "1,\"\"\"\u{301},=1+1\"", "one quoted cell, its quote doubled")
        XCTAssertEqual(row.unicodeScalars.filter { $0 == "\"" }.count, 4)
    }

    /// csv, crash-52de485a: a negative number is written as a number, but first in a row with
    /// more cells after it, a spreadsheet using `;` as its list separator (and `,` as its
    /// decimal point) reads `-2,1+HYPERLINK(...)` as one formula; there it is prefixed.
    func testANegativeNumberBeginningARowIsPrefixed() {
        var csv = CSVWriter(header: ["days", "comment"])
        csv.append(["-2", "1+HYPERLINK(\"http://x\")"])
        csv.append(["3", "-2"])
        csv.append(["-2", nil])
        XCTAssertEqual(csv.text, "days,comment\r\n'-2,\"1+HYPERLINK(\"\"http://x\"\")\"\r\n3,-2\r\n'-2,\r\n")
        var alone = CSVWriter(header: ["days"])
        alone.append(["-2"])
        XCTAssertEqual(alone.text, "days\r\n-2\r\n", "a row of one cell is that number, whatever the separator")
    }

    /// json, crash-0da0f4e3 (the harness's check, not the reader, was wrong): a number past a
    /// Double's range is valid JSON that Foundation refuses; Heard reads it, and a field that
    /// wants a number refuses it by name.
    func testANumberPastADoublesRangeIsReadAndRefusedByTheField() throws {
        XCTAssertEqual(try JSONValue.parse(Array("20154E555555555".utf8)), .number("20154E555555555"))
        var fields = try FieldReader(body: Array(#"{"score":20154E555555555}"#.utf8))
        XCTAssertNil(fields.integer("score", in: 1...5))
        XCTAssertThrowsError(try fields.finish()) { error in
            XCTAssertEqual((error as? HTTPError)?.errors.map(\.field), ["score"])
        }
    }
}

import Foundation
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
}

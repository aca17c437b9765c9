import HTTPServer
import HeardAPI
import XCTest

/// The strict JSON reader every body goes through.
final class JSONValueTests: XCTestCase {
    func testALargeObjectParsesAndADuplicateKeyAnywhereIsRefused() throws {
        // Up to 16 keys are checked against the list, beyond it against a set kept in place
        // (a copy per key made parsing 40,000 keys take 9 s: a body could hold a core).
        let keys = (0..<50_000).map { "\"k\($0)\":\($0)" }
        guard case .object(let members) = try JSONValue.parse(Array(("{" + keys.joined(separator: ",") + "}").utf8)) else {
            return XCTFail("not an object")
        }
        XCTAssertEqual(members.count, 50_000)
        XCTAssertEqual(members.last?.value, .number("49999"))
        for duplicate in ["k3", "k15", "k16", "k49999"] {
            let body = "{" + keys.joined(separator: ",") + ",\"\(duplicate)\":0}"
            XCTAssertThrowsError(try JSONValue.parse(Array(body.utf8))) { error in
                XCTAssertTrue((error as? HTTPError)?.detail.contains("duplicate key \"\(duplicate)\"") == true, "\(error)")
            }
        }
    }

    func testStringsAreReadWhateverTheirBytes() throws {
        XCTAssertEqual(try JSONValue.parse(Array(#"["plain","Siân \"q\" \u00e2\n","👍🏽"]"#.utf8)),
                       .array([.string("plain"), .string("Siân \"q\" â\n"), .string("👍🏽")]))
        for invalid: [UInt8] in [[0x22, 0xC3, 0x22], [0x22, 0x5C, 0x6E, 0xFF, 0x22], [0x22, 0x61, 0xED, 0xA0, 0x80, 0x22]] {
            XCTAssertThrowsError(try JSONValue.parse(invalid), "\(invalid) is not UTF-8")
        }
    }
}

import Foundation
import Postgres
import XCTest

final class UUIDTextTests: XCTestCase {
    func testTextMatchesFoundationAndRoundTrips() {
        for _ in 0..<1000 {
            let id = UUID()
            XCTAssertEqual(id.lowercased, id.uuidString.lowercased())
            XCTAssertEqual(UUID(canonicalText: id.lowercased), id)
            XCTAssertEqual(UUID(canonicalText: id.uuidString), id, "upper case is read too")
        }
    }

    func testAnythingButTheCanonicalFormIsRefused() {
        let good = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
        XCTAssertNotNil(UUID(canonicalText: good))
        for bad in ["", good.replacingOccurrences(of: "-", with: ""), "{\(good)}", String(good.dropLast()), good + "0",
                    good.replacingOccurrences(of: "6f", with: "6g"), good.replacingOccurrences(of: "-4d", with: "x4d"),
                    "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4ü"] {
            XCTAssertNil(UUID(canonicalText: bad), bad)
        }
    }
}

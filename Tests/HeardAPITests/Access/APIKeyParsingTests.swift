import Foundation
@testable import HeardAPI
import XCTest

/// The key a client sends is read byte by byte: what `APIKeySecret.text` writes is read back,
/// and nothing else shaped almost like it is taken for a key.
final class APIKeyParsingTests: XCTestCase {
    func testAKeyIsReadBackAsItWasWritten() throws {
        for _ in 0..<100 {
            let key = APIKeySecret.generate()
            let read = try XCTUnwrap(APIKeySecret(text: key.text), key.text)
            XCTAssertEqual(read.id, key.id)
            XCTAssertEqual(read.secret, key.secret)
        }
    }

    func testTextShapedAlmostLikeAKeyIsRefused() {
        let key = APIKeySecret.generate().text
        let hex = String(key.dropFirst(6).prefix(32)), secret = String(key.suffix(43))
        var refused: [String] = ["", "heard_", String(key.dropLast()), key + "A"]
        refused.append("Heard_" + String(key.dropFirst(6)))                       // the prefix, exactly
        refused.append("heard_" + hex.uppercased() + "_" + secret)                // hex in lower case only
        refused.append("heard_" + String(hex.dropLast()) + "g_" + secret)         // hex digits only
        refused.append("heard_" + hex + "-" + secret)                             // the separator
        refused.append("heard_" + hex + "_" + String(secret.dropLast()) + "=")    // base64url, unpadded
        refused.append("heard_" + hex + "_" + String(secret.dropLast()) + "+")
        refused.append("heard_" + hex + "_" + String(secret.dropLast(2)) + "é")   // two bytes: the same length in bytes
        for text in refused {
            XCTAssertNil(APIKeySecret(text: text), "refused: \(text)")
        }
    }

    func testAnIdWrittenWithoutDashesIsTheSameUUID() {
        let id = UUID()
        XCTAssertEqual(UUID(hexDigits: id.lowercased.replacingOccurrences(of: "-", with: "")), id)
        XCTAssertNil(UUID(hexDigits: String(repeating: "0", count: 31)))
        XCTAssertNil(UUID(hexDigits: String(repeating: "0", count: 31) + "G"))
    }
}

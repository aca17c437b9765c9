import Foundation
@testable import HeardAPI
import XCTest

final class RFC3339Tests: XCTestCase {
    func testParsesWhatFoundationParsesToTheSameInstant() {
        let foundation = ISO8601DateFormatter()
        foundation.formatOptions = [.withInternetDateTime]
        for text in ["2026-11-22T09:30:00Z", "2026-11-22T09:30:00+01:00", "2026-03-29T00:59:59-05:30", "2000-02-29T23:59:59Z",
                     "1970-01-01T00:00:00Z", "2099-12-31T23:59:59z", "1969-07-20T20:17:40Z"] {
            XCTAssertEqual(RFC3339.parse(text), foundation.date(from: text), text)
        }
        XCTAssertEqual(RFC3339.parse("2026-11-22T09:30:00.123456Z")?.timeIntervalSince1970 ?? 0,
                       (RFC3339.parse("2026-11-22T09:30:00Z")?.timeIntervalSince1970 ?? 0) + 0.123456, accuracy: 1e-6)
    }

    func testRefusesWhatIsNotAFullDateTimeWithAZone() {
        for text in ["2026-11-22", "2026-11-22T09:30:00", "2026-11-22 09:30:00Z", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
                     "2026-11-31T00:00:00Z", "2026-11-22T24:00:00Z", "2026-11-22T09:60:00Z", "2026-11-22T09:30:00.Z",
                     "2026-11-22T09:30:00+0100", "2026-11-22T09:30:00Zjunk", "yesterday", "", "२०२६-11-22T09:30:00Z",
                     "0000-01-01T00:00:00Z"] {
            XCTAssertNil(RFC3339.parse(text), text)
        }
    }

    func testFormatRoundTrips() {
        for seconds in [0.0, 1_795_000_000.5, -86_400.25, 4_102_444_799.999] {
            let date = Date(timeIntervalSince1970: seconds)
            XCTAssertEqual(RFC3339.parse(RFC3339.format(date))?.timeIntervalSince1970 ?? .nan, seconds, accuracy: 0.001, RFC3339.format(date))
        }
        XCTAssertEqual(RFC3339.format(Date(timeIntervalSince1970: 0)), "1970-01-01T00:00:00.000Z")
    }
}

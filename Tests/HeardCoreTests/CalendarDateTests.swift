import Foundation
import HeardCore
import XCTest

final class CalendarDateTests: XCTestCase {
    func testCalendarDate() throws {
        let date = try XCTUnwrap(CalendarDate("2024-02-29"))
        XCTAssertEqual(date.description, "2024-02-29")
        XCTAssertNil(CalendarDate("2023-02-29"))
        XCTAssertNil(CalendarDate("2023-2-28"))
        XCTAssertNil(CalendarDate("2023-02-28T00:00"))
        XCTAssertNil(CalendarDate("२०२३-02-28"))
        XCTAssertEqual(date.adding(days: 1).description, "2024-03-01")
        XCTAssertEqual(CalendarDate("1970-01-01")?.daysSince1970, 0)
        XCTAssertEqual(CalendarDate("0001-01-01")?.adding(days: -5).description, "0001-01-01")
        XCTAssertEqual(CalendarDate(utcDayOf: Date(timeIntervalSince1970: 86_400 * 365 - 1)).description, "1970-12-31")
        XCTAssertLessThan(try XCTUnwrap(CalendarDate("2023-12-31")), date)
        let json = try JSONEncoder().encode([date])
        XCTAssertEqual(String(decoding: json, as: UTF8.self), #"["2024-02-29"]"#)
        XCTAssertEqual(try JSONDecoder().decode([CalendarDate].self, from: json), [date])
        XCTAssertThrowsError(try JSONDecoder().decode([CalendarDate].self, from: Data(#"["2024-13-01"]"#.utf8)))
    }

    func testTimestampText() throws {
        let date = Date(timeIntervalSince1970: 1_763_803_800.123456)
        XCTAssertEqual(Timestamp.format(date), "2025-11-22T09:30:00.123456Z")
        XCTAssertEqual(Timestamp.format(Date(timeIntervalSince1970: -0.5)), "1969-12-31T23:59:59.500000Z")
        let parsed = try XCTUnwrap(Timestamp.parse("2025-11-22 09:30:00.123456+00"))
        XCTAssertEqual(Timestamp.format(parsed), "2025-11-22T09:30:00.123456Z")
        XCTAssertEqual(Timestamp.parse("2025-11-22 10:30:00+01")?.timeIntervalSince1970, 1_763_803_800)
        XCTAssertEqual(Timestamp.parse("2025-11-22 04:00:00-05:30")?.timeIntervalSince1970, 1_763_803_800)
        XCTAssertNil(Timestamp.parse("2025-11-22"))
        XCTAssertNil(Timestamp.parse("2025-11-22 25:00:00"))
    }
}

import Foundation
@testable import HeardAPI
import Postgres
import XCTest

final class WorkingDayCalendarTests: XCTestCase {
    private let england = WorkingDayCalendar()

    // MARK: Bank holidays

    /// GOV.UK's lists for England and Wales, 2018 to 2027.
    func testBankHolidaysMatchTheOfficialListsFor2018To2027() {
        let official: [Int: [String]] = [
            2018: ["01-01", "03-30", "04-02", "05-07", "05-28", "08-27", "12-25", "12-26"],
            2019: ["01-01", "04-19", "04-22", "05-06", "05-27", "08-26", "12-25", "12-26"],
            2020: ["01-01", "04-10", "04-13", "05-08", "05-25", "08-31", "12-25", "12-28"],
            2021: ["01-01", "04-02", "04-05", "05-03", "05-31", "08-30", "12-27", "12-28"],
            2022: ["01-03", "04-15", "04-18", "05-02", "06-02", "06-03", "08-29", "09-19", "12-26", "12-27"],
            2023: ["01-02", "04-07", "04-10", "05-01", "05-08", "05-29", "08-28", "12-25", "12-26"],
            2024: ["01-01", "03-29", "04-01", "05-06", "05-27", "08-26", "12-25", "12-26"],
            2025: ["01-01", "04-18", "04-21", "05-05", "05-26", "08-25", "12-25", "12-26"],
            2026: ["01-01", "04-03", "04-06", "05-04", "05-25", "08-31", "12-25", "12-28"],
            2027: ["01-01", "03-26", "03-29", "05-03", "05-31", "08-30", "12-27", "12-28"],
        ]
        for (year, days) in official {
            XCTAssertEqual(WorkingDayCalendar.bankHolidays(in: year).map(\.date.description),
                           days.map { "\(year)-\($0)" }, "\(year)")
        }
    }

    func testOneOffAndMovedDaysBefore2018() {
        XCTAssertEqual(holidays(1995), ["1995-01-02", "1995-04-14", "1995-04-17", "1995-05-08", "1995-05-29",
                                        "1995-08-28", "1995-12-25", "1995-12-26"])
        XCTAssertEqual(holidays(1999).suffix(3), ["1999-12-27", "1999-12-28", "1999-12-31"])
        XCTAssertEqual(holidays(2000).first, "2000-01-03")
        XCTAssertTrue(holidays(2002).contains("2002-06-03") && holidays(2002).contains("2002-06-04"))
        XCTAssertFalse(holidays(2002).contains("2002-05-27"))
        XCTAssertTrue(holidays(2011).contains("2011-04-29"))
        XCTAssertTrue(holidays(2012).contains("2012-06-04") && holidays(2012).contains("2012-06-05"))
        XCTAssertFalse(holidays(2012).contains("2012-05-28"))
    }

    func testNames() {
        let names = { (year: Int) in Dictionary(uniqueKeysWithValues: WorkingDayCalendar.bankHolidays(in: year).map { ($0.date.description, $0.name) }) }
        let y2026 = names(2026)
        XCTAssertEqual(y2026["2026-01-01"], "New Year's Day")
        XCTAssertEqual(y2026["2026-04-03"], "Good Friday")
        XCTAssertEqual(y2026["2026-04-06"], "Easter Monday")
        XCTAssertEqual(y2026["2026-05-04"], "Early May bank holiday")
        XCTAssertEqual(y2026["2026-05-25"], "Spring bank holiday")
        XCTAssertEqual(y2026["2026-08-31"], "Summer bank holiday")
        XCTAssertEqual(y2026["2026-12-25"], "Christmas Day")
        XCTAssertEqual(y2026["2026-12-28"], "Boxing Day (substitute day)")
        XCTAssertEqual(names(2020)["2020-05-08"], "Early May bank holiday (VE day)")
        XCTAssertEqual(names(2022)["2022-09-19"], "Bank holiday for the State Funeral of Queen Elizabeth II")
        XCTAssertEqual(names(2023)["2023-05-08"], "Bank holiday for the coronation of King Charles III")
    }

    func testEasterSunday() {
        let cases: [Int: String] = [
            2018: "2018-04-01", 2019: "2019-04-21", 2024: "2024-03-31", 2025: "2025-04-20",
            2026: "2026-04-05", 2038: "2038-04-25", 1943: "1943-04-25", 2285: "2285-03-22", 2000: "2000-04-23",
        ]
        for (year, easter) in cases {
            XCTAssertEqual(EnglandBankHolidays.easterSunday(in: year)?.description, easter)
        }
        XCTAssertEqual(holidays(2038).filter { $0.hasPrefix("2038-04") }, ["2038-04-23", "2038-04-26"])
    }

    func testChristmasAndNewYearSubstituteDays() {
        // Christmas on Saturday: Monday 27th and Tuesday 28th.
        for year in [2021, 2027] {
            let december = WorkingDayCalendar.bankHolidays(in: year).filter { $0.date.month == 12 }
            XCTAssertEqual(december.map(\.date.description), ["\(year)-12-27", "\(year)-12-28"])
            XCTAssertEqual(december.map(\.name), ["Christmas Day (substitute day)", "Boxing Day (substitute day)"])
        }
        // Christmas on Sunday: Boxing Day Monday 26th, Christmas substitute Tuesday 27th.
        let december2022 = WorkingDayCalendar.bankHolidays(in: 2022).filter { $0.date.month == 12 }
        XCTAssertEqual(december2022.map(\.date.description), ["2022-12-26", "2022-12-27"])
        XCTAssertEqual(december2022.map(\.name), ["Boxing Day", "Christmas Day (substitute day)"])
        // Boxing Day on Saturday: Monday 28th.
        XCTAssertEqual(holidays(2020).suffix(2), ["2020-12-25", "2020-12-28"])
        // New Year's Day on Saturday (2022) and Sunday (2023).
        XCTAssertEqual(WorkingDayCalendar.bankHolidays(in: 2022).first?.date.description, "2022-01-03")
        XCTAssertEqual(WorkingDayCalendar.bankHolidays(in: 2022).first?.name, "New Year's Day (substitute day)")
        XCTAssertEqual(WorkingDayCalendar.bankHolidays(in: 2023).first?.date.description, "2023-01-02")
        XCTAssertEqual(england.reasonNotWorking(date("2022-12-25")), "Sunday")
        XCTAssertEqual(england.reasonNotWorking(date("2022-12-27")), "Christmas Day (substitute day)")
    }

    func testEveryYearsHolidaysAreDistinctSortedWeekdays() {
        for year in 1978...2200 {
            let days = WorkingDayCalendar.bankHolidays(in: year).map(\.date)
            XCTAssertGreaterThanOrEqual(days.count, 8, "\(year)")
            XCTAssertEqual(days, days.sorted(), "\(year)")
            XCTAssertEqual(Set(days).count, days.count, "\(year)")
            XCTAssertTrue(days.allSatisfy { !$0.isWeekend && $0.year == year }, "\(year)")
        }
        XCTAssertEqual(WorkingDayCalendar.bankHolidays(in: 0).count, 0)
        XCTAssertEqual(WorkingDayCalendar.bankHolidays(in: 10_000).count, 0)
    }

    func testWeekdays() {
        XCTAssertEqual(date("1970-01-01").isoWeekday, 4)
        XCTAssertEqual(date("1969-12-28").isoWeekday, 7)
        XCTAssertEqual(date("0001-01-01").isoWeekday, 1)
        XCTAssertEqual(date("2000-01-01").isoWeekday, 6)
        XCTAssertEqual(date("2026-04-03").weekdayName, "Friday")
        XCTAssertEqual(date("2026-04-05").weekdayName, "Sunday")
    }

    // MARK: Single days

    func testReasonNotWorking() {
        let calendar = WorkingDayCalendar(closureDays: [date("2026-12-29"), date("2026-12-26")])
        XCTAssertNil(calendar.reasonNotWorking(date("2026-04-02")))
        XCTAssertTrue(calendar.isWorkingDay(date("2026-04-02")))
        XCTAssertEqual(calendar.reasonNotWorking(date("2026-04-04")), "Saturday")
        XCTAssertEqual(calendar.reasonNotWorking(date("2026-04-05")), "Sunday")
        XCTAssertEqual(calendar.reasonNotWorking(date("2026-04-03")), "Good Friday")
        XCTAssertEqual(calendar.reasonNotWorking(date("2026-12-29")), "closure day")
        XCTAssertEqual(calendar.reasonNotWorking(date("2026-12-26")), "Saturday")
        XCTAssertFalse(calendar.isWorkingDay(date("2026-12-29")))
        XCTAssertTrue(england.isWorkingDay(date("2026-12-29")))
    }

    // MARK: Adding working days

    func testAddingAcrossAWeekend() {
        XCTAssertEqual(england.adding(workingDays: 1, to: date("2026-03-06")), date("2026-03-09"))  // Fri → Mon
        XCTAssertEqual(england.adding(workingDays: 2, to: date("2026-03-05")), date("2026-03-09"))  // Thu → Mon
        XCTAssertEqual(england.adding(workingDays: 1, to: date("2026-03-07")), date("2026-03-09"))  // Sat → Mon
        XCTAssertEqual(england.adding(workingDays: 10, to: date("2026-03-02")), date("2026-03-16")) // stage 1
        XCTAssertEqual(england.adding(workingDays: 10, to: date("2026-03-07")), date("2026-03-20"))
    }

    func testAddingZeroWorkingDays() {
        XCTAssertEqual(england.adding(workingDays: 0, to: date("2026-03-04")), date("2026-03-04"))
        XCTAssertEqual(england.adding(workingDays: 0, to: date("2026-03-07")), date("2026-03-09"))
        XCTAssertEqual(england.adding(workingDays: 0, to: date("2026-04-03")), date("2026-04-07"))
    }

    func testAddingAcrossEaster() {
        XCTAssertEqual(england.adding(workingDays: 1, to: date("2026-04-02")), date("2026-04-07"))
        XCTAssertEqual(england.adding(workingDays: 10, to: date("2026-04-01")), date("2026-04-17"))
        XCTAssertEqual(england.adding(workingDays: 1, to: date("2027-03-25")), date("2027-03-30"))
    }

    func testAddingAcrossChristmasAndNewYear() {
        XCTAssertEqual(england.adding(workingDays: 1, to: date("2026-12-24")), date("2026-12-29"))
        XCTAssertEqual(england.adding(workingDays: 5, to: date("2026-12-23")), date("2027-01-04"))
        XCTAssertEqual(england.adding(workingDays: 1, to: date("2021-12-24")), date("2021-12-29"))
        XCTAssertEqual(england.adding(workingDays: 3, to: date("2022-12-23")), date("2022-12-30"))
        XCTAssertEqual(england.adding(workingDays: 4, to: date("2022-12-23")), date("2023-01-03"))
    }

    func testAddingWithTenantClosureDays() {
        let shutdown = WorkingDayCalendar(closureDays: [date("2026-12-29"), date("2026-12-30"), date("2026-12-31")])
        XCTAssertEqual(shutdown.adding(workingDays: 5, to: date("2026-12-23")), date("2027-01-07"))
        XCTAssertEqual(shutdown.adding(workingDays: 1, to: date("2026-12-24")), date("2027-01-04"))
        XCTAssertEqual(shutdown.adding(workingDays: 0, to: date("2026-12-29")), date("2027-01-04"))
    }

    // MARK: Counting working days

    func testWorkingDaysBetweenDates() {
        XCTAssertEqual(england.workingDays(from: date("2026-03-06"), to: date("2026-03-09")), 1)
        XCTAssertEqual(england.workingDays(from: date("2026-03-06"), to: date("2026-03-08")), 0)
        XCTAssertEqual(england.workingDays(from: date("2026-03-06"), to: date("2026-03-06")), 0)
        XCTAssertEqual(england.workingDays(from: date("2026-03-09"), to: date("2026-03-06")), 0)
        XCTAssertEqual(england.workingDays(from: date("2026-04-01"), to: date("2026-04-17")), 10)
        XCTAssertEqual(england.workingDays(from: date("2025-12-31"), to: date("2026-12-31")), 253)  // 261 weekdays, 8 holidays
    }

    func testWorkingDaysMatchesACountDayByDay() {
        let calendar = WorkingDayCalendar(closureDays: [date("2024-12-27"), date("2024-12-28"), date("2026-06-01"), date("2026-04-03")])
        var start = date("2017-12-20")
        while start < date("2028-01-10") {
            for length in [0, 1, 3, 9, 40, 400] {
                let end = start.adding(days: length)
                var count = 0
                var day = start
                while day < end {
                    day = day.adding(days: 1)
                    if calendar.isWorkingDay(day) { count += 1 }
                }
                XCTAssertEqual(calendar.workingDays(from: start, to: end), count, "\(start) → \(end)")
            }
            start = start.adding(days: 5)
        }
    }

    func testWorkingDaysInvertsAdding() {
        let calendar = WorkingDayCalendar(closureDays: [date("2026-12-29"), date("2026-12-30"), date("2026-12-31"), date("2019-08-27")])
        var start = date("2017-12-01")
        while start < date("2028-01-31") {
            for n in [0, 1, 2, 3, 4, 5, 6, 9, 10, 15, 20, 25, 30, 65] {
                if n == 0 && !calendar.isWorkingDay(start) { continue }
                let due = calendar.adding(workingDays: n, to: start)
                XCTAssertTrue(calendar.isWorkingDay(due), "\(start) + \(n)")
                XCTAssertEqual(calendar.workingDays(from: start, to: due), n, "\(start) + \(n)")
                if n > 0 {
                    XCTAssertEqual(calendar.workingDays(from: start, to: due.adding(days: -1)), n - 1, "\(start) + \(n)")
                }
            }
            start = start.adding(days: 1)
        }
    }

    // MARK: Suspensions

    func testSuspendedDaysDoNotCount() {
        let received = date("2026-03-02")  // Monday
        let advocate = date("2026-03-04")...date("2026-03-10")  // 5 working days
        XCTAssertEqual(england.adding(workingDays: 10, to: received, skipping: [advocate]), date("2026-03-23"))
        XCTAssertEqual(england.adding(workingDays: 10, to: received, skipping: []), england.adding(workingDays: 10, to: received))
        // Overlapping suspensions count once.
        XCTAssertEqual(england.adding(workingDays: 10, to: received,
                                      skipping: [advocate, date("2026-03-09")...date("2026-03-11")]), date("2026-03-24"))
        // A suspension before the start changes nothing; one covering the start delays day 1.
        XCTAssertEqual(england.adding(workingDays: 10, to: received, skipping: [date("2026-02-01")...date("2026-03-02")]),
                       date("2026-03-16"))
        XCTAssertEqual(england.adding(workingDays: 1, to: received, skipping: [date("2026-03-01")...date("2026-03-03")]),
                       date("2026-03-04"))
        // Suspension over Easter: holidays and suspension do not double-count.
        XCTAssertEqual(england.adding(workingDays: 1, to: date("2026-04-01"), skipping: [date("2026-04-02")...date("2026-04-07")]),
                       date("2026-04-08"))
        // n == 0 on a suspended day: the next day that counts.
        XCTAssertEqual(england.adding(workingDays: 0, to: date("2026-03-04"), skipping: [advocate]), date("2026-03-11"))
    }

    // MARK: Instants

    func testSafeguardingOverdueAcrossAWeekend() {
        // Friday 2026-01-09 14:00 GMT; one working day: due by the end of Monday 12th.
        let raised = utc("2026-01-09", hour: 14)
        XCTAssertEqual(england.deadline(afterWorkingDays: 1, from: raised), utc("2026-01-13", hour: 0))
        XCTAssertFalse(england.isOverdue(raisedAt: raised, workingDays: 1, now: utc("2026-01-12", hour: 23, minute: 59)))
        XCTAssertFalse(england.isOverdue(raisedAt: raised, workingDays: 1, now: utc("2026-01-13", hour: 0).addingTimeInterval(-1)))
        XCTAssertTrue(england.isOverdue(raisedAt: raised, workingDays: 1, now: utc("2026-01-13", hour: 0)))

        // The same in summer: Friday 2026-06-12 14:00 BST; Tuesday 00:00 BST is Monday 23:00 UTC.
        let summer = utc("2026-06-12", hour: 13)
        XCTAssertEqual(england.deadline(afterWorkingDays: 1, from: summer), utc("2026-06-15", hour: 23))
        XCTAssertFalse(england.isOverdue(raisedAt: summer, workingDays: 1, now: utc("2026-06-15", hour: 22, minute: 59)))
        XCTAssertTrue(england.isOverdue(raisedAt: summer, workingDays: 1, now: utc("2026-06-15", hour: 23)))
    }

    func testSafeguardingOverdueAcrossEaster() {
        // Thursday 2026-04-02 16:00 BST: Good Friday, the weekend and Easter Monday are skipped;
        // due by the end of Tuesday 7 April, 00:00 BST Wednesday = 23:00 UTC Tuesday.
        let raised = utc("2026-04-02", hour: 15)
        XCTAssertEqual(england.deadline(afterWorkingDays: 1, from: raised), utc("2026-04-07", hour: 23))
        XCTAssertFalse(england.isOverdue(raisedAt: raised, workingDays: 1, now: utc("2026-04-06", hour: 12)))
        XCTAssertFalse(england.isOverdue(raisedAt: raised, workingDays: 1, now: utc("2026-04-07", hour: 22, minute: 59)))
        XCTAssertTrue(england.isOverdue(raisedAt: raised, workingDays: 1, now: utc("2026-04-07", hour: 23)))
    }

    func testSafeguardingOverdueAcrossClockChanges() {
        // Clocks go forward on Sunday 2026-03-29. Raised Friday 27th 14:00 GMT: due by the end of
        // Monday 30th, which is 00:00 BST Tuesday = 23:00 UTC Monday.
        let spring = utc("2026-03-27", hour: 14)
        XCTAssertEqual(england.deadline(afterWorkingDays: 1, from: spring), utc("2026-03-30", hour: 23))
        XCTAssertFalse(england.isOverdue(raisedAt: spring, workingDays: 1, now: utc("2026-03-30", hour: 22, minute: 59)))
        XCTAssertTrue(england.isOverdue(raisedAt: spring, workingDays: 1, now: utc("2026-03-30", hour: 23)))

        // Clocks go back on Sunday 2026-10-25. Raised 00:30 BST on Friday 23rd (23:30 UTC
        // Thursday): the local day is Friday, so due by the end of Monday 26th, 00:00 GMT Tuesday.
        let autumn = utc("2026-10-22", hour: 23, minute: 30)
        XCTAssertEqual(WorkingDayCalendar.localDay(of: autumn), date("2026-10-23"))
        XCTAssertEqual(england.deadline(afterWorkingDays: 1, from: autumn), utc("2026-10-27", hour: 0))
        XCTAssertFalse(england.isOverdue(raisedAt: autumn, workingDays: 1, now: utc("2026-10-26", hour: 23, minute: 59)))
        XCTAssertTrue(england.isOverdue(raisedAt: autumn, workingDays: 1, now: utc("2026-10-27", hour: 0)))

        // Raised on the Friday before the change in BST; due end of Friday (n = 0): 23:00 UTC.
        XCTAssertEqual(england.deadline(afterWorkingDays: 0, from: utc("2026-10-23", hour: 9)), utc("2026-10-23", hour: 23))
        // Raised on Saturday 24th with n = 0: due by the end of Monday, in GMT.
        XCTAssertEqual(england.deadline(afterWorkingDays: 0, from: utc("2026-10-24", hour: 9)), utc("2026-10-27", hour: 0))
    }

    func testLocalMidnights() {
        XCTAssertEqual(WorkingDayCalendar.startOfLocalDay(date("2026-03-29")), utc("2026-03-29", hour: 0))
        XCTAssertEqual(WorkingDayCalendar.startOfLocalDay(date("2026-03-30")), utc("2026-03-29", hour: 23))
        XCTAssertEqual(WorkingDayCalendar.startOfLocalDay(date("2026-10-25")), utc("2026-10-24", hour: 23))
        XCTAssertEqual(WorkingDayCalendar.startOfLocalDay(date("2026-10-26")), utc("2026-10-26", hour: 0))
        XCTAssertEqual(WorkingDayCalendar.localDay(of: utc("2026-07-01", hour: 22, minute: 59)), date("2026-07-01"))
        XCTAssertEqual(WorkingDayCalendar.localDay(of: utc("2026-07-01", hour: 23)), date("2026-07-02"))
        XCTAssertEqual(WorkingDayCalendar.localDay(of: utc("2026-12-01", hour: 23, minute: 59)), date("2026-12-01"))
    }

    /// The fallback rule (used without a time zone database) agrees with Foundation's.
    func testSummerTimeRuleAgreesWithTheTimeZoneDatabase() throws {
        try XCTSkipIf(EnglandTime.foundationCalendar == nil, "no time zone database")
        var day = date("1997-01-01")
        while day < date("2040-01-01") {
            XCTAssertEqual(EnglandTime.ruleStartOfDay(day), EnglandTime.startOfDay(day), "\(day)")
            for hour in [0, 22, 23] {
                let instant = day.startOfDayUTC.addingTimeInterval(Double(hour * 3_600 + 1_800))
                XCTAssertEqual(EnglandTime.ruleLocalDay(of: instant), EnglandTime.localDay(of: instant), "\(instant)")
            }
            day = day.adding(days: 1)
        }
    }

    // MARK: Helpers

    private func date(_ iso: String) -> CalendarDate {
        guard let date = CalendarDate(iso) else { preconditionFailure("bad date \(iso)") }
        return date
    }

    private func utc(_ iso: String, hour: Int, minute: Int = 0) -> Date {
        date(iso).startOfDayUTC.addingTimeInterval(Double(hour * 3_600 + minute * 60))
    }

    private func holidays(_ year: Int) -> [String] {
        WorkingDayCalendar.bankHolidays(in: year).map(\.date.description)
    }
}

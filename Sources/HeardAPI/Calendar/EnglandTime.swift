import Foundation
import Postgres

/// Civil time in England (Europe/London: GMT in winter, BST, UTC+1, in summer).
///
/// Uses the system's time zone database through Foundation. Where that database is missing
/// (a minimal container without tzdata), it falls back to the rule in force since 1996: BST from
/// 01:00 UTC on the last Sunday in March to 01:00 UTC on the last Sunday in October.
enum EnglandTime {
    /// A Gregorian calendar in Europe/London, or nil without a time zone database.
    static let foundationCalendar: Calendar? = {
        guard let zone = TimeZone(identifier: "Europe/London") else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        return calendar
    }()

    /// The day in England containing `instant`.
    static func localDay(of instant: Date) -> CalendarDate {
        if let calendar = foundationCalendar {
            let parts = calendar.dateComponents([.year, .month, .day], from: instant)
            if let year = parts.year, let month = parts.month, let day = parts.day,
               let date = CalendarDate(year: year, month: month, day: day) {
                return date
            }
        }
        return ruleLocalDay(of: instant)
    }

    /// The instant at which `date` begins in England (local midnight). Clocks change at 01:00
    /// UTC, so local midnight always exists and is unique.
    static func startOfDay(_ date: CalendarDate) -> Date {
        if let calendar = foundationCalendar,
           let start = calendar.date(from: DateComponents(year: date.year, month: date.month, day: date.day)) {
            return start
        }
        return ruleStartOfDay(date)
    }

    // MARK: The fallback rule

    /// Whether BST is in force at `instant`, by the post-1996 rule.
    static func ruleIsSummerTime(at instant: Date) -> Bool {
        let year = CalendarDate(utcDayOf: instant).year
        let begins = EnglandBankHolidays.lastSunday(year: year, month: 3).startOfDayUTC.addingTimeInterval(3_600)
        let ends = EnglandBankHolidays.lastSunday(year: year, month: 10).startOfDayUTC.addingTimeInterval(3_600)
        return instant >= begins && instant < ends
    }

    static func ruleLocalDay(of instant: Date) -> CalendarDate {
        CalendarDate(utcDayOf: instant.addingTimeInterval(ruleIsSummerTime(at: instant) ? 3_600 : 0))
    }

    static func ruleStartOfDay(_ date: CalendarDate) -> Date {
        // Midnight local is 23:00 UTC the day before during BST; the change happens at 01:00
        // UTC, so whether BST applies at midnight is decided by 23:00 UTC the previous day.
        let summerCandidate = date.startOfDayUTC.addingTimeInterval(-3_600)
        return ruleIsSummerTime(at: summerCandidate) ? summerCandidate : date.startOfDayUTC
    }
}

extension EnglandBankHolidays {
    /// The last Sunday of `month` (March or October), for the summer time rule.
    static func lastSunday(year: Int, month: Int) -> CalendarDate {
        let last = lastMonday(year: year, month: month).adding(days: 6)
        return last.month == month ? last : last.adding(days: -7)
    }
}

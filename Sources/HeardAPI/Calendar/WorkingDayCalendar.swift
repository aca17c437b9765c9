import Foundation
import Postgres

/// Working days in England, for statutory time limits (complaints, safeguarding).
///
/// A **working day** is a day that is not a Saturday or Sunday, not a bank holiday of England
/// and Wales (New Year's Day, Good Friday, Easter Monday, the early May, spring and summer bank
/// holidays, Christmas Day and Boxing Day, with substitute days, and one-off days), and not one
/// of the tenant's own closure days.
///
/// Bank holidays are computed by rule, so future years need no data; the one-off and moved days
/// known from 1995 to 2023 are built in. A future one-off bank holiday needs a code change;
/// until it ships, a tenant can add it to its closure days.
///
/// Counting convention, used throughout: the day something happens is **day 0** and is not
/// counted. A complaint received on day `D` is due `adding(workingDays: 10, to: D)`, the tenth
/// working day after `D`, whether or not `D` itself is a working day.
///
/// ```swift
/// let calendar = WorkingDayCalendar(closureDays: [CalendarDate("2026-12-29")!])
/// let due = calendar.adding(workingDays: 10, to: CalendarDate("2026-12-18")!)
/// ```
///
/// All methods are pure and cheap: bank holidays for 1970–2199 are computed once, on first
/// use, and other years on demand.
public struct WorkingDayCalendar: Sendable, Hashable {
    /// The tenant's own non-working days (a shutdown between Christmas and New Year, say).
    public let closureDays: Set<CalendarDate>

    /// A calendar with England and Wales bank holidays and `closureDays` as extra
    /// non-working days.
    public init(closureDays: Set<CalendarDate> = []) {
        self.closureDays = closureDays
    }

    // MARK: Bank holidays

    /// The bank holidays of England and Wales in `year`, in date order, named as on GOV.UK
    /// ("Good Friday", "Boxing Day (substitute day)"); empty for years outside 1...9999.
    ///
    /// Computed by rule; the known one-off days (1999-12-31, 2002-06-03, 2011-04-29,
    /// 2012-06-05, 2022-06-03, 2022-09-19, 2023-05-08) and moved days (early May 1995 and 2020;
    /// spring 2002, 2012 and 2022) are included. Years before 1978 follow today's rules and are
    /// not historically exact.
    public static func bankHolidays(in year: Int) -> [(date: CalendarDate, name: String)] {
        EnglandBankHolidays.holidays(in: year)
    }

    // MARK: Single days

    /// Whether `date` is a working day: not a weekend, a bank holiday or a closure day.
    public func isWorkingDay(_ date: CalendarDate) -> Bool {
        !date.isWeekend && !closureDays.contains(date) && EnglandBankHolidays.name(on: date) == nil
    }

    /// Why `date` is not a working day: the bank holiday's name ("Good Friday"), the weekday
    /// ("Saturday", "Sunday") or "closure day", in that order of preference; nil on a working
    /// day.
    public func reasonNotWorking(_ date: CalendarDate) -> String? {
        if let name = EnglandBankHolidays.name(on: date) { return name }
        if date.isWeekend { return date.weekdayName }
        if closureDays.contains(date) { return "closure day" }
        return nil
    }

    // MARK: Counting

    /// The date `n` working days after `date`; `date` itself is never counted.
    ///
    /// - `n >= 1`: the `n`th working day strictly after `date` (a complaint received on a
    ///   Saturday and one received the Friday before have the same 1-working-day deadline: the
    ///   Monday).
    /// - `n == 0`: `date` if it is a working day, otherwise the next working day.
    ///
    /// - Precondition: `n >= 0`.
    public func adding(workingDays n: Int, to date: CalendarDate) -> CalendarDate {
        adding(workingDays: n, to: date, skipping: [])
    }

    /// The date `n` counted days after `start`, where a counted day is a working day that lies
    /// in none of `suspensions` (days on which the clock was stopped, both ends included, say
    /// while an advocate is appointed). Same convention as `adding(workingDays:to:)`: `start`
    /// is not counted, and `n == 0` gives `start` if it counts, otherwise the next day that
    /// does. Suspensions may overlap, lie partly before `start`, or be empty.
    ///
    /// - Precondition: `n >= 0`.
    public func adding(workingDays n: Int, to start: CalendarDate,
                       skipping suspensions: [ClosedRange<CalendarDate>]) -> CalendarDate {
        precondition(n >= 0, "adding(workingDays:) needs n >= 0, not \(n)")
        func counts(_ day: CalendarDate) -> Bool {
            isWorkingDay(day) && !suspensions.contains { $0.contains(day) }
        }
        var day = start
        if n == 0 {
            while !counts(day) {
                let next = day.adding(days: 1)
                if next == day { break }  // 9999-12-31: nowhere further to go
                day = next
            }
            return day
        }
        var counted = 0
        while counted < n {
            let next = day.adding(days: 1)
            if next == day { break }
            day = next
            if counts(day) { counted += 1 }
        }
        return day
    }

    /// The number of working days after `start` up to and including `end`; 0 when `end` is not
    /// after `start`.
    ///
    /// It inverts `adding(workingDays:to:)`: `workingDays(from: d, to: adding(workingDays: n,
    /// to: d)) == n` for every `n >= 1`, and for `n == 0` when `d` is a working day. To decide
    /// whether a response met a time limit, compare dates: on time means `responded <=
    /// adding(workingDays: 10, to: received)` (a Saturday response after a Friday deadline is
    /// late, although no working day separates them); use this for reporting elapsed time.
    public func workingDays(from start: CalendarDate, to end: CalendarDate) -> Int {
        guard start < end else { return 0 }
        let first = start.dayNumber, last = end.dayNumber
        var total = Self.weekdays(upTo: last) - Self.weekdays(upTo: first)
        // Weekday non-working days inside (start, end], each once.
        var excluded = Set<CalendarDate>()
        for year in start.year...end.year {
            for holiday in EnglandBankHolidays.holidays(in: year)
            where holiday.date > start && holiday.date <= end && !holiday.date.isWeekend {
                excluded.insert(holiday.date)
            }
        }
        for day in closureDays where day > start && day <= end && !day.isWeekend {
            excluded.insert(day)
        }
        total -= excluded.count
        return total
    }

    // MARK: Instants (England local time)

    /// The instant by which something raised at `instant` is due when it must be done within
    /// `n` working days: local midnight in England (Europe/London, so GMT or BST) at the end of
    /// the day `adding(workingDays: n, to: localDay)`, where `localDay` is the day in England
    /// containing `instant`.
    ///
    /// An alert raised at 14:00 on a Friday with `n == 1` is due by the end of Monday: the
    /// deadline is 00:00 on Tuesday, London time. With `n == 0` it is due by the end of the
    /// day it was raised (or of the next working day when raised on a non-working day).
    /// Closure days count as non-working here too.
    ///
    /// - Precondition: `n >= 0`.
    public func deadline(afterWorkingDays n: Int, from instant: Date) -> Date {
        let lastDay = adding(workingDays: n, to: EnglandTime.localDay(of: instant))
        return EnglandTime.startOfDay(lastDay.adding(days: 1))
    }

    /// Whether something raised at `raisedAt` and due within `n` working days is overdue at
    /// `now`: `now >= deadline(afterWorkingDays: n, from: raisedAt)`. At 23:59:59 on the last
    /// working day it is not yet overdue; at 00:00:00 the next day it is.
    ///
    /// - Precondition: `n >= 0`.
    public func isOverdue(raisedAt: Date, workingDays n: Int, now: Date) -> Bool {
        now >= deadline(afterWorkingDays: n, from: raisedAt)
    }

    /// The day in England (Europe/London) containing `instant`.
    public static func localDay(of instant: Date) -> CalendarDate {
        EnglandTime.localDay(of: instant)
    }

    /// The instant `date` begins in England: local midnight, 00:00 GMT or 23:00 UTC the day
    /// before during BST.
    public static func startOfLocalDay(_ date: CalendarDate) -> Date {
        EnglandTime.startOfDay(date)
    }

    // MARK: Internals

    /// Weekdays (Monday to Friday) from 1970-01-05, a Monday, up to day number `day` inclusive,
    /// as a running count that may be negative; only differences are meaningful.
    private static func weekdays(upTo day: Int) -> Int {
        let offset = day - 4  // 1970-01-05 is day 4
        let weeks = offset >= 0 ? offset / 7 : -((-offset + 6) / 7)
        let rest = offset - weeks * 7  // 0 (Monday) ... 6 (Sunday)
        return weeks * 5 + min(rest + 1, 5)
    }
}

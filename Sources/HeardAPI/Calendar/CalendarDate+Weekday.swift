import Foundation
import Postgres

extension CalendarDate {
    /// Days since 1970-01-01 (negative before it), computed from `startOfDayUTC`, which is a
    /// whole number of days' worth of seconds and so exact in a `Double`.
    var dayNumber: Int {
        Int((startOfDayUTC.timeIntervalSince1970 / 86_400).rounded(.down))
    }

    /// ISO 8601 day of the week: 1 is Monday, 7 is Sunday. 1970-01-01 was a Thursday (4).
    var isoWeekday: Int {
        let r = (dayNumber + 3) % 7
        return (r < 0 ? r + 7 : r) + 1
    }

    /// True on Saturday and Sunday.
    var isWeekend: Bool { isoWeekday >= 6 }

    /// "Monday" … "Sunday".
    var weekdayName: String {
        ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"][isoWeekday - 1]
    }
}

import Postgres

/// The bank holidays of England and Wales, by rule.
///
/// The rules are those in force since 1978 (when the early May bank holiday began); earlier
/// years are computed by the same rules and are not historically exact. Known one-off days and
/// moved holidays from 1995 on are listed in `oneOffDays` and `movedDays`; a future one-off day
/// (a jubilee, a state occasion) needs a code change here. Until it ships, a tenant can add the
/// day to its own closure days (`WorkingDayCalendar(closureDays:)`).
enum EnglandBankHolidays {
    /// Additional bank holidays proclaimed for one year only.
    static let oneOffDays: [(date: CalendarDate, name: String)] = [
        (day(1999, 12, 31), "Millennium Celebrations"),
        (day(2002, 6, 3), "Golden Jubilee bank holiday"),
        (day(2011, 4, 29), "Royal wedding"),
        (day(2012, 6, 5), "Queen's Diamond Jubilee"),
        (day(2022, 6, 3), "Platinum Jubilee bank holiday"),
        (day(2022, 9, 19), "Bank holiday for the State Funeral of Queen Elizabeth II"),
        (day(2023, 5, 8), "Bank holiday for the coronation of King Charles III"),
    ]

    /// Regular holidays moved by proclamation in a given year, keyed by year.
    static let earlyMayMoved: [Int: (date: CalendarDate, name: String)] = [
        1995: (day(1995, 5, 8), "Early May bank holiday (VE day)"),
        2020: (day(2020, 5, 8), "Early May bank holiday (VE day)"),
    ]
    static let springMoved: [Int: CalendarDate] = [
        2002: day(2002, 6, 4),
        2012: day(2012, 6, 4),
        2022: day(2022, 6, 2),
    ]

    /// Years whose holidays are computed once, on first use, and kept.
    static let cachedYears = 1970...2199
    private static let cache: [[(date: CalendarDate, name: String)]] = cachedYears.map(computeHolidays)
    private static let cachedNames: [CalendarDate: String] = Dictionary(
        cache.joined().map { ($0.date, $0.name) }, uniquingKeysWith: { first, _ in first })

    /// The year's bank holidays in date order; empty for years outside 1...9999.
    static func holidays(in year: Int) -> [(date: CalendarDate, name: String)] {
        cachedYears.contains(year) ? cache[year - cachedYears.lowerBound] : computeHolidays(in: year)
    }

    /// The name of the bank holiday on `date`, or nil when it is not one.
    static func name(on date: CalendarDate) -> String? {
        cachedYears.contains(date.year)
            ? cachedNames[date]
            : computeHolidays(in: date.year).first { $0.date == date }?.name
    }

    static func computeHolidays(in year: Int) -> [(date: CalendarDate, name: String)] {
        guard (1...9999).contains(year), let newYear = CalendarDate(year: year, month: 1, day: 1),
              let easter = easterSunday(in: year),
              let christmas = CalendarDate(year: year, month: 12, day: 25)
        else { return [] }
        var result: [(date: CalendarDate, name: String)] = []

        // New Year's Day: at a weekend, the following Monday instead.
        switch newYear.isoWeekday {
        case 6: result.append((newYear.adding(days: 2), "New Year's Day (substitute day)"))
        case 7: result.append((newYear.adding(days: 1), "New Year's Day (substitute day)"))
        default: result.append((newYear, "New Year's Day"))
        }

        result.append((easter.adding(days: -2), "Good Friday"))
        result.append((easter.adding(days: 1), "Easter Monday"))

        result.append(earlyMayMoved[year] ?? (firstMonday(year: year, month: 5), "Early May bank holiday"))
        result.append((springMoved[year] ?? lastMonday(year: year, month: 5), "Spring bank holiday"))
        result.append((lastMonday(year: year, month: 8), "Summer bank holiday"))

        // Christmas Day and Boxing Day: a holiday at a weekend moves to the next weekday that is
        // not already a holiday.
        switch christmas.isoWeekday {
        case 5: // Friday: Boxing Day is Saturday, substitute Monday 28th.
            result.append((christmas, "Christmas Day"))
            result.append((christmas.adding(days: 3), "Boxing Day (substitute day)"))
        case 6: // Saturday: Monday 27th for Christmas Day, Tuesday 28th for Boxing Day.
            result.append((christmas.adding(days: 2), "Christmas Day (substitute day)"))
            result.append((christmas.adding(days: 3), "Boxing Day (substitute day)"))
        case 7: // Sunday: Boxing Day is Monday 26th; Tuesday 27th stands for Christmas Day.
            result.append((christmas.adding(days: 1), "Boxing Day"))
            result.append((christmas.adding(days: 2), "Christmas Day (substitute day)"))
        default:
            result.append((christmas, "Christmas Day"))
            result.append((christmas.adding(days: 1), "Boxing Day"))
        }

        result += oneOffDays.filter { $0.date.year == year }
        return result.sorted { $0.date < $1.date }
    }

    /// Easter Sunday by the anonymous Gregorian algorithm (Meeus/Jones/Butcher).
    static func easterSunday(in year: Int) -> CalendarDate? {
        let a = year % 19
        let b = year / 100, c = year % 100
        let d = b / 4, e = b % 4
        let f = (b + 8) / 25
        let g = (b - f + 1) / 3
        let h = (19 * a + b - d - g + 15) % 30
        let i = c / 4, k = c % 4
        let l = (32 + 2 * e + 2 * i - h - k) % 7
        let m = (a + 11 * h + 22 * l) / 451
        let month = (h + l - 7 * m + 114) / 31
        let day = (h + l - 7 * m + 114) % 31 + 1
        return CalendarDate(year: year, month: month, day: day)
    }

    static func firstMonday(year: Int, month: Int) -> CalendarDate {
        let first = day(year, month, 1)
        return first.adding(days: (8 - first.isoWeekday) % 7)
    }

    static func lastMonday(year: Int, month: Int) -> CalendarDate {
        let nextFirst = month == 12 ? day(year + 1, 1, 1) : day(year, month + 1, 1)
        let last = nextFirst.adding(days: -1)
        return last.adding(days: -((last.isoWeekday + 6) % 7))
    }

    /// A date known to be valid.
    private static func day(_ year: Int, _ month: Int, _ day: Int) -> CalendarDate {
        guard let date = CalendarDate(year: year, month: month, day: day) else {
            preconditionFailure("invalid date \(year)-\(month)-\(day)")
        }
        return date
    }
}

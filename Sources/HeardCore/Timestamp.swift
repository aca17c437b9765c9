import Foundation

/// Formats and parses timestamps without DateFormatter (exact microseconds, no locale).
public enum Timestamp {
    public static func format(_ date: Date) -> String {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        let (days, microsOfDay) = floorDivide(micros, 86_400_000_000)
        let civil = CalendarDate(daysSince1970: Int(days))
        let seconds = microsOfDay / 1_000_000
        // yyyy-MM-ddTHH:mm:ss.ffffffZ, written digit by digit (a string per part cost more than the rest of a bind).
        var text = [UInt8](repeating: UInt8(ascii: "0"), count: 27)
        func put(_ value: Int64, at end: Int, width: Int) {
            var value = value
            for index in stride(from: end - 1, through: end - width, by: -1) {
                text[index] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
            }
        }
        put(Int64(civil.year), at: 4, width: 4)
        put(Int64(civil.month), at: 7, width: 2)
        put(Int64(civil.day), at: 10, width: 2)
        put(seconds / 3600, at: 13, width: 2)
        put(seconds / 60 % 60, at: 16, width: 2)
        put(seconds % 60, at: 19, width: 2)
        put(microsOfDay % 1_000_000, at: 26, width: 6)
        for (index, separator) in [(4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"), (19, "."), (26, "Z")] as [(Int, Unicode.Scalar)] {
            text[index] = UInt8(ascii: separator)
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Parses `YYYY-MM-DD[ T]HH:MM:SS[.ffffff][Z|±HH[:MM[:SS]]]`.
    public static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 19,
              let date = CalendarDate(isoBytes: bytes[0..<10]),
              bytes[10] == UInt8(ascii: " ") || bytes[10] == UInt8(ascii: "T"),
              bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
              let hour = number(bytes[11..<13]), let minute = number(bytes[14..<16]),
              let second = number(bytes[17..<19]), hour < 24, minute < 60, second < 61
        else { return nil }
        var index = 19
        var micros: Int64 = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            var scale: Int64 = 100_000
            while index < bytes.count, let digit = number(bytes[index..<index + 1]) {
                micros += digit * scale
                scale /= 10
                index += 1
            }
        }
        var offsetSeconds: Int64 = 0
        if index < bytes.count {
            let sign = bytes[index]
            if sign == UInt8(ascii: "Z") {
                index += 1
            } else if sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
                let parts = String(decoding: bytes[(index + 1)...], as: UTF8.self).split(separator: ":")
                guard (1...3).contains(parts.count) else { return nil }
                var multiplier: Int64 = 3600
                for part in parts {
                    guard part.count == 2, let value = Int64(part) else { return nil }
                    offsetSeconds += value * multiplier
                    multiplier /= 60
                }
                if sign == UInt8(ascii: "-") { offsetSeconds = -offsetSeconds }
                index = bytes.count
            }
            guard index == bytes.count else { return nil }
        }
        let seconds = Int64(date.daysSince1970) * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
        return Date(timeIntervalSince1970: Double(seconds) + Double(micros) / 1_000_000)
    }

    static func number(_ digits: ArraySlice<UInt8>) -> Int64? {
        var value: Int64 = 0
        for digit in digits {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(digit - UInt8(ascii: "0"))
        }
        return value
    }

    static func floorDivide(_ value: Int64, _ divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        let remainder = ((value % divisor) + divisor) % divisor
        return ((value - remainder) / divisor, remainder)
    }

    static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}

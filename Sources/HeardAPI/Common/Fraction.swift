import Foundation

/// Exact arithmetic for totals and means worked out from whole numbers and decimals (scores,
/// weights, hours): a fraction in lowest terms, never a binary floating-point value, rounded only
/// when it is answered (`decimal(places:)`: half away from zero).
struct Fraction: Sendable, Hashable, Comparable {
    /// In lowest terms; `denominator` > 0.
    let numerator: Int
    let denominator: Int

    init(_ numerator: Int, _ denominator: Int = 1) {
        precondition(denominator != 0, "a fraction's denominator is never 0")
        let divisor = Self.gcd(abs(numerator), abs(denominator))
        let sign = denominator < 0 ? -1 : 1
        self.numerator = sign * numerator / max(divisor, 1)
        self.denominator = sign * denominator / max(divisor, 1)
    }

    /// A number written with `places` decimal places, given as a whole number of those places
    /// (1250 with 2 places is 12.5).
    init(scaled value: Int, places: Int) {
        var unit = 1
        for _ in 0..<places { unit *= 10 }
        self.init(value, unit)
    }

    static func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }

    static func + (lhs: Fraction, rhs: Fraction) -> Fraction {
        Fraction(lhs.numerator * rhs.denominator + rhs.numerator * lhs.denominator, lhs.denominator * rhs.denominator)
    }

    static func * (lhs: Fraction, rhs: Fraction) -> Fraction {
        Fraction(lhs.numerator * rhs.numerator, lhs.denominator * rhs.denominator)
    }

    static func / (lhs: Fraction, rhs: Fraction) -> Fraction {
        Fraction(lhs.numerator * rhs.denominator, lhs.denominator * rhs.numerator)
    }

    static func < (lhs: Fraction, rhs: Fraction) -> Bool {
        lhs.numerator * rhs.denominator < rhs.numerator * lhs.denominator
    }

    /// Rounded to `places` decimal places, half away from zero, written without trailing zeros
    /// (`66.67`, `12.5`, `80`).
    func decimal(places: Int = 2) -> ExactDecimal {
        var unit = 1
        for _ in 0..<places { unit *= 10 }
        let magnitude = (2 * abs(numerator) * unit + denominator) / (2 * denominator)
        var fraction = String(magnitude % unit)
        fraction = String(repeating: "0", count: places - fraction.count) + fraction
        while fraction.last == "0" { fraction.removeLast() }
        let sign = numerator < 0 && magnitude > 0 ? "-" : ""
        return ExactDecimal(text: sign + String(magnitude / unit) + (fraction.isEmpty ? "" : "." + fraction))
    }
}

/// A decimal number as written (`66.67`): answered in JSON as that number, exactly.
struct ExactDecimal: Encodable, Sendable, Equatable, CustomStringConvertible {
    let text: String

    var description: String { text }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")) ?? 0)
    }
}

/// Competition ranking ("1, 1, 3"): the highest value ranks 1, equal values share a rank, and
/// the rank after a tie skips the places the tie took. In the order the values were given.
func competitionRanks<Value: Comparable>(_ values: [Value]) -> [Int] {
    values.map { value in 1 + values.filter { $0 > value }.count }
}

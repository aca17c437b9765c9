import Foundation

/// The disclosure rule every report applies (DOMAIN.md, data protection): a count from 1 to 4
/// could identify a child, so for a key without `small_numbers:read` it is answered as `null`
/// with `suppressed: true`. Zero is not suppressed (it identifies nobody). Whatever is worked
/// out from a suppressed count is suppressed with it: a share whose numerator or denominator is
/// suppressed, a median of 1 to 4 values.
///
/// ```swift
/// let disclosure = Disclosure(for: context.principal)
/// row.figures.append(("complaints", disclosure.count(12)))          // {"value": 12, "suppressed": false}
/// row.figures.append(("within_time", disclosure.share(3, of: 12)))  // {"value": null, "suppressed": true}
/// ```
struct Disclosure: Sendable {
    /// Counts in this range are small numbers.
    static let smallNumbers = 1...4

    /// Whether small numbers are shown (`small_numbers:read`).
    let showsSmallNumbers: Bool

    init(showsSmallNumbers: Bool) {
        self.showsSmallNumbers = showsSmallNumbers
    }

    init(for principal: Principal) {
        self.init(showsSmallNumbers: principal.has(.smallNumbersRead))
    }

    func hides(_ count: Int) -> Bool {
        !showsSmallNumbers && Self.smallNumbers.contains(count)
    }

    func count(_ count: Int) -> Figure {
        hides(count) ? .suppressed : Figure(value: .number(String(count)))
    }

    /// `numerator / denominator` to three decimal places; null (not suppressed) when the
    /// denominator is 0.
    func share(_ numerator: Int, of denominator: Int) -> Figure {
        if hides(numerator) || hides(denominator) { return .suppressed }
        guard denominator > 0 else { return Figure(value: .null) }
        return Figure(value: .number(Self.decimal(Double(numerator) / Double(denominator))))
    }

    /// A median of `count` values; null when there are none.
    func median(_ value: Double?, of count: Int) -> Figure {
        if hides(count) { return .suppressed }
        guard let value, count > 0 else { return Figure(value: .null) }
        return Figure(value: .number(Self.decimal(value)))
    }

    /// An amount (hours given, a total) that `count` people or records make up: hidden with the count.
    func amount(_ value: ExactDecimal, of count: Int) -> Figure {
        hides(count) ? .suppressed : Figure(value: .number(value.text))
    }

    static func decimal(_ value: Double) -> String {
        let rounded = (value * 1000).rounded() / 1000
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }
}

/// One figure of a report: its value (a number, or null) and whether the disclosure rule hid it.
struct Figure: Encodable, Sendable, Equatable {
    var value: JSONValue
    var suppressed = false

    static let suppressed = Figure(value: .null, suppressed: true)
}

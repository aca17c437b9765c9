import Foundation
import HTTPServer
import Postgres

/// Reads a request body's fields one by one, collecting every problem, so a 422 names every
/// field at fault at once; `finish()` also rejects any field nobody read (a typo in a council
/// system's payload is an error, never a silently dropped value).
///
/// ```swift
/// var body = try FieldReader(body: request.body)
/// let name = body.string("name", maxLength: 100)
/// let expires = body.optionalDate("expires_on")
/// try body.finish()   // 422 listing every field at fault, or returns
/// ```
public struct FieldReader {
    private let members: [(key: String, value: JSONValue)]
    /// Which of `members` have been read (an object's keys are unique: the parser refuses duplicates).
    private var read: [Bool]
    private let prefix: String
    public private(set) var errors: [FieldError] = []

    /// The fields of the JSON object in `body` (400 if it is not JSON, 422 if not an object).
    public init(body: [UInt8]) throws(HTTPError) {
        guard !body.isEmpty else {
            throw HTTPError(.malformedJSON, detail: "The request needs a JSON object as its body.")
        }
        guard case .object(let members) = try JSONValue.parse(body) else {
            throw HTTPError.validation([FieldError(field: "(body)", message: "must be a JSON object")])
        }
        self.init(members: members, prefix: "")
    }

    init(members: [(key: String, value: JSONValue)], prefix: String) {
        self.members = members
        self.prefix = prefix
        self.read = Array(repeating: false, count: members.count)
    }

    func path(_ name: String) -> String { prefix.isEmpty ? name : "\(prefix).\(name)" }

    /// Records a problem with `name` (for checks that span fields).
    public mutating func reject(_ name: String, _ message: String) {
        errors.append(FieldError(field: path(name), message: message))
    }

    /// Whether the body has `name` at all (a JSON `null` included: a change that clears it).
    public func has(_ name: String) -> Bool {
        members.contains { $0.key == name }
    }

    /// The raw value of `name`, marking it read; nil when absent. JSON `null` counts as absent.
    public mutating func raw(_ name: String) -> JSONValue? {
        guard let index = members.firstIndex(where: { $0.key == name }) else { return nil }
        read[index] = true
        let value = members[index].value
        return value == .null ? nil : value
    }

    /// Whether `name` is sent as JSON `null` (which `raw` and the typed readers take as absent).
    public func isNull(_ name: String) -> Bool {
        members.contains { $0.key == name && $0.value == .null }
    }

    private mutating func missing(_ name: String, required: Bool) -> Bool {
        if required { reject(name, "is required") }
        return true
    }

    // MARK: Typed fields

    public mutating func string(_ name: String, maxLength: Int, required: Bool = true) -> String? {
        guard let value = raw(name) else { _ = missing(name, required: required); return nil }
        guard case .string(let text) = value else { reject(name, "must be a string, not \(value.typeName)"); return nil }
        // Blank: white space, or the information separators U+001C-U+001F, which some readers count as white space too
        // (usually decided by the first character).
        if !text.unicodeScalars.contains(where: { !$0.properties.isWhitespace && !(0x1C...0x1F).contains($0.value) }) {
            reject(name, required ? "must not be empty" : "must not be empty (leave it out, or send null)")
            return nil
        }
        // Characters as PostgreSQL's length() counts them (code points), so a text that passes here
        // also passes the column's CHECK. Bytes bound code points, which settles most texts at once.
        guard text.utf8.count <= maxLength || text.unicodeScalars.count <= maxLength else {
            reject(name, "must be at most \(maxLength) characters")
            return nil
        }
        return text
    }

    public mutating func optionalString(_ name: String, maxLength: Int) -> String? {
        string(name, maxLength: maxLength, required: false)
    }

    /// A value from a closed vocabulary (an enum of `snake_case` strings).
    public mutating func vocabulary<Value: RawRepresentable & CaseIterable>(_ name: String, _ type: Value.Type, required: Bool = true) -> Value? where Value.RawValue == String {
        guard let value = raw(name) else { _ = missing(name, required: required); return nil }
        guard case .string(let text) = value, let member = Value(rawValue: text) else {
            reject(name, "must be one of: \(Value.allCases.map(\.rawValue).joined(separator: ", "))")
            return nil
        }
        return member
    }

    /// One of `allowed` (a vocabulary known only at run time).
    public mutating func choice(_ name: String, _ allowed: [String], required: Bool = true) -> String? {
        guard let value = raw(name) else { _ = missing(name, required: required); return nil }
        guard case .string(let text) = value, allowed.contains(text) else {
            reject(name, "must be one of: \(allowed.joined(separator: ", "))")
            return nil
        }
        return text
    }

    /// An array of vocabulary values, each at most once.
    public mutating func vocabularyList<Value: RawRepresentable & CaseIterable & Hashable>(_ name: String, _ type: Value.Type, required: Bool = true) -> [Value]? where Value.RawValue == String {
        stringList(name, required: required, rule: "must be one of: \(Value.allCases.map(\.rawValue).joined(separator: ", "))") {
            Value(rawValue: $0) != nil
        }?.compactMap(Value.init(rawValue:))
    }

    /// An array of strings each `valid` (else `name[i]` is refused with `rule`), each at most once,
    /// `minCount` to `maxCount` of them.
    public mutating func stringList(_ name: String, minCount: Int = 0, maxCount: Int = 100, required: Bool = true, rule: String,
                                    valid: (String) -> Bool) -> [String]? {
        list(name, minCount: minCount, maxCount: maxCount, required: required, rule: rule) { value in
            if case .string(let text) = value, valid(text) { text } else { nil }
        }
    }

    /// An id (a UUID).
    public mutating func uuid(_ name: String, required: Bool = true) -> UUID? {
        guard let value = raw(name) else { _ = missing(name, required: required); return nil }
        guard case .string(let text) = value, let id = UUID(uuidString: text) else { reject(name, "must be a UUID"); return nil }
        return id
    }

    /// An array of ids (`name[i]` named when one is not a UUID or repeats), `minCount` (1 unless
    /// told) to `maxCount` of them; `null: false` refuses a JSON `null` where the field may be left out.
    public mutating func uuidList(_ name: String, maxCount: Int, minCount: Int = 1, required: Bool = true, null: Bool = true) -> [UUID]? {
        if !null, isNull(name) {
            _ = raw(name)
            reject(name, "must be an array (leave it out for none)")
            return nil
        }
        return list(name, minCount: minCount, maxCount: maxCount, required: required, rule: "must be a UUID") { value in
            if case .string(let text) = value { UUID(uuidString: text) } else { nil }
        }
    }

    /// An array of `minCount` to `maxCount` values, each one `element` reads (else `name[i]` is
    /// refused with `rule`) and each at most once.
    private mutating func list<Element: Equatable>(_ name: String, minCount: Int, maxCount: Int, required: Bool, rule: String,
                                                   _ element: (JSONValue) -> Element?) -> [Element]? {
        guard let value = raw(name) else { _ = missing(name, required: required); return nil }
        guard case .array(let elements) = value else { reject(name, "must be an array, not \(value.typeName)"); return nil }
        guard (minCount...maxCount).contains(elements.count) else {
            reject(name, minCount == 0 ? "must have at most \(maxCount) items" : "must have \(minCount) to \(maxCount) items")
            return nil
        }
        var result: [Element] = []
        for (index, item) in elements.enumerated() {
            guard let read = element(item) else {
                errors.append(FieldError(field: "\(path(name))[\(index)]", message: rule))
                continue
            }
            if result.contains(read) {
                errors.append(FieldError(field: "\(path(name))[\(index)]", message: "appears more than once"))
                continue
            }
            result.append(read)
        }
        return result
    }

    /// A date `YYYY-MM-DD`.
    /// With `notAfter` (today, for a day something happened), a later day is refused.
    public mutating func date(_ name: String, required: Bool = true, notAfter latest: CalendarDate? = nil) -> CalendarDate? {
        guard let value = raw(name) else { _ = missing(name, required: required); return nil }
        guard case .string(let text) = value, text.utf8.count == 10, let date = CalendarDate(text) else {
            reject(name, "must be a date, YYYY-MM-DD")
            return nil
        }
        if let latest, date > latest { reject(name, "must not be in the future") }
        return date
    }

    /// An instant, RFC 3339 with a time zone (`2026-11-22T09:30:00Z`, fractional seconds allowed).
    public mutating func instant(_ name: String, required: Bool = true) -> Date? {
        guard let value = raw(name) else { _ = missing(name, required: required); return nil }
        guard case .string(let text) = value, let date = Self.parseInstant(text) else {
            reject(name, "must be an RFC 3339 date-time with a time zone, e.g. 2026-11-22T09:30:00Z")
            return nil
        }
        return date
    }

    static func parseInstant(_ text: String) -> Date? {
        RFC3339.parse(text)
    }

    /// A nested object's reader (its fields are named `name.field` in errors); nil when absent.
    /// Hand it back with `absorb` so its problems, unknown fields included, are reported.
    public mutating func object(_ name: String) -> FieldReader? {
        guard let value = raw(name) else { return nil }
        guard case .object(let members) = value else { reject(name, "must be an object, not \(value.typeName)"); return nil }
        return FieldReader(members: members, prefix: path(name))
    }

    /// Readers for an array of objects (`name[0].field`...); nil when absent.
    public mutating func objects(_ name: String, maxCount: Int) -> [FieldReader]? {
        guard let value = raw(name) else { return nil }
        guard case .array(let elements) = value else { reject(name, "must be an array, not \(value.typeName)"); return nil }
        guard elements.count <= maxCount else { reject(name, "must have at most \(maxCount) items"); return nil }
        var readers: [FieldReader] = []
        for (index, element) in elements.enumerated() {
            guard case .object(let members) = element else {
                errors.append(FieldError(field: "\(path(name))[\(index)]", message: "must be an object"))
                continue
            }
            readers.append(FieldReader(members: members, prefix: "\(path(name))[\(index)]"))
        }
        return readers
    }

    /// `objects`, for an array the request must carry: "is required" when absent or null.
    public mutating func requiredObjects(_ name: String, maxCount: Int) -> [FieldReader]? {
        if isNull(name) || !has(name) {
            _ = raw(name)
            reject(name, "is required")
            return nil
        }
        return objects(name, maxCount: maxCount)
    }

    /// Takes over a nested reader's problems, and flags the fields it did not read.
    public mutating func absorb(_ nested: FieldReader) {
        var nested = nested
        nested.rejectUnread()
        errors.append(contentsOf: nested.errors)
    }

    private mutating func rejectUnread() {
        for (index, (key, _)) in members.enumerated() where !read[index] {
            if key == "tenant_id" || key == "tenant" {
                reject(key, "is never accepted: the tenant is the API key's own")
            } else {
                reject(key, "is not a field of this request")
            }
        }
        read = Array(repeating: true, count: members.count)
    }

    public mutating func bool(_ name: String, required: Bool = true) -> Bool? {
        guard let value = raw(name) else { _ = missing(name, required: required); return nil }
        guard case .bool(let flag) = value else { reject(name, "must be true or false, not \(value.typeName)"); return nil }
        return flag
    }

    public mutating func integer(_ name: String, in range: ClosedRange<Int>, required: Bool = true) -> Int? {
        guard let value = raw(name) else { _ = missing(name, required: required); return nil }
        guard case .number(let text) = value, let number = Int(text) else {
            reject(name, "must be a whole number")
            return nil
        }
        guard range.contains(number) else { reject(name, "must be from \(range.lowerBound) to \(range.upperBound)"); return nil }
        return number
    }

    /// A number within `range` with at most `places` decimal places (`2.5`, `80`), as written: read
    /// exactly, never through a binary fraction. Answered as hundredths (or whatever `places` makes
    /// whole): `12.5` with 2 places is 1250.
    public mutating func decimal(_ name: String, in range: ClosedRange<Int>, places: Int, required: Bool = true) -> Int? {
        guard let value = raw(name) else { _ = missing(name, required: required); return nil }
        let message = "must be a number from \(range.lowerBound) to \(range.upperBound) with at most \(places) decimal places"
        guard case .number(let text) = value, let scaled = Self.scaled(text, places: places) else { reject(name, message); return nil }
        var unit = 1
        for _ in 0..<places { unit *= 10 }
        guard scaled >= range.lowerBound * unit, scaled <= range.upperBound * unit else { reject(name, message); return nil }
        return scaled
    }

    /// `text` (digits, optionally a point and at most `places` digits, no sign or exponent) times
    /// 10^places; nil otherwise.
    static func scaled(_ text: String, places: Int) -> Int? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let whole = parts.first, (1...9).contains(whole.count),
              whole.allSatisfy({ ("0"..."9").contains($0) }) else { return nil }
        let fraction = parts.count == 2 ? parts[1] : ""
        guard fraction.count <= places, parts.count == 1 || !fraction.isEmpty, fraction.allSatisfy({ ("0"..."9").contains($0) }) else { return nil }
        return Int(whole + fraction + String(repeating: "0", count: places - fraction.count))
    }

    // MARK: Finishing

    /// Throws 422 listing every problem, including fields nobody read.
    public mutating func finish() throws(HTTPError) {
        rejectUnread()
        guard errors.isEmpty else { throw HTTPError.validation(errors) }
    }
}

import Foundation
import HeardCore

/// A Swift value that can be bound as a statement parameter.
///
/// Values travel in PostgreSQL's text format, tagged with their type.
public protocol PostgresEncodable: Sendable {
    /// The type the value is sent as.
    static var postgresType: PostgresDataType { get }
    /// The value in PostgreSQL's text input format, or nil for NULL.
    var postgresText: String? { get }
}

/// A Swift value that can be decoded from a result column.
public protocol PostgresDecodable: Sendable {
    /// The PostgreSQL type(s) this decodes from, for error messages (`"text"`, `"int2/int4/int8"`).
    static var postgresTypeName: String { get }
    /// Whether a column of `type` can be decoded as `Self`.
    static func accepts(_ type: PostgresDataType) -> Bool
    /// Decodes a non-NULL value from PostgreSQL's text output format; nil when it does not parse.
    init?(postgresText text: String, type: PostgresDataType)
    /// What SQL NULL decodes to; nil (the default) makes NULL a decoding error.
    static var postgresNull: Self? { get }
}

extension PostgresDecodable {
    public static var postgresNull: Self? { nil }
}

/// Both directions.
public typealias PostgresCodable = PostgresEncodable & PostgresDecodable

// MARK: - Optional (NULL)

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public static var postgresType: PostgresDataType { Wrapped.postgresType }
    public var postgresText: String? { self?.postgresText }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public static var postgresTypeName: String { Wrapped.postgresTypeName }
    public static func accepts(_ type: PostgresDataType) -> Bool { Wrapped.accepts(type) }
    public init?(postgresText text: String, type: PostgresDataType) {
        guard let value = Wrapped(postgresText: text, type: type) else { return nil }
        self = .some(value)
    }
    public static var postgresNull: Self? { .some(.none) }
}

// MARK: - Text

extension String: PostgresCodable {
    public static var postgresType: PostgresDataType { .text }
    public var postgresText: String? { self }
    public static var postgresTypeName: String { "text" }
    /// Text-like columns, plus types whose text form is the natural string (uuid, json,
    /// user-defined enums).
    public static func accepts(_ type: PostgresDataType) -> Bool {
        switch type {
        case .text, .varchar, .bpchar, .name, .char, .unknown, .uuid, .json, .jsonb: true
        default: type.isUserDefined
        }
    }
    public init?(postgresText text: String, type: PostgresDataType) { self = text }
}

// MARK: - Integers

extension Int: PostgresCodable {
    public static var postgresType: PostgresDataType { .int8 }
    public var postgresText: String? { String(self) }
    public static var postgresTypeName: String { "int2/int4/int8" }
    public static func accepts(_ type: PostgresDataType) -> Bool { [.int2, .int4, .int8, .oid].contains(type) }
    public init?(postgresText text: String, type: PostgresDataType) { self.init(text) }
}

extension Int64: PostgresCodable {
    public static var postgresType: PostgresDataType { .int8 }
    public var postgresText: String? { String(self) }
    public static var postgresTypeName: String { "int2/int4/int8" }
    public static func accepts(_ type: PostgresDataType) -> Bool { [.int2, .int4, .int8, .oid].contains(type) }
    public init?(postgresText text: String, type: PostgresDataType) { self.init(text) }
}

extension Int32: PostgresCodable {
    public static var postgresType: PostgresDataType { .int4 }
    public var postgresText: String? { String(self) }
    public static var postgresTypeName: String { "int2/int4" }
    public static func accepts(_ type: PostgresDataType) -> Bool { [.int2, .int4].contains(type) }
    public init?(postgresText text: String, type: PostgresDataType) { self.init(text) }
}

extension Int16: PostgresCodable {
    public static var postgresType: PostgresDataType { .int2 }
    public var postgresText: String? { String(self) }
    public static var postgresTypeName: String { "int2" }
    public static func accepts(_ type: PostgresDataType) -> Bool { type == .int2 }
    public init?(postgresText text: String, type: PostgresDataType) { self.init(text) }
}

// MARK: - Bool, floating point, numeric

extension Bool: PostgresCodable {
    public static var postgresType: PostgresDataType { .bool }
    public var postgresText: String? { self ? "t" : "f" }
    public static var postgresTypeName: String { "bool" }
    public static func accepts(_ type: PostgresDataType) -> Bool { type == .bool }
    public init?(postgresText text: String, type: PostgresDataType) {
        switch text {
        case "t", "true": self = true
        case "f", "false": self = false
        default: return nil
        }
    }
}

extension Double: PostgresCodable {
    public static var postgresType: PostgresDataType { .float8 }
    public var postgresText: String? {
        if isNaN { return "NaN" }
        if isInfinite { return self < 0 ? "-Infinity" : "Infinity" }
        return String(self)  // shortest text that reads back as the same Double
    }
    public static var postgresTypeName: String { "float8" }
    public static func accepts(_ type: PostgresDataType) -> Bool {
        [.float4, .float8, .numeric, .int2, .int4, .int8].contains(type)
    }
    public init?(postgresText text: String, type: PostgresDataType) { self.init(text) }
}

extension Decimal: PostgresCodable {
    public static var postgresType: PostgresDataType { .numeric }
    public var postgresText: String? { isNaN ? "NaN" : description }
    public static var postgresTypeName: String { "numeric" }
    public static func accepts(_ type: PostgresDataType) -> Bool { [.numeric, .int2, .int4, .int8].contains(type) }
    public init?(postgresText text: String, type: PostgresDataType) {
        if text == "NaN" { self = .nan; return }
        guard let value = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")) else { return nil }
        self = value
    }
}

// MARK: - UUID

extension UUID: PostgresCodable {
    public static var postgresType: PostgresDataType { .uuid }
    public var postgresText: String? { lowercased }
    public static var postgresTypeName: String { "uuid" }
    public static func accepts(_ type: PostgresDataType) -> Bool { type == .uuid }
    public init?(postgresText text: String, type: PostgresDataType) { self.init(canonicalText: text) }
}

// MARK: - Instants

/// An instant, sent as `timestamptz` in RFC 3339 UTC with microseconds
/// (`2026-11-22T09:30:00.123456Z`), PostgreSQL's own precision. Instants outside the years
/// 1-9999 are clamped to that range.
extension Date: PostgresCodable {
    public static var postgresType: PostgresDataType { .timestamptz }
    public var postgresText: String? { Timestamp.format(self) }
    public static var postgresTypeName: String { "timestamptz" }
    public static func accepts(_ type: PostgresDataType) -> Bool { type == .timestamptz || type == .timestamp }
    /// Reads `2026-11-22 09:30:00.123456+00` (any offset); a `timestamp` without zone is taken as UTC.
    public init?(postgresText text: String, type: PostgresDataType) {
        guard let date = Timestamp.parse(text) else { return nil }
        self = date
    }
}

// MARK: - Binary

extension Data: PostgresCodable {
    public static var postgresType: PostgresDataType { .bytea }
    public var postgresText: String? { Bytea.hex(self) }
    public static var postgresTypeName: String { "bytea/json/jsonb" }
    public static func accepts(_ type: PostgresDataType) -> Bool { [.bytea, .json, .jsonb].contains(type) }
    /// bytea in hex format, or the UTF-8 text of a json/jsonb column.
    public init?(postgresText text: String, type: PostgresDataType) {
        if type == .bytea {
            guard let bytes = Bytea.parse(text) else { return nil }
            self.init(bytes)
        } else {
            self.init(text.utf8)
        }
    }
}

/// Helpers for bytea's hex format: `\x` followed by two hex digits per byte.
enum Bytea {
    static func hex<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8](repeating: 0, count: 2 + bytes.count * 2)
        out[0] = UInt8(ascii: "\\")
        out[1] = UInt8(ascii: "x")
        var index = 2
        for byte in bytes {
            out[index] = digits[Int(byte >> 4)]
            out[index + 1] = digits[Int(byte & 0x0f)]
            index += 2
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func parse(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8[0] == UInt8(ascii: "\\"), utf8[1] == UInt8(ascii: "x"),
              utf8.count % 2 == 0 else { return nil }
        var bytes = [UInt8]()
        bytes.reserveCapacity((utf8.count - 2) / 2)
        var index = 2
        while index < utf8.count {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension CalendarDate: PostgresCodable {
    public static var postgresType: PostgresDataType { .date }
    public var postgresText: String? { description }
    public static var postgresTypeName: String { "date" }
    public static func accepts(_ type: PostgresDataType) -> Bool { type == .date }
    public init?(postgresText text: String, type: PostgresDataType) { self.init(text) }
}

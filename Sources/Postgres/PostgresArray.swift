import Foundation

/// A type whose Swift arrays map to a one-dimensional PostgreSQL array (`[String]` is `text[]`).
///
/// `UInt8` is the exception that proves the rule: `[UInt8]` is `bytea`, so it supplies its own
/// array coding through the customisation points below.
public protocol PostgresArrayElement: Sendable {
    /// The array type, such as `text[]`.
    static var postgresArrayType: PostgresDataType { get }
    /// The text form of an array of elements (`{"a","b",NULL}`).
    static func postgresArrayText(_ elements: [Self]) -> String
    /// Decodes an array's text form; nil when it does not parse.
    static func postgresArray(fromText text: String, type: PostgresDataType) -> [Self]?
}

extension PostgresArrayElement where Self: PostgresCodable {
    public static func postgresArrayText(_ elements: [Self]) -> String {
        ArrayLiteral.format(elements.map(\.postgresText))
    }

    public static func postgresArray(fromText text: String, type: PostgresDataType) -> [Self]? {
        guard let items = ArrayLiteral.parse(text) else { return nil }
        var result: [Self] = []
        result.reserveCapacity(items.count)
        for item in items {
            if let item {
                guard let element = Self(postgresText: item, type: postgresType) else { return nil }
                result.append(element)
            } else {
                guard let null = postgresNull else { return nil }
                result.append(null)
            }
        }
        return result
    }
}

extension Array: PostgresEncodable where Element: PostgresArrayElement {
    public static var postgresType: PostgresDataType { Element.postgresArrayType }
    public var postgresText: String? { Element.postgresArrayText(self) }
}

extension Array: PostgresDecodable where Element: PostgresArrayElement {
    public static var postgresTypeName: String { Element.postgresArrayType.description }
    public static func accepts(_ type: PostgresDataType) -> Bool { type == Element.postgresArrayType }
    public init?(postgresText text: String, type: PostgresDataType) {
        guard let elements = Element.postgresArray(fromText: text, type: type) else { return nil }
        self = elements
    }
}

extension String: PostgresArrayElement {
    public static var postgresArrayType: PostgresDataType { .textArray }
    public static func postgresArrayText(_ elements: [String]) -> String { ArrayLiteral.format(elements) }
}

extension Int: PostgresArrayElement {
    public static var postgresArrayType: PostgresDataType { .int8Array }
}

extension Int64: PostgresArrayElement {
    public static var postgresArrayType: PostgresDataType { .int8Array }
}

extension Int32: PostgresArrayElement {
    public static var postgresArrayType: PostgresDataType { .int4Array }
}

extension Bool: PostgresArrayElement {
    public static var postgresArrayType: PostgresDataType { .boolArray }
}

extension Double: PostgresArrayElement {
    public static var postgresArrayType: PostgresDataType { .float8Array }
}

extension Date: PostgresArrayElement {
    public static var postgresArrayType: PostgresDataType { .timestamptzArray }
}

extension UUID: PostgresArrayElement {
    public static var postgresArrayType: PostgresDataType { .uuidArray }
}

/// `[String?]` is a `text[]` that may hold NULL elements.
extension Optional: PostgresArrayElement where Wrapped: PostgresArrayElement & PostgresCodable {
    public static var postgresArrayType: PostgresDataType { Wrapped.postgresArrayType }

    public static func postgresArrayText(_ elements: [Self]) -> String {
        // Text columns that may be NULL are the common case (a batch binds one per column):
        // they skip the generic path, which costs a metadata lookup an element.
        if let strings = elements as? [String?] { return ArrayLiteral.format(strings) }
        return ArrayLiteral.format(elements.map { $0?.postgresText })
    }
}

/// `[UInt8]` is `bytea` (hex format), not an array of numbers.
extension UInt8: PostgresArrayElement {
    public static var postgresArrayType: PostgresDataType { .bytea }
    public static func postgresArrayText(_ elements: [UInt8]) -> String { Bytea.hex(elements) }
    public static func postgresArray(fromText text: String, type: PostgresDataType) -> [UInt8]? {
        Bytea.parse(text)
    }
}

/// PostgreSQL's array literal syntax, one dimension: `{a,"b c",NULL,"NULL","q\"uote"}`.
enum ArrayLiteral {
    /// Quotes every element, so no element text can be mistaken for syntax or for NULL. Works on
    /// UTF-8 bytes: `"` and `\\` are ASCII, so escaping them never splits a character.
    static func format(_ elements: [String?]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(2 + elements.reduce(0) { $0 + ($1?.utf8.count ?? 4) + 3 })
        out.append(UInt8(ascii: "{"))
        for (index, element) in elements.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            guard let element else {
                out.append(contentsOf: "NULL".utf8)
                continue
            }
            out.append(UInt8(ascii: "\""))
            var text = element
            text.withUTF8 { bytes in
                // Most elements need no escape: copied whole.
                guard bytes.contains(where: { $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
                    return out.append(contentsOf: bytes)
                }
                for byte in bytes {
                    if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { out.append(UInt8(ascii: "\\")) }
                    out.append(byte)
                }
            }
            out.append(UInt8(ascii: "\""))
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    /// The elements (nil for NULL), or nil if `text` is not a one-dimensional array literal.
    static func parse(_ text: String) -> [String?]? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 2, bytes.first == UInt8(ascii: "{"), bytes.last == UInt8(ascii: "}") else {
            return nil
        }
        let end = bytes.count - 1
        var index = 1
        var elements: [String?] = []
        if index == end { return elements }
        while true {
            var buffer: [UInt8] = []
            if bytes[index] == UInt8(ascii: "\"") {
                index += 1
                while true {
                    guard index < end else { return nil }
                    let byte = bytes[index]
                    index += 1
                    if byte == UInt8(ascii: "\"") { break }
                    if byte == UInt8(ascii: "\\") {
                        guard index < end else { return nil }
                        buffer.append(bytes[index])
                        index += 1
                    } else {
                        buffer.append(byte)
                    }
                }
                elements.append(String(decoding: buffer, as: UTF8.self))
            } else {
                var escaped = false
                while index < end, bytes[index] != UInt8(ascii: ",") {
                    let byte = bytes[index]
                    if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "\"") { return nil }  // nested or malformed
                    if byte == UInt8(ascii: "\\") {
                        index += 1
                        guard index < end else { return nil }
                        escaped = true
                    }
                    buffer.append(bytes[index])
                    index += 1
                }
                guard !buffer.isEmpty else { return nil }
                let element = String(decoding: buffer, as: UTF8.self)
                elements.append(!escaped && element.uppercased() == "NULL" ? nil : element)
            }
            if index == end { return elements }
            guard bytes[index] == UInt8(ascii: ",") else { return nil }
            index += 1
            guard index < end else { return nil }
        }
    }
}

import Foundation
import HTTPServer

/// A JSON document read strictly, as Heard accepts input: RFC 8259 syntax, valid UTF-8, no
/// duplicate keys in an object, no NUL character in a string, nesting and array length capped.
/// Council systems get a clear 400 naming what is wrong, never a silently dropped field.
/// (Not `indirect`: arrays already hold their elements out of line, so no value needs a box of
/// its own, and a record's strings and numbers cost no allocation each.)
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    public static let maxDepth = 32
    public static let maxArrayLength = 10_000

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case (.bool(let x), .bool(let y)): x == y
        case (.number(let x), .number(let y)): x == y
        case (.string(let x), .string(let y)): x == y
        case (.array(let x), .array(let y)): x == y
        case (.object(let x), .object(let y)): x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: false
        }
    }

    /// Parses `bytes`; a 400 problem saying where and why when they are not acceptable JSON.
    public static func parse(_ bytes: [UInt8]) throws(HTTPError) -> JSONValue {
        var reader = Reader(bytes: bytes)
        do {
            reader.skipWhitespace()
            let value = try reader.value(depth: 0)
            reader.skipWhitespace()
            guard reader.atEnd else { throw Reader.Failure(reason: "unexpected content after the JSON value", offset: reader.offset) }
            return value
        } catch let failure as Reader.Failure {
            throw HTTPError(.malformedJSON, detail: "\(failure.reason) (at byte \(failure.offset)).")
        } catch {
            throw HTTPError(.malformedJSON, detail: "The body is not acceptable JSON.")
        }
    }

    /// Compact JSON text of this value (for storing in a jsonb column).
    public var serialized: String {
        switch self {
        case .null: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .number(let text): return text
        case .string(let text): return Self.quote(text)
        case .array(let elements): return "[" + elements.map(\.serialized).joined(separator: ",") + "]"
        case .object(let members): return "{" + members.map { Self.quote($0.key) + ":" + $0.value.serialized }.joined(separator: ",") + "}"
        }
    }

    private static func quote(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case _ where scalar.value < 0x20: result += String(format: "\\u%04x", scalar.value)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    /// The JSON type's name, for messages ("must be a string, not a number").
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    private struct Reader {
        struct Failure: Error {
            let reason: String
            let offset: Int
        }

        let bytes: [UInt8]
        var offset = 0

        var atEnd: Bool { offset >= bytes.count }

        mutating func skipWhitespace() {
            while offset < bytes.count {
                switch bytes[offset] {
                case 0x20, 0x09, 0x0A, 0x0D: offset += 1
                default: return
                }
            }
        }

        func fail(_ reason: String) -> Failure { Failure(reason: reason, offset: offset) }

        mutating func value(depth: Int) throws -> JSONValue {
            guard depth < JSONValue.maxDepth else { throw fail("nesting deeper than \(JSONValue.maxDepth) levels") }
            guard offset < bytes.count else { throw fail("unexpected end of the body") }
            switch bytes[offset] {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
            default: throw fail("unexpected character")
            }
        }

        mutating func literal(_ word: String) throws {
            let expected = Array(word.utf8)
            guard offset + expected.count <= bytes.count, Array(bytes[offset..<offset + expected.count]) == expected else {
                throw fail("invalid literal")
            }
            offset += expected.count
        }

        mutating func object(depth: Int) throws -> JSONValue {
            offset += 1
            var members: [(key: String, value: JSONValue)] = []
            var seen: Set<String>?  // only for large objects: a short list is searched faster
            skipWhitespace()
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "}") {
                offset += 1
                return .object(members)
            }
            while true {
                skipWhitespace()
                guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") else { throw fail("expected a member name in quotes") }
                let keyOffset = offset
                let key = try string()
                let duplicate: Bool
                if members.count < 16 {
                    duplicate = members.contains { $0.key == key }
                } else {
                    if seen == nil { seen = Set(members.map(\.key)) }
                    duplicate = !seen!.insert(key).inserted  // in place: a copy per key would make this quadratic
                }
                guard !duplicate else {
                    throw Failure(reason: "duplicate key \"\(key.prefix(64))\"", offset: keyOffset)
                }
                skipWhitespace()
                guard offset < bytes.count, bytes[offset] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                offset += 1
                skipWhitespace()
                members.append((key, try value(depth: depth + 1)))
                skipWhitespace()
                guard offset < bytes.count else { throw fail("unexpected end of the body") }
                if bytes[offset] == UInt8(ascii: ",") { offset += 1; continue }
                if bytes[offset] == UInt8(ascii: "}") { offset += 1; return .object(members) }
                throw fail("expected ',' or '}'")
            }
        }

        mutating func array(depth: Int) throws -> JSONValue {
            offset += 1
            var elements: [JSONValue] = []
            skipWhitespace()
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "]") {
                offset += 1
                return .array(elements)
            }
            while true {
                skipWhitespace()
                guard elements.count < JSONValue.maxArrayLength else { throw fail("an array longer than \(JSONValue.maxArrayLength) elements") }
                elements.append(try value(depth: depth + 1))
                skipWhitespace()
                guard offset < bytes.count else { throw fail("unexpected end of the body") }
                if bytes[offset] == UInt8(ascii: ",") { offset += 1; continue }
                if bytes[offset] == UInt8(ascii: "]") { offset += 1; return .array(elements) }
                throw fail("expected ',' or ']'")
            }
        }

        mutating func number() throws -> String {
            let start = offset
            if bytes[offset] == UInt8(ascii: "-") { offset += 1 }
            guard offset < bytes.count, bytes[offset].isASCIIDigit else { throw fail("invalid number") }
            if bytes[offset] == UInt8(ascii: "0") {
                offset += 1
            } else {
                while offset < bytes.count, bytes[offset].isASCIIDigit { offset += 1 }
            }
            if offset < bytes.count, bytes[offset] == UInt8(ascii: ".") {
                offset += 1
                guard offset < bytes.count, bytes[offset].isASCIIDigit else { throw fail("invalid number") }
                while offset < bytes.count, bytes[offset].isASCIIDigit { offset += 1 }
            }
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "e") || bytes[offset] == UInt8(ascii: "E") {
                offset += 1
                if offset < bytes.count, bytes[offset] == UInt8(ascii: "+") || bytes[offset] == UInt8(ascii: "-") { offset += 1 }
                guard offset < bytes.count, bytes[offset].isASCIIDigit else { throw fail("invalid number") }
                while offset < bytes.count, bytes[offset].isASCIIDigit { offset += 1 }
            }
            guard offset - start <= 64 else { throw Failure(reason: "a number longer than 64 characters", offset: start) }
            return String(decoding: bytes[start..<offset], as: UTF8.self)
        }

        mutating func string() throws -> String {
            offset += 1  // the opening quote
            var result: String?  // only once an escape splits the string into runs
            var runStart = offset
            var runIsASCII = true
            func run(_ reader: Reader, upTo end: Int) throws -> String {
                try reader.bytes.withUnsafeBufferPointer { buffer throws(Failure) -> String in
                    let run = UnsafeBufferPointer(rebasing: buffer[runStart..<end])
                    // ASCII needs no validation; anything else must be valid UTF-8.
                    if runIsASCII { return String(decoding: run, as: UTF8.self) }
                    guard let text = String(validating: run, as: UTF8.self) else {
                        throw Failure(reason: "invalid UTF-8", offset: runStart)
                    }
                    return text
                }
            }
            while true {
                guard offset < bytes.count else { throw fail("unterminated string") }
                let byte = bytes[offset]
                if byte == UInt8(ascii: "\"") {
                    // Most strings have no escape: one validated run is the whole string.
                    let last = try run(self, upTo: offset)
                    offset += 1
                    guard var joined = result else { return last }
                    joined += last
                    return joined
                }
                if byte < 0x20 { throw fail(byte == 0 ? "a NUL character in a string" : "a control character in a string") }
                if byte == UInt8(ascii: "\\") {
                    var joined = result ?? ""
                    joined += try run(self, upTo: offset)
                    offset += 1
                    joined.unicodeScalars.append(try escape())
                    result = joined
                    runStart = offset
                    runIsASCII = true
                    continue
                }
                if byte >= 0x80 { runIsASCII = false }
                offset += 1
            }
        }

        mutating func escape() throws -> Unicode.Scalar {
            guard offset < bytes.count else { throw fail("unterminated escape") }
            let byte = bytes[offset]
            offset += 1
            switch byte {
            case UInt8(ascii: "\""): return "\""
            case UInt8(ascii: "\\"): return "\\"
            case UInt8(ascii: "/"): return "/"
            case UInt8(ascii: "b"): return "\u{08}"
            case UInt8(ascii: "f"): return "\u{0C}"
            case UInt8(ascii: "n"): return "\n"
            case UInt8(ascii: "r"): return "\r"
            case UInt8(ascii: "t"): return "\t"
            case UInt8(ascii: "u"):
                let high = try hex4()
                if (0xD800...0xDBFF).contains(high) {
                    guard offset + 1 < bytes.count, bytes[offset] == UInt8(ascii: "\\"), bytes[offset + 1] == UInt8(ascii: "u") else {
                        throw fail("an unpaired surrogate")
                    }
                    offset += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw fail("an unpaired surrogate") }
                    return Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))!
                }
                guard let scalar = Unicode.Scalar(high), !(0xDC00...0xDFFF).contains(high) else { throw fail("an unpaired surrogate") }
                guard high != 0 else { throw fail("a NUL character in a string") }
                return scalar
            default:
                throw fail("an invalid escape")
            }
        }

        mutating func hex4() throws -> UInt32 {
            guard offset + 4 <= bytes.count else { throw fail("a short \\u escape") }
            var value: UInt32 = 0
            for byte in bytes[offset..<offset + 4] {
                guard let digit = UInt32(String(UnicodeScalar(byte)), radix: 16) else { throw fail("an invalid \\u escape") }
                value = value << 4 | digit
            }
            offset += 4
            return value
        }
    }
}

extension UInt8 {
    var isASCIIDigit: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }
}

extension JSONValue: Encodable {
    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .null:
            var container = encoder.singleValueContainer()
            try container.encodeNil()
        case .bool(let flag):
            var container = encoder.singleValueContainer()
            try container.encode(flag)
        case .number(let text):
            var container = encoder.singleValueContainer()
            if let whole = Int64(text) { try container.encode(whole) } else { try container.encode(Double(text) ?? 0) }
        case .string(let text):
            var container = encoder.singleValueContainer()
            try container.encode(text)
        case .array(let elements):
            var container = encoder.unkeyedContainer()
            for element in elements { try container.encode(element) }
        case .object(let members):
            var container = encoder.container(keyedBy: FieldKey.self)
            for member in members { try container.encode(member.value, forKey: FieldKey(member.key)) }
        }
    }
}

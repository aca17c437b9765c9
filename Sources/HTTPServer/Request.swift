import Foundation

/// One HTTP request, fully read (head and body), as a handler sees it.
public struct Request: Sendable {
    public var method: String
    /// The request target exactly as sent (e.g. `/v1/feedback?limit=10`).
    public var target: String
    /// The path part of the target, still percent-encoded.
    public var path: String
    public var query: QueryParameters
    public var headers: HTTPHeaders
    public var body: [UInt8]
    public var version: HTTPVersion
    /// Values of the `{name}` segments of the matched route template, percent-decoded.
    public var pathParameters: [String: String] = [:]
    /// The template of the route that matched (`/v1/feedback/{id}`), set by the router.
    public var route: String?
    /// The request's id: the client's `X-Request-Id` when it is sane, else a generated one.
    public var requestID: String
    /// The peer's IP address as text (`192.0.2.1`, `2001:db8::1`), when the request came over a socket.
    public var clientAddress: String?

    public init(
        method: String, target: String, headers: HTTPHeaders = HTTPHeaders(),
        body: [UInt8] = [], version: HTTPVersion = .http11, requestID: String = RequestID.generate()
    ) throws(HTTPError) {
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.version = version
        self.requestID = requestID
        let (path, rawQuery) = Self.split(target: target)
        self.path = path
        guard let query = QueryParameters(encoded: rawQuery) else {
            throw HTTPError(.badRequest, detail: "The query string is not valid percent-encoding.")
        }
        self.query = query
    }

    /// The value of the path parameter `name`. Routes guarantee it exists when the template has it.
    public func parameter(_ name: String) -> String {
        pathParameters[name] ?? ""
    }

    static func split(target: String) -> (path: String, query: String) {
        // origin-form in ASCII (`/path?query`), as every request the parser accepts has it: no
        // scheme to look for, and each byte is a Character.
        if target.utf8.first == UInt8(ascii: "/"), target.utf8.allSatisfy({ $0 < 0x80 }) {
            guard let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return (target, "") }
            return (String(target[..<mark]), String(target[target.utf8.index(after: mark)...]))
        }
        var path = Substring(target)
        // absolute-form (RFC 9112 §3.2.2): keep only the path and query.
        if let scheme = path.range(of: "://") {
            let afterAuthority = path[scheme.upperBound...]
            path = afterAuthority.firstIndex(of: "/").map { afterAuthority[$0...] } ?? "/"
        }
        if let mark = path.firstIndex(of: "?") {
            return (String(path[..<mark]), String(path[path.index(after: mark)...]))
        }
        return (String(path), "")
    }
}

public struct HTTPVersion: Sendable, Equatable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public static let http11 = HTTPVersion(major: 1, minor: 1)
    public static let http10 = HTTPVersion(major: 1, minor: 0)
    public var description: String { "HTTP/\(major).\(minor)" }
}

/// Query-string parameters in order; `+` is a space and `%XX` is decoded (HTML form rules).
public struct QueryParameters: Sendable, Sequence {
    public typealias Element = (name: String, value: String)
    private var items: [Element] = []

    public init() {}

    /// Nil when the query is not valid percent-encoding or not UTF-8.
    public init?(encoded: String) {
        if encoded.isEmpty { return }
        for pair in encoded.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = PercentDecoding.decode(parts[0], plusIsSpace: true),
                  let value = PercentDecoding.decode(parts.count > 1 ? parts[1] : "", plusIsSpace: true)
            else { return nil }
            items.append((name, value))
        }
    }

    /// The first value of `name`.
    public subscript(name: String) -> String? { items.first { $0.name == name }?.value }

    public func values(_ name: String) -> [String] { items.filter { $0.name == name }.map(\.value) }

    public var names: [String] { items.map(\.name) }

    public func makeIterator() -> IndexingIterator<[Element]> { items.makeIterator() }
}

enum PercentDecoding {
    /// Decodes `%XX` escapes; nil for a malformed escape or bytes that are not UTF-8.
    static func decode(_ text: Substring, plusIsSpace: Bool) -> String? {
        if !text.utf8.contains(where: { $0 == UInt8(ascii: "%") || (plusIsSpace && $0 == UInt8(ascii: "+")) }) {
            return String(text)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue)
                else { return nil }
                bytes.append(high << 4 | low)
            case UInt8(ascii: "+") where plusIsSpace:
                bytes.append(UInt8(ascii: " "))
            default:
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// Request ids: the client's own when sane (so a council system can trace its call), else ours.
public enum RequestID {
    /// A random per-process prefix and a counter: unique, and no system call per request
    /// (ids identify requests in logs; they are not secrets).
    private static let prefix: UInt64 = {
        var generator = SystemRandomNumberGenerator()
        return generator.next()
    }()
    private static let counter = Counter()

    /// Thirty-two lower-case hex digits: the prefix, then the counter.
    public static func generate() -> String {
        let count = UInt64(bitPattern: Int64(counter.increment()))
        return String(unsafeUninitializedCapacity: 32) { buffer in
            writeHex(prefix, into: UnsafeMutableBufferPointer(rebasing: buffer[0..<16]))
            writeHex(count, into: UnsafeMutableBufferPointer(rebasing: buffer[16..<32]))
            return 32
        }
    }

    /// A client id is echoed only when it is 1-128 characters of `A-Z a-z 0-9 - _ . :`;
    /// anything else could smuggle text into our logs.
    public static func sanitized(_ candidate: String?) -> String? {
        guard let candidate, !candidate.isEmpty, candidate.utf8.count <= 128 else { return nil }
        let allowed = candidate.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"),
                 UInt8(ascii: "."), UInt8(ascii: ":"):
                true
            default: false
            }
        }
        return allowed ? candidate : nil
    }

    /// Sixteen lower-case hex digits, zero-padded.
    private static func writeHex(_ value: UInt64, into buffer: UnsafeMutableBufferPointer<UInt8>) {
        for index in 0..<16 {
            let digit = UInt8((value >> (60 - 4 * UInt64(index))) & 0xF)
            buffer[index] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10
        }
    }
}

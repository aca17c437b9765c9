import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Turns a `Response` into the bytes on the wire: status line, the headers the server owns,
/// the handler's headers, then the body.
enum ResponseWriter {
    static func serialize(_ response: Response, requestID: String, version: HTTPVersion, keepAlive: Bool, omitBody: Bool) -> [UInt8] {
        var bytes: [UInt8] = []
        serialize(response, requestID: requestID, version: version, keepAlive: keepAlive, omitBody: omitBody, into: &bytes)
        return bytes
    }

    /// Appends the response to `bytes` (a connection reuses one buffer for all its answers).
    static func serialize(
        _ response: Response, requestID: String, version: HTTPVersion, keepAlive: Bool, omitBody: Bool, into bytes: inout [UInt8]
    ) {
        let status = response.status
        let bodyless = status.code == 204 || status.code == 304 || status.code < 200
        bytes.reserveCapacity(bytes.count + 256 + (omitBody || bodyless ? 0 : response.body.count))
        bytes.append("HTTP/1.1 ")
        bytes.appendDecimal(status.code)
        bytes.append(.space)
        bytes.append(contentsOf: status.reasonPhrase.utf8)
        bytes.appendLineEnd()
        if !bodyless {
            bytes.append("Content-Length: ")
            bytes.appendDecimal(response.body.count)
            bytes.appendLineEnd()
        }
        bytes.append("Date: ")
        bytes.append(contentsOf: HTTPDate.now())
        bytes.append("\r\nX-Request-Id: ")
        bytes.append(contentsOf: requestID.utf8)
        bytes.appendLineEnd()
        if !keepAlive {
            bytes.append("Connection: close\r\n")
        } else if version == .http10 {
            bytes.append("Connection: keep-alive\r\n")
        }
        var hasCacheControl = false, hasNoSniff = false, hasFrameOptions = false
        for (name, value) in response.headers {
            let kind = HeaderKind(name)
            if kind == .ownedByServer { continue }
            // A value with CR or LF would split the response: such a header is dropped.
            guard !value.utf8.contains(where: { $0 == .cr || $0 == .lf || $0 == 0 }),
                  name.utf8.allSatisfy(\.isTokenCharacter) else { continue }
            switch kind {
            case .cacheControl: hasCacheControl = true
            case .contentTypeOptions: hasNoSniff = true
            case .frameOptions: hasFrameOptions = true
            case .ownedByServer, .other: break
            }
            bytes.append(contentsOf: name.utf8)
            bytes.append(": ")
            bytes.append(contentsOf: value.utf8)
            bytes.appendLineEnd()
        }
        // Children's data must never sit in a shared cache or be sniffed or framed.
        if !hasCacheControl { bytes.append("Cache-Control: no-store\r\n") }
        if !hasNoSniff { bytes.append("X-Content-Type-Options: nosniff\r\n") }
        if !hasFrameOptions { bytes.append("X-Frame-Options: DENY\r\n") }
        bytes.appendLineEnd()
        if !omitBody && !bodyless { bytes.append(contentsOf: response.body) }
    }

    /// What the writer does with a handler's header, decided by its name (ASCII case-insensitive).
    private enum HeaderKind {
        /// Set by the server itself; a handler's value is ignored.
        case ownedByServer
        case cacheControl, contentTypeOptions, frameOptions
        case other

        private static let owned = ["content-length", "transfer-encoding", "connection", "date", "x-request-id", "keep-alive"]

        init(_ name: String) {
            switch name.utf8.count {
            case 13 where name.equalsLowercased("cache-control"): self = .cacheControl
            case 22 where name.equalsLowercased("x-content-type-options"): self = .contentTypeOptions
            case 15 where name.equalsLowercased("x-frame-options"): self = .frameOptions
            default: self = Self.owned.contains(where: { name.equalsLowercased($0) }) ? .ownedByServer : .other
            }
        }
    }
}

extension String {
    /// Whether this is `lowercased` in any ASCII case, as `lowercased() == lowercased` says for
    /// ASCII text, without making a String.
    func equalsLowercased(_ lowercased: String) -> Bool {
        guard utf8.count == lowercased.utf8.count else { return false }
        return zip(utf8, lowercased.utf8).allSatisfy { byte, lower in
            byte == lower || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") && byte | 0x20 == lower)
        }
    }
}

extension [UInt8] {
    /// Appends text known at compile time (header names, JSON keys).
    mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { append(contentsOf: $0) }
    }

    mutating func appendLineEnd() {
        append(.cr)
        append(.lf)
    }

    /// Appends `value` in decimal, as `String(value)` writes it.
    mutating func appendDecimal(_ value: Int) {
        if value < 0 { append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var divisor: UInt = 1
        while divisor <= magnitude / 10 { divisor *= 10 }
        repeat {
            append(UInt8(ascii: "0") + UInt8(magnitude / divisor))
            magnitude %= divisor
            divisor /= 10
        } while divisor > 0
    }
}

/// The IMF-fixdate for the `Date` header, formatted at most once a second.
enum HTTPDate {
    private static let cache = SecondCache { Array(format($0).utf8) }

    static func now() -> [UInt8] {
        cache.value(for: time(nil))
    }

    static func format(_ seconds: Int) -> String {
        var value = time_t(seconds)
        var parts = tm()
        gmtime_r(&value, &parts)
        var buffer = [Int8](repeating: 0, count: 64)
        let length = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
        return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Text that depends only on the current second (dates in headers and logs), made at most
/// once a second and kept as the bytes that go on the wire.
final class SecondCache: Sendable {
    private let make: @Sendable (Int) -> [UInt8]
    private let cached = Mutex<(second: Int, bytes: [UInt8])>((-1, []))

    init(_ make: @escaping @Sendable (Int) -> [UInt8]) {
        self.make = make
    }

    func value(for second: Int) -> [UInt8] {
        cached.withLock { cached in
            if cached.second != second { cached = (second, make(second)) }
            return cached.bytes
        }
    }
}

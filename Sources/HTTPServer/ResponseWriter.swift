import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Turns a `Response` into the bytes on the wire: status line, the headers the server owns,
/// the handler's headers, then the body.
enum ResponseWriter {
    /// Headers the server sets itself; a handler's values for these are ignored.
    private static let owned: Set<String> = ["content-length", "transfer-encoding", "connection", "date", "x-request-id", "keep-alive"]

    static func serialize(_ response: Response, requestID: String, version: HTTPVersion, keepAlive: Bool, omitBody: Bool) -> [UInt8] {
        let status = response.status
        let bodyless = status.code == 204 || status.code == 304 || status.code < 200
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256 + (omitBody || bodyless ? 0 : response.body.count))
        func line(_ parts: String...) {
            for part in parts { bytes.append(contentsOf: part.utf8) }
            bytes.append(.cr)
            bytes.append(.lf)
        }
        line("HTTP/1.1 ", String(status.code), " ", status.reasonPhrase)
        if !bodyless { line("Content-Length: ", String(response.body.count)) }
        line("Date: ", HTTPDate.now())
        line("X-Request-Id: ", requestID)
        if !keepAlive {
            line("Connection: close")
        } else if version == .http10 {
            line("Connection: keep-alive")
        }
        var hasCacheControl = false, hasNoSniff = false, hasFrameOptions = false
        for (name, value) in response.headers {
            let lower = name.lowercased()
            if owned.contains(lower) { continue }
            // A value with CR or LF would split the response: such a header is dropped.
            guard !value.utf8.contains(where: { $0 == .cr || $0 == .lf || $0 == 0 }),
                  name.utf8.allSatisfy(\.isTokenCharacter) else { continue }
            switch lower {
            case "cache-control": hasCacheControl = true
            case "x-content-type-options": hasNoSniff = true
            case "x-frame-options": hasFrameOptions = true
            default: break
            }
            line(name, ": ", value)
        }
        // Children's data must never sit in a shared cache or be sniffed or framed.
        if !hasCacheControl { line("Cache-Control: no-store") }
        if !hasNoSniff { line("X-Content-Type-Options: nosniff") }
        if !hasFrameOptions { line("X-Frame-Options: DENY") }
        line()
        if !omitBody && !bodyless { bytes.append(contentsOf: response.body) }
        return bytes
    }
}

/// The IMF-fixdate for the `Date` header, formatted at most once a second.
enum HTTPDate {
    private static let cache = SecondCache { format($0) }

    static func now() -> String {
        cache.text(for: time(nil))
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

/// A text that depends only on the current second (dates in headers and logs), made at most
/// once a second.
final class SecondCache: Sendable {
    private let make: @Sendable (Int) -> String
    private let cached = Mutex<(second: Int, text: String)>((-1, ""))

    init(_ make: @escaping @Sendable (Int) -> String) {
        self.make = make
    }

    func text(for second: Int) -> String {
        cached.withLock { cached in
            if cached.second != second { cached = (second, make(second)) }
            return cached.text
        }
    }
}

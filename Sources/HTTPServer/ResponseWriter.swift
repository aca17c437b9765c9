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
        var head = "HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\n"
        if !bodyless { head += "Content-Length: \(response.body.count)\r\n" }
        head += "Date: \(HTTPDate.now())\r\nX-Request-Id: \(requestID)\r\n"
        if !keepAlive {
            head += "Connection: close\r\n"
        } else if version == .http10 {
            head += "Connection: keep-alive\r\n"
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
            head += "\(name): \(value)\r\n"
        }
        // Children's data must never sit in a shared cache or be sniffed or framed.
        if !hasCacheControl { head += "Cache-Control: no-store\r\n" }
        if !hasNoSniff { head += "X-Content-Type-Options: nosniff\r\n" }
        if !hasFrameOptions { head += "X-Frame-Options: DENY\r\n" }
        head += "\r\n"
        var bytes = Array(head.utf8)
        if !omitBody && !bodyless { bytes.append(contentsOf: response.body) }
        return bytes
    }
}

/// The IMF-fixdate for the `Date` header, formatted at most once a second.
enum HTTPDate {
    private static let cache = Mutex<(second: Int, text: String)>((-1, ""))

    static func now() -> String {
        let second = time(nil)
        return cache.withLock { cached in
            if cached.second != second {
                cached = (second, format(second))
            }
            return cached.text
        }
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

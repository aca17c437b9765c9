import Dispatch
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One JSON line per request: time, request id, method, route template, status, duration and
/// the response's declared log fields. Never a body, a query string or a header value.
///
/// Lines are buffered and written in batches (every 100 ms or 32 KiB), so logging costs no
/// system call per request.
public final class RequestLog: Sendable {
    public enum Level: Int, Sendable, Comparable {
        case debug, info, warn, error, off

        public init?(name: String) {
            switch name.lowercased() {
            case "debug": self = .debug
            case "info": self = .info
            case "warn", "warning": self = .warn
            case "error": self = .error
            case "off", "none": self = .off
            default: return nil
            }
        }

        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
    }

    public static let standardOutput = RequestLog(fd: 1, level: .info)

    private let level: Level
    private let output: LogOutput
    /// Dispatch sources are not Sendable; the mutex makes holding this one safe.
    private let timer: Mutex<any DispatchSourceTimer>

    public init(fd: Int32, level: Level) {
        self.level = level
        let output = LogOutput(fd: fd)
        self.output = output
        let source = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "heard.log"))
        source.schedule(deadline: .now() + .milliseconds(100), repeating: .milliseconds(100), leeway: .milliseconds(50))
        source.setEventHandler { output.flush() }
        source.activate()
        timer = Mutex(source)
    }

    func request(method: String, route: String, status: Int, seconds: Double, requestID: String, fields: [String: String]) {
        guard level <= .info else { return }
        var line = "{\"time\":\"\(Self.timestamp())\",\"level\":\"info\",\"request_id\":\"\(requestID)\",\"method\":\(Self.quote(method)),\"route\":\(Self.quote(route)),\"status\":\(status),\"duration_ms\":\(Self.milliseconds(seconds))"
        for (name, value) in fields.sorted(by: { $0.key < $1.key }) {
            line += ",\(Self.quote(name)):\(Self.quote(value))"
        }
        line += "}\n"
        append(line)
    }

    /// A service event (start-up, shutdown, migrations). `fields` must hold no personal data.
    public func event(_ message: String, level eventLevel: Level = .info, fields: [String: String] = [:]) {
        guard level <= eventLevel, eventLevel != .off else { return }
        var line = "{\"time\":\"\(Self.timestamp())\",\"level\":\"\(eventLevel)\",\"message\":\(Self.quote(message))"
        for (name, value) in fields.sorted(by: { $0.key < $1.key }) {
            line += ",\(Self.quote(name)):\(Self.quote(value))"
        }
        line += "}\n"
        append(line)
        flush()
    }

    public func flush() {
        output.flush()
    }

    private func append(_ line: String) {
        if output.append(line) { flush() }
    }

    static func milliseconds(_ seconds: Double) -> String {
        String(format: "%.3f", seconds * 1000)
    }

    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return HTTPDate.iso8601(seconds: Int(now.tv_sec), milliseconds: Int(now.tv_nsec / 1_000_000))
    }

    /// A JSON string literal.
    static func quote(_ value: String) -> String {
        var result = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}

extension HTTPDate {
    static func iso8601(seconds: Int, milliseconds: Int) -> String {
        var value = time_t(seconds)
        var parts = tm()
        gmtime_r(&value, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                      Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                      Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), milliseconds)
    }
}

/// The buffered bytes of the log and the descriptor they go to.
private final class LogOutput: Sendable {
    private let fd: Int32
    private let pending = Mutex<[UInt8]>([])

    init(fd: Int32) {
        self.fd = fd
    }

    /// True when the buffer is full enough to write now.
    func append(_ line: String) -> Bool {
        pending.withLock { buffer in
            buffer.append(contentsOf: line.utf8)
            return buffer.count >= 32 * 1024
        }
    }

    func flush() {
        let bytes = pending.withLock { buffer -> [UInt8] in
            defer { buffer.removeAll(keepingCapacity: true) }
            return buffer
        }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written <= 0 {
                if written < 0 && errno == EINTR { continue }
                return
            }
            offset += written
        }
    }
}

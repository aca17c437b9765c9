import Dispatch
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One JSON line per request: time, request id, method, route template, status, duration and
/// the response's declared log fields. Never a body, a query string or a header value.
///
/// Lines are buffered and written in batches (every 100 ms or 32 KiB) on the log's own queue,
/// so logging costs no system call per request and a slow reader of stdout can never stall an
/// event loop: past `maxPendingBytes` lines are dropped and counted instead.
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
    private let queue = DispatchQueue(label: "heard.log")
    /// Dispatch sources are not Sendable; the mutex makes holding this one safe.
    private let timer: Mutex<any DispatchSourceTimer>

    public init(fd: Int32, level: Level) {
        self.level = level
        let output = LogOutput(fd: fd)
        self.output = output
        let source = DispatchSource.makeTimerSource(queue: queue)
        source.schedule(deadline: .now() + .milliseconds(100), repeating: .milliseconds(100), leeway: .milliseconds(50))
        source.setEventHandler { output.flush() }
        source.activate()
        timer = Mutex(source)
    }

    func request(method: String, route: String, status: Int, seconds: Double, requestID: String, fields: [String: String]) {
        guard level <= .info else { return }
        // The request id was sanitised to [A-Za-z0-9._:-] and needs no escaping.
        var line = "{\"time\":\""
        line.reserveCapacity(200)
        line += Self.timestamp()
        line += "\",\"level\":\"info\",\"request_id\":\""
        line += requestID
        line += "\",\"method\":"
        line += Self.quote(method)
        line += ",\"route\":"
        line += Self.quote(route)
        line += ",\"status\":"
        line += String(status)
        line += ",\"duration_ms\":"
        line += Self.milliseconds(seconds)
        if !fields.isEmpty {
            for (name, value) in fields.sorted(by: { $0.key < $1.key }) {
                line += ",\(Self.quote(name)):\(Self.quote(value))"
            }
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

    /// Writes what is buffered and waits until it is written (shutdown, tests).
    public func flush() {
        queue.sync { output.flush() }
    }

    /// Lines dropped because the output could not keep up.
    public var droppedLines: Int { output.droppedLines }

    private func append(_ line: String) {
        if output.append(line) {
            queue.async { [output] in output.flush() }
        }
    }

    /// Milliseconds with three decimals, formatted without Foundation (this runs per request).
    static func milliseconds(_ seconds: Double) -> String {
        let micros = max(0, Int((seconds * 1_000_000).rounded()))
        let fraction = String(micros % 1000)
        return "\(micros / 1000)." + String(repeating: "0", count: 3 - fraction.utf8.count) + fraction
    }

    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let millis = String(Int(now.tv_nsec / 1_000_000))
        return secondsCache.text(for: Int(now.tv_sec)) + "." + String(repeating: "0", count: 3 - millis.utf8.count) + millis + "Z"
    }

    /// `YYYY-MM-DDTHH:MM:SS` of the current second, formatted once a second.
    private static let secondsCache = SecondCache { HTTPDate.iso8601Seconds($0) }

    /// A JSON string literal.
    static func quote(_ value: String) -> String {
        if value.utf8.allSatisfy({ $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") && $0 < 0x80 }) {
            return "\"" + value + "\""
        }
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
    static func iso8601Seconds(_ seconds: Int) -> String {
        var value = time_t(seconds)
        var parts = tm()
        gmtime_r(&value, &parts)
        var buffer = [Int8](repeating: 0, count: 32)
        let length = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S", &parts)
        return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// The buffered bytes of the log and the descriptor they go to. Only the log's queue writes.
private final class LogOutput: Sendable {
    static let flushThreshold = 32 * 1024
    static let maxPendingBytes = 8 * 1024 * 1024

    private struct State {
        var bytes: [UInt8] = []
        var flushScheduled = false
        var dropped = 0
    }

    private let fd: Int32
    private let state = Mutex(State())

    init(fd: Int32) {
        self.fd = fd
    }

    var droppedLines: Int { state.withLock { $0.dropped } }

    /// Buffers `line`; true when the caller should schedule a flush.
    func append(_ line: String) -> Bool {
        state.withLock { state in
            guard state.bytes.count + line.utf8.count <= Self.maxPendingBytes else {
                state.dropped += 1
                return false
            }
            state.bytes.append(contentsOf: line.utf8)
            guard state.bytes.count >= Self.flushThreshold, !state.flushScheduled else { return false }
            state.flushScheduled = true
            return true
        }
    }

    /// Blocking write of everything buffered: call on the log queue only.
    func flush() {
        let bytes = state.withLock { state -> [UInt8] in
            defer {
                state.bytes.removeAll(keepingCapacity: state.bytes.count <= 256 * 1024)
                state.flushScheduled = false
            }
            return state.bytes
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

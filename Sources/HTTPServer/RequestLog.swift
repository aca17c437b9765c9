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
        let time = Self.currentTime()
        let sortedFields = fields.isEmpty ? [] : fields.sorted(by: { $0.key < $1.key })
        // Written straight into bytes: no String per line.
        appendLine { line in
            line.append("{\"time\":\"")
            Self.appendTimestamp(time, to: &line)
            // The request id was sanitised to [A-Za-z0-9._:-] and needs no escaping.
            line.append("\",\"level\":\"info\",\"request_id\":\"")
            line.append(contentsOf: requestID.utf8)
            line.append("\",\"method\":")
            Self.appendQuoted(method, to: &line)
            line.append(",\"route\":")
            Self.appendQuoted(route, to: &line)
            line.append(",\"status\":")
            line.appendDecimal(status)
            line.append(",\"duration_ms\":")
            Self.appendMilliseconds(seconds, to: &line)
            for (name, value) in sortedFields {
                line.append(",")
                Self.appendQuoted(name, to: &line)
                line.append(":")
                Self.appendQuoted(value, to: &line)
            }
            line.append("}\n")
        }
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
        appendLine { $0.append(contentsOf: line.utf8) }
    }

    /// Lets `write` make one line, then adds it to the buffer, and schedules a flush when it is
    /// due. The line is made before the buffer's lock is taken, so the lock is held for a copy
    /// alone: every event loop's requests log through it, and a lock held while a line is
    /// formatted, by a thread the kernel then switched out, kept the others spinning (eight
    /// loops on two cores answered a fifth of what four did).
    private func appendLine(_ write: (inout [UInt8]) -> Void) {
        var line: [UInt8] = []
        line.reserveCapacity(256)
        write(&line)
        if output.append({ $0.append(contentsOf: line) }) {
            queue.async { [output] in output.flush() }
        }
    }

    /// Milliseconds with three decimals, formatted without Foundation (this runs per request).
    static func milliseconds(_ seconds: Double) -> String {
        var bytes: [UInt8] = []
        appendMilliseconds(seconds, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    static func appendMilliseconds(_ seconds: Double, to bytes: inout [UInt8]) {
        let micros = max(0, Int((seconds * 1_000_000).rounded()))
        bytes.appendDecimal(micros / 1000)
        bytes.append(UInt8(ascii: "."))
        appendThreeDigits(micros % 1000, to: &bytes)
    }

    private static func appendThreeDigits(_ value: Int, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "0") + UInt8(value / 100))
        bytes.append(UInt8(ascii: "0") + UInt8(value / 10 % 10))
        bytes.append(UInt8(ascii: "0") + UInt8(value % 10))
    }

    static func timestamp() -> String {
        var bytes: [UInt8] = []
        appendTimestamp(currentTime(), to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func currentTime() -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return now
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    private static func appendTimestamp(_ time: timespec, to bytes: inout [UInt8]) {
        bytes.append(contentsOf: secondsCache.value(for: Int(time.tv_sec)))
        bytes.append(UInt8(ascii: "."))
        appendThreeDigits(Int(time.tv_nsec / 1_000_000), to: &bytes)
        bytes.append(UInt8(ascii: "Z"))
    }

    /// `YYYY-MM-DDTHH:MM:SS` of the current second, formatted once a second.
    private static let secondsCache = SecondCache { Array(HTTPDate.iso8601Seconds($0).utf8) }

    /// Appends `value` as a JSON string literal.
    private static func appendQuoted(_ value: String, to bytes: inout [UInt8]) {
        if value.utf8.allSatisfy(isPlainInJSON) {
            bytes.append(UInt8(ascii: "\""))
            bytes.append(contentsOf: value.utf8)
            bytes.append(UInt8(ascii: "\""))
        } else {
            bytes.append(contentsOf: quote(value).utf8)
        }
    }

    /// Printable ASCII other than `"` and `\\`: copied into a JSON string as it is.
    private static func isPlainInJSON(_ byte: UInt8) -> Bool {
        byte >= 0x20 && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") && byte < 0x80
    }

    /// A JSON string literal.
    static func quote(_ value: String) -> String {
        if value.utf8.allSatisfy(isPlainInJSON) {
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
    /// `YYYY-MM-DDTHH:MM:SS` (UTC) of `seconds` since 1970, the year always four digits
    /// (`0017-06-29T...`), as RFC 3339 requires. For the log's timestamps and JSON dates.
    static func iso8601Seconds(_ seconds: Int) -> String {
        var value = time_t(seconds)
        var parts = tm()
        gmtime_r(&value, &parts)
        return String(unsafeUninitializedCapacity: 19) { out in
            var at = 0
            func put(_ value: Int32, digits: Int) {
                var divisor: Int32 = 1
                for _ in 1..<digits { divisor *= 10 }
                var rest = max(0, value)
                while divisor > 0 {
                    out[at] = UInt8(ascii: "0") + UInt8(rest / divisor % 10)
                    rest %= divisor
                    divisor /= 10
                    at += 1
                }
            }
            func put(_ character: Unicode.Scalar) {
                out[at] = UInt8(character.value)
                at += 1
            }
            put(parts.tm_year + 1900, digits: 4); put("-"); put(parts.tm_mon + 1, digits: 2); put("-"); put(parts.tm_mday, digits: 2)
            put("T"); put(parts.tm_hour, digits: 2); put(":"); put(parts.tm_min, digits: 2); put(":"); put(parts.tm_sec, digits: 2)
            return at
        }
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

    /// Lets `write` append one line to the buffer; true when the caller should schedule a flush.
    /// A line that would take the buffer past `maxPendingBytes` is taken back out and counted.
    func append(_ write: (inout [UInt8]) -> Void) -> Bool {
        state.withLock { state in
            let start = state.bytes.count
            write(&state.bytes)
            guard state.bytes.count <= Self.maxPendingBytes else {
                state.bytes.removeLast(state.bytes.count - start)
                state.dropped += 1
                return false
            }
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

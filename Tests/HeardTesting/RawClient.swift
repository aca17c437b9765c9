import Foundation
import HTTPServer
import Synchronization
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A server on a free loopback port with the given routes; stopped by `stop()`.
public struct TestServer: Sendable {
    public let server: Server
    public let port: Int
    public let log: CapturedLog

    public static func start(
        configure: (inout ServerConfiguration) -> Void = { _ in },
        cors: CORSPolicy = CORSPolicy(),
        routes: (inout RouterBuilder) -> Void
    ) throws -> TestServer {
        var configuration = ServerConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.sweepInterval = 0.1
        configure(&configuration)
        var builder = RouterBuilder()
        routes(&builder)
        let log = try CapturedLog()
        let server = Server(configuration: configuration, responder: builder.build(cors: cors), log: log.requestLog)
        try server.start()
        return TestServer(server: server, port: server.port, log: log)
    }

    public func client() throws -> RawClient { try RawClient(port: port) }

    public func stop() async { await server.shutdown() }
}

/// The request log written to a pipe that a background thread drains, so tests can read what
/// would reach stdout (and the server never waits on a reader).
public final class CapturedLog: Sendable {
    public let requestLog: RequestLog
    private let captured = CapturedBytes()

    public init() throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw POSIXError(.EIO) }
        let readEnd = fds[0]
        requestLog = RequestLog(fd: fds[1], level: .info)
        let thread = Thread { [captured] in
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = read(readEnd, &buffer, buffer.count)
                if count <= 0 { break }
                captured.append(buffer[0..<count])
            }
        }
        thread.start()
    }

    /// Everything logged so far.
    public func text() -> String {
        requestLog.flush()
        // The reader thread picks up what was just written almost at once.
        usleep(20_000)
        return captured.text
    }
}

private final class CapturedBytes: Sendable {
    private let bytes = Mutex<[UInt8]>([])
    func append(_ more: ArraySlice<UInt8>) { bytes.withLock { $0.append(contentsOf: more) } }
    var text: String { bytes.withLock { String(decoding: $0, as: UTF8.self) } }
}

public struct RawResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    public var text: String { String(decoding: body, as: UTF8.self) }

    /// The status line and headers (without the blank line after them); the body is left empty.
    init?(head: ArraySlice<UInt8>) {
        var lines = String(decoding: head, as: UTF8.self).components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { return nil }
        self.status = status
        headers = lines.compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        body = []
    }

    /// Whether a body follows the head (HEAD answers aside).
    var hasBody: Bool { !(status == 100 || status == 204 || status == 304) }

    public var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
    }
}

/// A blocking TCP client that speaks raw bytes, so tests can send anything a parser must
/// reject, split anywhere, and read responses exactly as the server wrote them.
public final class RawClient {
    public let fd: Int32
    private var buffer: [UInt8] = []

    public init(port: Int, receiveTimeout: Int = 5) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { Glibc.close(fd); throw POSIXError(.ECONNREFUSED) }
        var timeout = timeval(tv_sec: receiveTimeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { Glibc.close(fd) }

    public func send(_ text: String) { send(Array(text.utf8)) }

    public func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return }
            offset += sent
        }
    }

    /// Reads more bytes; false on EOF, timeout or error.
    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = recv(fd, &chunk, chunk.count, 0)
        if count <= 0 { return false }
        buffer.append(contentsOf: chunk[0..<count])
        return true
    }

    /// Reads one response (`Content-Length` framed, or to EOF). Nil if the connection closed first.
    public func readResponse(forHead: Bool = false) -> RawResponse? {
        var headEnd: Int?
        while headEnd == nil {
            headEnd = Self.find([13, 10, 13, 10], in: buffer)
            if headEnd == nil && !fill() { return nil }
        }
        guard var response = RawResponse(head: buffer[0..<headEnd!]) else { return nil }
        buffer.removeFirst(headEnd! + 4)
        if !response.hasBody || forHead { return response }
        if let length = response.header("Content-Length").flatMap(Int.init) {
            while buffer.count < length { if !fill() { break } }
            response.body = Array(buffer.prefix(length))
            buffer.removeFirst(min(length, buffer.count))
        } else {
            while fill() {}
            response.body = buffer
            buffer = []
        }
        return response
    }

    /// True if the server closed the connection (EOF) before the timeout.
    public func isClosedByServer() -> Bool {
        if !buffer.isEmpty { return false }
        var chunk = [UInt8](repeating: 0, count: 1024)
        while true {
            let count = recv(fd, &chunk, chunk.count, 0)
            if count == 0 { return true }
            if count < 0 { return errno == ECONNRESET }
            buffer.append(contentsOf: chunk[0..<count])
            return false
        }
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for index in 0...(haystack.count - needle.count) where haystack[index] == needle[0] {
            if Array(haystack[index..<index + needle.count]) == needle { return index }
        }
        return nil
    }
}

extension XCTestCase {
    /// One request, one response, on a fresh connection.
    public func roundTrip(_ port: Int, _ raw: String) throws -> RawResponse {
        let client = try RawClient(port: port)
        client.send(raw)
        return try XCTUnwrap(client.readResponse(), "no response to \(raw.debugDescription)")
    }
}

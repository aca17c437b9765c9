import Dispatch
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public struct ServerError: Error, CustomStringConvertible {
    public let description: String
}

/// What every connection shares: configuration, the responder, logs and metrics.
final class ServerCore: Sendable {
    let configuration: ServerConfiguration
    let responder: any Responder
    let metrics: Metrics
    let log: RequestLog
    let openConnections = Counter()
    /// Open connections by client address, for `maxConnectionsPerAddress`.
    private let connectionsByAddress = Mutex<[String: Int]>([:])

    init(configuration: ServerConfiguration, responder: any Responder, metrics: Metrics, log: RequestLog) {
        self.configuration = configuration
        self.responder = responder
        self.metrics = metrics
        self.log = log
        metrics.register(gauge: "heard_http_open_connections", help: "Open client connections.") { [openConnections] in
            Double(openConnections.value)
        }
        metrics.register(gauge: "heard_log_lines_dropped", help: "Log lines dropped because stdout could not keep up.") { [log] in
            Double(log.droppedLines)
        }
    }

    /// `loop`: the index of the event loop the request came in on.
    func observe(method: String, response: Response, requestID: String, seconds: Double, loop: Int) {
        let route = response.route ?? "unmatched"
        let method = Metrics.methodLabel(method)
        metrics.observe(method: method, route: route, status: response.status, seconds: seconds, shard: loop)
        log.request(method: method, route: route, status: response.status.code, seconds: seconds,
                    requestID: requestID, fields: response.logFields)
    }

    /// Counts a new connection from `address`; false (and nothing counted) when that address
    /// already has `maxConnectionsPerAddress` open.
    func admitConnection(from address: String) -> Bool {
        let limit = configuration.maxConnectionsPerAddress
        return connectionsByAddress.withLock { counts in
            let open = counts[address, default: 0]
            guard open < limit else { return false }
            counts[address] = open + 1
            return true
        }
    }

    func connectionClosed(from address: String) {
        connectionsByAddress.withLock { counts in
            let open = counts[address, default: 1] - 1
            counts[address] = open > 0 ? open : nil
        }
        openConnections.add(-1)
    }
}

/// The HTTP/1.1 server: a listening socket accepted on its own queue, connections spread over a
/// few event-loop queues.
public final class Server: Sendable {
    private let core: ServerCore
    private let loops: [EventLoop]
    private let acceptQueue = DispatchQueue(label: "heard.accept")
    private let listener = Mutex<Listener?>(nil)
    private let boundPort = Atomic<Int>(0)

    /// - Parameter loopQueues: the event loops' serial queues, from `makeLoopQueues` (so that
    ///   the caller can also hand them to what handlers wait on, such as a database pool's
    ///   lanes); by default the server makes `configuration.loopCount` of its own.
    public init(configuration: ServerConfiguration, responder: any Responder, metrics: Metrics = Metrics(),
                log: RequestLog = .standardOutput, loopQueues: [DispatchQueue]? = nil) {
        core = ServerCore(configuration: configuration, responder: responder, metrics: metrics, log: log)
        let queues = loopQueues.flatMap { $0.isEmpty ? nil : $0 } ?? Self.makeLoopQueues(count: configuration.loopCount)
        loops = queues.enumerated().map { EventLoop(queue: $1, index: $0, sweepInterval: configuration.sweepInterval) }
    }

    /// `count` (at least one) serial queues for event loops. Handlers' tasks run on them.
    public static func makeLoopQueues(count: Int) -> [DispatchQueue] {
        (0..<max(1, count)).map { DispatchQueue(label: "heard.loop.\($0)") }
    }

    /// The port actually bound (useful with port 0).
    public var port: Int { boundPort.load(ordering: .relaxed) }

    /// Binds, listens and starts accepting. Returns at once.
    public func start() throws {
        signal(SIGPIPE, SIG_IGN)
        let configuration = core.configuration
        let fd = try Self.listeningSocket(host: configuration.host, port: configuration.port)
        boundPort.store(Self.localPort(of: fd), ordering: .relaxed)
        let listener = Listener(fd: fd, queue: acceptQueue, core: core, loops: loops)
        self.listener.withLock { $0 = listener }
        listener.start()
    }

    /// Graceful shutdown: stop accepting, close idle connections, let in-flight requests finish
    /// (at most `shutdownTimeout`), then close whatever is left.
    public func shutdown() async {
        if let listener = listener.withLock({ $0.take() }) {
            acceptQueue.sync { listener.stop() }
        }
        for loop in loops { loop.forEachConnection { $0.drain() } }
        let deadline = Date().addingTimeInterval(core.configuration.shutdownTimeout)
        while core.openConnections.value > 0 && Date() < deadline {
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        for loop in loops { loop.forEachConnection { $0.close() } }
        let hardDeadline = Date().addingTimeInterval(1)
        while core.openConnections.value > 0 && Date() < hardDeadline {
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        for loop in loops { loop.stop() }
        core.log.flush()
    }

    /// Waits for SIGTERM or SIGINT; returns the signal that came. Later ones are ignored.
    public static func waitForTerminationSignal() async -> Int32 {
        let (signals, continuation) = AsyncStream<Int32>.makeStream()
        let queue = DispatchQueue(label: "heard.signals")
        var sources: [any DispatchSourceSignal] = []
        for signalNumber in [SIGTERM, SIGINT] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
            source.setEventHandler { continuation.yield(signalNumber) }
            source.activate()
            sources.append(source)
        }
        var iterator = signals.makeAsyncIterator()
        let received = await iterator.next() ?? SIGTERM
        withExtendedLifetime(sources) {}
        return received
    }

    private static func listeningSocket(host: String, port: Int) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &result)
        guard status == 0, let first = result else {
            throw ServerError(description: "cannot resolve HOST \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(result) }
        var lastError = ""
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            candidate = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            if fd < 0 { continue }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            if bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0, listen(fd, 1024) == 0 {
                return fd
            }
            lastError = String(cString: strerror(errno))
            Glibc.close(fd)
        }
        throw ServerError(description: "cannot listen on \(host):\(port): \(lastError)")
    }

    private static func localPort(of fd: Int32) -> Int {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return withUnsafePointer(to: &storage) { pointer in
            if pointer.pointee.ss_family == sa_family_t(AF_INET6) {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
    }
}

/// The listening socket.
///
/// `@unchecked Sendable`: a wrapper around the listening file descriptor; every use of it goes
/// through the accept queue (the source's handlers target it; `stop` is called with `sync`).
final class Listener: @unchecked Sendable {
    private let fd: Int32
    private let source: DispatchSourceRead
    private let queue: DispatchQueue
    private let core: ServerCore
    private let loops: [EventLoop]
    private var nextLoop = 0
    private var paused = false

    init(fd: Int32, queue: DispatchQueue, core: ServerCore, loops: [EventLoop]) {
        self.fd = fd
        self.queue = queue
        self.core = core
        self.loops = loops
        source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
    }

    func start() {
        source.setEventHandler { [self] in acceptAll() }
        source.setCancelHandler { [fd] in _ = Glibc.close(fd) }
        source.activate()
    }

    func stop() {
        if paused { source.resume() }
        paused = false
        source.cancel()
    }

    /// A listening socket reports readiness once per batch: accept until EAGAIN (capped, so
    /// one burst cannot starve the queue).
    private func acceptAll() {
        for _ in 0..<64 {
            var peer = sockaddr_storage()
            var peerLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let client = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(fd, $0, &peerLength) }
            }
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                if errno == EMFILE || errno == ENFILE {
                    // Out of descriptors: back off instead of spinning on a readable listener.
                    paused = true
                    source.suspend()
                    queue.asyncAfter(deadline: .now() + .milliseconds(100)) { [self] in
                        if paused { paused = false; source.resume() }
                    }
                }
                return
            }
            if core.openConnections.value >= core.configuration.maxConnections {
                refuse(client, detail: "The server has too many open connections.")
                continue
            }
            let address = Self.text(of: peer)
            guard core.admitConnection(from: address) else {
                refuse(client, detail: "Your address has too many open connections.")
                continue
            }
            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            var one: Int32 = 1
            setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            core.openConnections.add(1)
            let loop = loops[nextLoop % loops.count]
            nextLoop &+= 1
            let core = core
            loop.queue.async {
                Connection(fd: client, address: address, loop: loop, core: core).start()
            }
        }
    }

    /// Answers 503 on a connection not taken on, and closes it.
    private func refuse(_ client: Int32, detail: String) {
        let busy = ResponseWriter.serialize(
            HTTPError(.serviceUnavailable, detail: detail, headers: ["Retry-After": "1"]).response,
            requestID: RequestID.generate(), version: .http11, keepAlive: false, omitBody: false)
        _ = busy.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        Glibc.close(client)
    }

    /// The peer's IP address as text; an IPv4 address mapped into IPv6 reads as IPv4.
    static func text(of address: sockaddr_storage) -> String {
        var address = address
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        withUnsafePointer(to: &address) { pointer in
            switch Int32(pointer.pointee.ss_family) {
            case AF_INET:
                pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { ipv4 in
                    var bytes = ipv4.pointee.sin_addr
                    _ = inet_ntop(AF_INET, &bytes, &text, socklen_t(text.count))
                }
            case AF_INET6:
                pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { ipv6 in
                    var bytes = ipv6.pointee.sin6_addr
                    _ = inet_ntop(AF_INET6, &bytes, &text, socklen_t(text.count))
                }
            default:
                break
            }
        }
        let result = String(decoding: text.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return result.hasPrefix("::ffff:") && result.contains(".") ? String(result.dropFirst(7)) : result
    }
}

import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One accepted socket and its HTTP/1.1 state machine.
///
/// `@unchecked Sendable`: a wrapper around a socket file descriptor. Every use of it and of its
/// mutable state happens on its event loop's serial queue (the poller calls `ready` on that
/// queue, and handlers' tasks run on the loop's executor); `dispatchPrecondition` guards it.
final class Connection: ReadinessHandler, @unchecked Sendable {
    private enum Phase {
        /// Waiting for, or reading, the next request.
        case reading
        /// A handler is producing the response; reading is paused (one request at a time).
        case processing
        /// The response did not fit in the socket buffer; the write source finishes it.
        case writing
        /// An error answer was sent and our side shut down; unread input is drained, then closed.
        case lingering(since: UInt64)
        case closed
    }

    private let fd: Int32
    /// The client's IP address, as text.
    private let address: String
    private let loop: EventLoop
    private let core: ServerCore
    private var parser: HTTPParser
    private var phase = Phase.reading
    /// The socket's registration with the loop's poller.
    private var token: UInt64 = 0
    /// Reading is paused: the socket is not watched for input.
    private var readPaused = false
    /// A response did not fit in the socket buffer: the socket is watched for room.
    private var awaitingWritable = false
    private var output: [UInt8] = []
    private var outputOffset = 0
    private var closeAfterWrite = false
    private var draining = false
    private var inProcessInput = false
    private var moreInput = false
    private var lastActivity: UInt64
    /// When the first byte of the request being read arrived.
    private var requestStarted: UInt64?
    /// When the head of the request being read was complete and its body began.
    private var bodyStarted: UInt64?

    init(fd: Int32, address: String, loop: EventLoop, core: ServerCore) {
        self.fd = fd
        self.address = address
        self.loop = loop
        self.core = core
        self.parser = HTTPParser(limits: core.configuration.parserLimits)
        self.lastActivity = DispatchTime.now().uptimeNanoseconds
    }

    /// Call on the loop's queue.
    func start() {
        loop.register(self)
        token = loop.poller.register(fd, .readable, self)
    }

    /// The poller's report, on the loop's queue.
    func ready(_ readiness: Readiness) {
        if readiness.failed || (readiness.hungUp && readPaused) {
            // Reset, or closed both ways while we are not reading: nothing more to do.
            close()
            return
        }
        if readiness.writable, case .writing = phase { flush() }
        if case .closed = phase { return }  // the write failed and closed it
        // Closed both ways while reading (lingering after an error answer, say): what is left is
        // read, then the end, and the connection closes with a FIN, not a reset.
        if readiness.readable || readiness.hungUp, !readPaused { readable() }
    }

    // MARK: - Reading

    /// Bytes of later requests kept while one is answered; past this, reading pauses. That is
    /// the backpressure against a pipelining flood, and it costs nothing for ordinary clients,
    /// which send nothing while they wait (pausing reading per request would cost an
    /// `epoll_ctl` each time).
    private static let readAheadLimit = 64 * 1024

    private func readable() {
        let count = withUnsafeTemporaryAllocation(byteCount: 64 * 1024, alignment: 16) { buffer -> Int in
            let count = read(fd, buffer.baseAddress, buffer.count)
            if count > 0 {
                switch phase {
                case .reading, .processing, .writing:
                    parser.append(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
                case .lingering, .closed:
                    break  // discarding what the client still sends after our error answer
                }
            }
            return count
        }
        if count > 0 {
            let now = DispatchTime.now().uptimeNanoseconds
            lastActivity = now
            switch phase {
            case .reading:
                if requestStarted == nil { requestStarted = now }
                processInput()
            case .processing, .writing:
                if parser.buffer.count >= Self.readAheadLimit { suspendReading() }
            case .lingering, .closed:
                break
            }
        } else if count == 0 {
            switch phase {
            case .processing, .writing:
                // The client half-closed while waiting: it still gets its answer, then we close.
                closeAfterWrite = true
                suspendReading()
            default:
                close()
            }
        } else if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
            close()
        }
    }

    /// Parses and dispatches buffered requests, one at a time.
    ///
    /// A handler that never suspends finishes inline (see `dispatch`), and its response's
    /// completion asks for the next request; that re-entry only sets `moreInput`, and this loop
    /// takes the next request, so a pipelining client cannot grow the stack.
    private func processInput() {
        if inProcessInput {
            moreInput = true
            return
        }
        inProcessInput = true
        defer { inProcessInput = false }
        repeat {
            moreInput = false
            guard case .reading = phase else { return }
            let parsed: HTTPParser.ParsedRequest?
            do {
                parsed = try parser.nextRequest()
            } catch {
                sendError(HTTPError(error.status, detail: error.detail), method: nil, requestID: nil)
                return
            }
            if parser.pendingContinue {
                parser.continueSent()
                let interim = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)
                let sent = interim.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if sent != interim.count { close(); return }
            }
            guard let parsed else {
                if bodyStarted == nil, parser.bodyBytesReceived != nil {
                    bodyStarted = DispatchTime.now().uptimeNanoseconds
                }
                resumeReading()
                return
            }
            bodyStarted = nil
            dispatch(parsed)
        } while moreInput
    }

    private func dispatch(_ parsed: HTTPParser.ParsedRequest) {
        phase = .processing
        let head = parsed.head
        let requestID = RequestID.sanitized(head.headers["X-Request-Id"]) ?? RequestID.generate()
        var request: Request
        do {
            request = try Request(method: head.method, target: head.target, headers: head.headers,
                                  body: parsed.body, version: head.version, requestID: requestID)
            request.clientAddress = address
        } catch {
            finish(error.response, head: head, requestID: requestID, started: DispatchTime.now().uptimeNanoseconds)
            return
        }
        let started = DispatchTime.now().uptimeNanoseconds
        core.metrics.requestStarted()
        let responder = core.responder
        // The handler starts inline, on this queue, and only a real suspension (a database
        // call) costs a hop; it then resumes on this loop's executor, so `finish` always runs on
        // the connection's queue.
        Self.startTask(on: loop.executor) { [self] in
            let response = await responder.respond(to: request)
            dispatchPrecondition(condition: .onQueue(loop.queue))
            core.metrics.requestFinished()
            finish(response, head: head, requestID: requestID, started: started)
        }
    }

    private static func startTask(on executor: QueueExecutor, _ operation: sending @escaping @isolated(any) () async -> Void) {
        #if compiler(>=6.2)
        Task.immediate(executorPreference: executor, operation: operation)
        #else
        Task(executorPreference: executor, operation: operation)
        #endif
    }

    // MARK: - Writing

    private func finish(_ response: Response, head: HTTPParser.Head, requestID: String, started: UInt64) {
        let duration = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        core.observe(method: head.method, response: response, requestID: requestID, seconds: duration, loop: loop.index)
        guard case .processing = phase else { return }  // the client went away meanwhile
        let keepAlive = head.keepAlive && !draining && !closeAfterWrite
        output.removeAll(keepingCapacity: true)
        ResponseWriter.serialize(
            response, requestID: requestID, version: head.version, keepAlive: keepAlive,
            omitBody: head.method == "HEAD", into: &output)
        outputOffset = 0
        closeAfterWrite = !keepAlive
        phase = .writing
        flush()
    }

    /// Answers a request that could not be read (400, 408, 413, 431...) and closes.
    private func sendError(_ error: HTTPError, method: String?, requestID: String?) {
        var response = error.response
        response.route = "unmatched"
        let requestID = requestID ?? RequestID.generate()
        core.observe(method: method ?? "-", response: response, requestID: requestID, seconds: 0, loop: loop.index)
        suspendReading()
        output.removeAll(keepingCapacity: true)
        ResponseWriter.serialize(response, requestID: requestID, version: .http11, keepAlive: false, omitBody: false, into: &output)
        outputOffset = 0
        closeAfterWrite = true
        phase = .writing
        flush()
    }

    private func flush() {
        while outputOffset < output.count {
            let sent = output.withUnsafeBytes { bytes in
                send(fd, bytes.baseAddress! + outputOffset, bytes.count - outputOffset, Int32(MSG_NOSIGNAL))
            }
            if sent > 0 {
                outputOffset += sent
                lastActivity = DispatchTime.now().uptimeNanoseconds
            } else if sent < 0 && errno == EINTR {
                continue
            } else if sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                awaitWritable()
                return
            } else {
                close()
                return
            }
        }
        stopAwaitingWritable()
        output.removeAll(keepingCapacity: output.count <= 64 * 1024)
        outputOffset = 0
        responseWritten()
    }

    private func responseWritten() {
        if closeAfterWrite {
            linger()
            return
        }
        phase = .reading
        requestStarted = parser.hasPartialRequest ? DispatchTime.now().uptimeNanoseconds : nil
        processInput()  // a pipelined request may already be buffered
    }

    /// Half-closes and drains: closing with unread input would send RST and could destroy the
    /// answer before the client reads it.
    private func linger() {
        shutdown(fd, Int32(SHUT_WR))
        phase = .lingering(since: DispatchTime.now().uptimeNanoseconds)
        resumeReading()
    }

    private func awaitWritable() {
        guard !awaitingWritable else { return }
        awaitingWritable = true
        updateInterest()
    }

    private func stopAwaitingWritable() {
        guard awaitingWritable else { return }
        awaitingWritable = false
        updateInterest()
    }

    // MARK: - Flow control

    private func suspendReading() {
        guard !readPaused else { return }
        readPaused = true
        updateInterest()
    }

    private func resumeReading() {
        guard readPaused else { return }
        readPaused = false
        updateInterest()
    }

    private func updateInterest() {
        if case .closed = phase { return }
        var interest: Interest = []
        if !readPaused { interest.insert(.readable) }
        if awaitingWritable { interest.insert(.writable) }
        loop.poller.modify(fd, token: token, interest)
    }

    // MARK: - Timeouts and shutdown

    /// Called by the loop's timer: closes idle connections, answers slow clients with 408.
    func sweep(now: UInt64) {
        let configuration = core.configuration
        func elapsed(_ since: UInt64) -> Double { Double(now &- since) / 1e9 }
        switch phase {
        case .reading:
            if let started = requestStarted, parser.hasPartialRequest {
                let late = parser.isReadingHead
                    ? elapsed(started) > configuration.headerTimeout
                    : elapsed(lastActivity) > configuration.bodyTimeout || tooSlow(now: now)
                if late {
                    sendError(HTTPError(.requestTimeout, detail: "The request took too long to arrive."), method: nil, requestID: nil)
                }
            } else if draining || elapsed(lastActivity) > configuration.idleTimeout {
                close()
            }
        case .writing:
            if elapsed(lastActivity) > configuration.writeTimeout { close() }
        case .lingering(let since):
            if elapsed(since) > 2 { close() }
        case .processing, .closed:
            break
        }
    }

    /// Whether the body has arrived slower than the minimum data rate since its head was in.
    private func tooSlow(now: UInt64) -> Bool {
        guard let bodyStarted, let received = parser.bodyBytesReceived else { return false }
        let seconds = Double(now &- bodyStarted) / 1e9
        let configuration = core.configuration
        return seconds > configuration.bodyRateGrace && Double(received) < Double(configuration.minBodyBytesPerSecond) * seconds
    }

    /// Graceful shutdown: an idle connection closes now; a busy one after its current response.
    func drain() {
        draining = true
        switch phase {
        case .reading where !parser.hasPartialRequest, .lingering: close()
        default: break
        }
    }

    /// Closes at once: the socket is no longer watched, its descriptor is closed, and a handler
    /// still at work finds the connection gone when it finishes.
    func close() {
        if case .closed = phase { return }
        phase = .closed
        loop.unregister(self)
        loop.poller.unregister(fd, token: token)
        Glibc.close(fd)
        core.connectionClosed(from: address)
    }
}

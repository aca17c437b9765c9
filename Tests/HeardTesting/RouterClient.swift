import Dispatch
@testable import HTTPServer
import Synchronization

/// Calls a responder (Heard's `Router`) directly, without a socket: the request is built as a
/// connection builds it, the handler runs on a serial queue as it runs on an event loop, and
/// the answer is written by the server's own `ResponseWriter` and read back, so status, headers
/// (those the server adds among them) and body are exactly what a client would read.
/// Sockets, parsing and connection handling are the HTTP server's own tests.
public struct RouterClient: Sendable {
    public let responder: any Responder
    /// The event loops' queues: handlers called here run on the first, as on a connection of
    /// it. Give them to the database pool as its lanes and to a `Server`, as `heard serve` does.
    public let loops: [DispatchQueue]
    private let executor: QueueExecutor
    /// The peer address a connection would give the request: loopback, as for a local client.
    public var clientAddress = "127.0.0.1"

    public init(_ responder: any Responder, loops: [DispatchQueue] = Server.makeLoopQueues(count: 1)) {
        self.responder = responder
        self.loops = loops
        executor = QueueExecutor(queue: loops[0])
    }

    /// One request and its answer. Blocks the caller until the handler is done: the handler
    /// runs on `queue`, never on the caller's thread, so waiting cannot starve it.
    public func send(_ method: String, _ target: String, headers: [(String, String)] = [], body: [UInt8]? = nil) -> RawResponse {
        var fields = HTTPHeaders()
        fields.add(name: "Host", value: "heard.test")
        for (name, value) in headers { fields.add(name: name, value: value) }
        if let body { fields.add(name: "Content-Length", value: String(body.count)) }
        let requestID = RequestID.sanitized(fields["X-Request-Id"]) ?? RequestID.generate()
        let response: Response
        do {
            var request = try Request(method: method, target: target, headers: fields, body: body ?? [], requestID: requestID)
            request.clientAddress = clientAddress
            let answer = Answer()
            Task(executorPreference: executor) { [responder] in
                answer.set(await responder.respond(to: request))
            }
            response = answer.wait()
        } catch {
            response = error.response
        }
        let bytes = ResponseWriter.serialize(response, requestID: requestID, version: .http11, keepAlive: true,
                                             omitBody: method == "HEAD")
        let headEnd = RawClient.find([13, 10, 13, 10], in: bytes)!
        var raw = RawResponse(head: bytes[0..<headEnd])!
        if raw.hasBody { raw.body = Array(bytes[(headEnd + 4)...]) }
        return raw
    }
}

private final class Answer: Sendable {
    private let response = Mutex<Response?>(nil)
    private let done = DispatchSemaphore(value: 0)

    func set(_ value: Response) {
        response.withLock { $0 = value }
        done.signal()
    }

    func wait() -> Response {
        done.wait()
        return response.withLock { $0! }
    }
}

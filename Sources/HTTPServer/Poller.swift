import CEpoll
import Dispatch
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What a socket is watched for.
struct Interest: OptionSet, Sendable {
    let rawValue: UInt32
    static let readable = Interest(rawValue: 1 << 0)
    static let writable = Interest(rawValue: 1 << 1)
}

/// What a socket reported.
struct Readiness: Sendable {
    /// Input is waiting, or its end, or an error a read will report.
    var readable: Bool
    var writable: Bool
    /// Both directions are shut (the peer closed after we shut our side): what is left to read
    /// can still be read, then the end. Reported whatever the interest.
    var hungUp: Bool
    /// The connection failed (reset): nothing more can be read or written. Reported whatever
    /// the interest.
    var failed: Bool
}

/// What a poller tells of a socket's readiness. Called on the poller's queue only.
protocol ReadinessHandler: AnyObject, Sendable {
    func ready(_ readiness: Readiness)
}

/// Readiness for one event loop's sockets: register, modify, unregister (ARCHITECTURE.md's
/// "small protocol"), answered by epoll on a thread of the loop's own.
///
/// Why not a `DispatchSource` per socket: on Linux, libdispatch watches every source from one
/// manager thread with `EPOLLONESHOT`, hands each event to a worker thread, and re-arms the
/// source after it through the manager again (an `eventfd` write and a thread switch per event).
/// perf showed those wake-ups as the largest cost of a bare `GET /healthz`. Here the poller's
/// thread waits in `epoll_wait` (level-triggered, nothing to re-arm) and runs the handlers of
/// each batch of events in one `queue.sync` on the loop's serial queue: when the queue is idle
/// libdispatch runs the block on the calling thread, so a request that needs no database is
/// read, answered and written without a thread switch; when the queue is busy (a handler's
/// database answer is being taken), the batch waits its turn, and the queue's serial order
/// keeps every connection's state touched by one thread at a time, as before.
///
/// Each registration has a token of its own, never reused, so an event fetched for a socket
/// that was closed (and whose descriptor number a new connection may already have) finds no
/// handler and is dropped.
final class Poller: Sendable {
    private let epoll: Int32
    /// An eventfd registered under token 0: written to stop the thread.
    private let wake: Int32
    private let queue: DispatchQueue
    private let handlers = Mutex<[UInt64: any ReadinessHandler]>([:])
    private let nextToken = Atomic<UInt64>(1)
    private let running = Atomic<Bool>(true)

    init(queue: DispatchQueue, name: String) {
        self.queue = queue
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        wake = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        precondition(epoll >= 0 && wake >= 0, "epoll_create1 or eventfd failed: \(String(cString: strerror(errno)))")
        _ = heard_epoll_ctl(epoll, EPOLL_CTL_ADD, wake, EPOLLIN.rawValue, 0)
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    /// Watches `fd` for `interest`; `handler` is kept until `unregister`. Returns the token the
    /// other calls take.
    func register(_ fd: Int32, _ interest: Interest, _ handler: any ReadinessHandler) -> UInt64 {
        let token = nextToken.wrappingAdd(1, ordering: .relaxed).oldValue
        handlers.withLock { $0[token] = handler }
        if heard_epoll_ctl(epoll, EPOLL_CTL_ADD, fd, Self.mask(interest), token) != 0 {
            // Not watched (out of memory for epoll, say): the handler hears a hang-up at once.
            queue.async { [self] in
                if let handler = handlers.withLock({ $0[token] }) { handler.ready(Readiness(readable: false, writable: false, hungUp: true, failed: true)) }
            }
        }
        return token
    }

    func modify(_ fd: Int32, token: UInt64, _ interest: Interest) {
        _ = heard_epoll_ctl(epoll, EPOLL_CTL_MOD, fd, Self.mask(interest), token)
    }

    /// Stops watching `fd` and forgets its handler. Call before closing the descriptor.
    func unregister(_ fd: Int32, token: UInt64) {
        _ = heard_epoll_ctl(epoll, EPOLL_CTL_DEL, fd, 0, token)
        _ = handlers.withLock { $0.removeValue(forKey: token) }
    }

    /// Ends the thread (after the batch in hand). Registered sockets are not closed.
    func stop() {
        guard running.exchange(false, ordering: .relaxed) else { return }
        var one: UInt64 = 1
        _ = Glibc.write(wake, &one, MemoryLayout<UInt64>.size)
    }

    /// Level-triggered: a socket reports for as long as it is ready, so nothing is re-armed, and
    /// a socket not watched for input (a connection whose reading is paused) stays quiet until
    /// it is again. (Not `EPOLLRDHUP`: it would keep reporting a half-close while reading is
    /// paused; the end of input is read as such.)
    private static func mask(_ interest: Interest) -> UInt32 {
        var mask: UInt32 = 0
        if interest.contains(.readable) { mask |= EPOLLIN.rawValue }
        if interest.contains(.writable) { mask |= EPOLLOUT.rawValue }
        return mask
    }

    private func run() {
        let capacity = Int(HEARD_EPOLL_BATCH)
        let tokens = UnsafeMutablePointer<UInt64>.allocate(capacity: capacity)
        let events = UnsafeMutablePointer<UInt32>.allocate(capacity: capacity)
        defer {
            tokens.deallocate()
            events.deallocate()
            Glibc.close(epoll)
            Glibc.close(wake)
        }
        while running.load(ordering: .relaxed) {
            let count = Int(heard_epoll_wait(epoll, tokens, events, -1))
            if count < 0 {
                if errno == EINTR { continue }
                // Only a programming error gets here (a bad descriptor or buffer): every socket
                // of the loop would go unanswered, so stop loudly rather than go deaf.
                preconditionFailure("epoll_wait failed: \(String(cString: strerror(errno)))")
            }
            queue.sync {
                for index in 0..<count where tokens[index] != 0 {
                    guard let handler = handlers.withLock({ $0[tokens[index]] }) else { continue }
                    let mask = events[index]
                    handler.ready(Readiness(readable: mask & EPOLLIN.rawValue != 0, writable: mask & EPOLLOUT.rawValue != 0,
                                            hungUp: mask & EPOLLHUP.rawValue != 0, failed: mask & EPOLLERR.rawValue != 0))
                }
            }
        }
    }
}

import Dispatch
import Foundation
import Synchronization

/// Listens on PostgreSQL notification channels (`LISTEN`/`NOTIFY`) on a connection of its own,
/// outside any pool, and tells its handler what it hears and when it may have missed something.
///
/// ```swift
/// let listener = PostgresListener(configuration: configuration, channels: ["things_changed"]) { event in
///     switch event {
///     case .listening: ...                 // from now on every notification arrives
///     case .notification(let channel, let payload): ...
///     case .lost: ...                      // notifications may be missed until `.listening`
///     }
/// }
/// listener.start()
/// ...
/// listener.stop()
/// ```
///
/// A notification is delivered only to sessions listening when its transaction commits, so
/// between `.lost` and the next `.listening` some may be missed: a handler that keeps what
/// notifications invalidate must drop it on `.lost` and not trust it again until `.listening`.
/// The connection is checked every `checkInterval` (a lost network path shows no error by
/// itself), and reopened `retryInterval` after a loss, until `stop`.
public final class PostgresListener: Sendable {
    public enum Event: Sendable, Equatable {
        /// `LISTEN` is in place on every channel: every notification committed from now on arrives.
        case listening
        case notification(channel: String, payload: String)
        /// The connection was lost (or could not be opened): notifications may be missed.
        case lost
    }

    public let channels: [String]
    private let configuration: PostgresConfiguration
    private let retryInterval: Duration
    private let checkInterval: Duration
    private let handler: @Sendable (Event) -> Void
    /// The current connection and whether `stop` was called, under one lock.
    private let state = Mutex<(connection: PostgresConnection?, stopped: Bool, task: Task<Void, Never>?)>((nil, false, nil))

    /// - Parameter channels: channel names (lower-case letters, digits and `_`, as written in
    ///   `NOTIFY`/`pg_notify`); they are constants of the caller, never input.
    public init(configuration: PostgresConfiguration, channels: [String], retryInterval: Duration = .seconds(1),
                checkInterval: Duration = .seconds(5), handler: @escaping @Sendable (Event) -> Void) {
        precondition(channels.allSatisfy { !$0.isEmpty && $0.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 } },
                     "channel names are lower-case letters, digits and underscores")
        self.configuration = configuration
        self.channels = channels
        self.retryInterval = retryInterval
        self.checkInterval = checkInterval
        self.handler = handler
    }

    /// Starts listening (in the background; the handler hears `.listening` once it is).
    public func start() {
        let task = Task { await self.run() }
        state.withLock { $0.task = task }
    }

    /// Stops listening and closes the connection; the handler hears nothing more.
    public func stop() {
        let (connection, task) = state.withLock { state -> (PostgresConnection?, Task<Void, Never>?) in
            state.stopped = true
            defer { state.connection = nil }
            return (state.connection, state.task)
        }
        task?.cancel()
        connection?.close()
    }

    private var isStopped: Bool { state.withLock { $0.stopped } }

    private func run() async {
        while !isStopped {
            await listenUntilLost()
            guard !isStopped else { return }
            try? await Task.sleep(for: retryInterval)
        }
    }

    /// One connection's life: open, `LISTEN`, then check it until it is lost. The handler hears
    /// of the loss as the connection sees it, not at the next check.
    private func listenUntilLost() async {
        let lost = Lost()
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(configuration: configuration)
            await connection.report { [handler] event in
                switch event {
                case .notification(let channel, let payload):
                    handler(.notification(channel: channel, payload: payload))
                case .lost:
                    lost.signal()
                    if !self.isStopped { handler(.lost) }
                }
            }
            let stopped = state.withLock { state -> Bool in
                if !state.stopped { state.connection = connection }
                return state.stopped
            }
            guard !stopped else { return connection.close() }
            try await connection.simpleExecute(channels.map { "LISTEN \($0);" }.joined(separator: " "))
        } catch {
            // Not listening: said at once, even when no connection was ever reported lost.
            if !isStopped { handler(.lost) }
            return
        }
        if !isStopped, !lost.happened { handler(.listening) }
        var sinceCheck = Duration.zero
        let slice = Duration.milliseconds(100)
        while !isStopped, !lost.happened {
            try? await Task.sleep(for: slice)
            sinceCheck += slice
            guard sinceCheck >= checkInterval, !isStopped, !lost.happened else { continue }
            sinceCheck = .zero
            do {
                try await connection.simpleExecute("")
            } catch {
                break
            }
        }
        state.withLock { if $0.connection === connection { $0.connection = nil } }
        connection.close()
    }

    /// Whether the connection reported its loss.
    private final class Lost: Sendable {
        private let flag = Atomic<Bool>(false)
        func signal() { flag.store(true, ordering: .relaxed) }
        var happened: Bool { flag.load(ordering: .relaxed) }
    }
}

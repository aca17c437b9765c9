import CLibPQ
import Dispatch
import Foundation
import Synchronization

/// One libpq connection (`PGconn*`).
///
/// Every libpq call on the handle runs on the connection's own serial `DispatchQueue`.
/// Connections from `connect` (the pool's) do their I/O without blocking: statements are sent
/// with non-blocking libpq, and a dispatch read source on the socket resumes the caller when the
/// answers arrive, so no thread sits blocked waiting for PostgreSQL. Connections from
/// `connectBlocking` (start-up, migrations, the admin commands) block their queue instead.
/// Statements are prepared on first use and reused (`s1`, `s2`, ... keyed by SQL text and
/// parameter types), the preparation travelling in the same round trip as the first execution.
///
/// Several statements can travel in one round trip (`pipeline(_:)`, libpq's pipeline mode).
/// Evented connections also take pipelines from several callers at once: each is sent as soon
/// as it comes, with a sync of its own, and PostgreSQL answers them in order. (`PostgresPool`
/// shares connections this way for units, and lends them whole for interactive transactions.)
public final class PostgresConnection: PostgresPipelining, @unchecked Sendable {
    // @unchecked Sendable: `handle`, the sources, `operations`, `reopening`, `statementNames`,
    // `statementCount` and `events` are read and written only on `queue` (a serial queue; the sources'
    // handlers target it), once `init` has returned, here and in the extensions in
    // PostgresConnection+Pipeline.swift and +Results.swift; `reusable` and `verifyBeforeUse`
    // are Atomics. Nothing else is mutable.
    let queue: DispatchQueue
    private let configuration: PostgresConfiguration
    /// Non-blocking I/O driven by dispatch sources (`connect`), or blocking calls (`connectBlocking`).
    private let evented: Bool
    var handle: OpaquePointer?
    private var readSource: (any DispatchSourceRead)?
    var writeSource: (any DispatchSourceWrite)?
    /// The pipelines sent and not yet fully answered, oldest first (evented connections).
    var operations: [Operation] = []
    /// While a connection lost while idle is replaced (see `reopen`): the work that came
    /// meanwhile, to start once it is open.
    var reopening: [((any Error)?) -> Void]?
    /// Prepared statements by SQL and parameter types. A name is entered as its preparation is
    /// sent (pipelines sent after it may use it at once) and removed if the preparation fails.
    var statementNames: [StatementKey: String] = [:]
    /// Names handed out on this session (`s1`, `s2`, ...), so a name is never given twice.
    var statementCount = 0
    /// Who hears of the notifications (`LISTEN`) the connection receives and of its loss
    /// (see `PostgresListener`); nil for a connection that only runs statements.
    var events: (@Sendable (ConnectionEvent) -> Void)?
    /// How its pool knows it, with the lane it was opened for (see `PostgresPool`).
    let poolID: PoolStateMachine.ConnectionID
    let reusable = Atomic<Bool>(false)
    /// Set when the pool lends the connection after it sat idle: the next use first checks
    /// that the server is still there (see `lostWhileIdle`).
    private let verifyBeforeUse = Atomic<Bool>(false)

    /// Opens the connection, blocking the calling thread (never the queue: `connect` calls this
    /// on a global queue, so a queue that is an HTTP event loop's never waits for a connect).
    /// Counts the round trips sent (a pipeline or a simple query each), for the pool's stats.
    let roundTrips: RoundTripCounter?

    private init(configuration: PostgresConfiguration, evented: Bool, target: DispatchQueue?, poolID: PoolStateMachine.ConnectionID,
                 roundTrips: RoundTripCounter? = nil) throws {
        self.configuration = configuration
        self.roundTrips = roundTrips
        self.evented = evented
        self.poolID = poolID
        // An evented connection's queue never blocks, so it runs on `target` (a caller's event
        // loop: the libpq calls and the continuations they resume then stay on that loop's
        // thread) or on the global pool's few threads (measured with 64 connections on
        // overcommit threads of their own: 113 threads, against 9 on the global pool, and 15%
        // more CPU a request). A blocking connection gets a thread of its own.
        queue = DispatchQueue(label: "heard.postgres.connection", target: evented ? (target ?? .global()) : nil)
        let handle = try Self.open(configuration)
        self.handle = handle
        reusable.store(true, ordering: .relaxed)
        // Nothing else knows the connection yet: the source's handler can only run after this.
        if evented { try watch(handle) }
    }

    /// Puts `handle` (the connection's own) in non-blocking mode and watches its socket with a
    /// read source. Called in `init`, before anything else knows the connection, or on the queue.
    private func watch(_ handle: OpaquePointer) throws {
        guard PQsetnonblocking(handle, 1) == 0 else {
            let error = lostConnection(handle)
            self.handle = nil
            reusable.store(false, ordering: .relaxed)
            PQfinish(handle)
            throw error
        }
        let source = DispatchSource.makeReadSource(fileDescriptor: PQsocket(handle), queue: queue)
        // Data 0: the event is for the end of the stream (or there is nothing to read).
        source.setEventHandler { [weak self] in self?.readable(mayBeTheEnd: self?.readSource?.data == 0) }
        readSource = source
        source.activate()
    }

    deinit {
        // Last reference gone: no queued work can still use the handle (the sources' handlers
        // hold the connection weakly). The socket is closed once its sources are cancelled.
        if let readSource, let handle {
            readSource.setCancelHandler { PQfinish(handle) }
            writeSource?.cancel()
            readSource.cancel()
        } else if let handle {
            PQfinish(handle)
        }
    }

    // MARK: Public API (async: the work runs on the connection's queue)

    /// Opens a connection without blocking the caller. Its I/O runs on `target` when given (a
    /// serial queue, such as the caller's event loop), else on the global queues.
    /// - Throws: `PostgresError` of kind `.connection`.
    public static func connect(configuration: PostgresConfiguration, target: DispatchQueue? = nil) async throws -> PostgresConnection {
        try await connect(configuration: configuration, target: target, poolID: PoolStateMachine.ConnectionID(lane: 0, number: 0))
    }

    static func connect(configuration: PostgresConfiguration, target: DispatchQueue?, poolID: PoolStateMachine.ConnectionID,
                        roundTrips: RoundTripCounter? = nil) async throws -> PostgresConnection {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result {
                    try PostgresConnection(configuration: configuration, evented: true, target: target, poolID: poolID, roundTrips: roundTrips)
                })
            }
        }
    }

    /// Runs `queries` in order in one round trip (libpq's pipeline mode) and returns the rows of
    /// each. When one fails, the ones after it do not run and its error is thrown. Meant for a
    /// handful of statements (a transaction's start, or its last writes and `COMMIT`); on a
    /// blocking connection (`connectBlocking`) the answers must fit the socket's buffers, since
    /// it reads them only once everything is sent.
    public func pipeline(_ queries: [PostgresQuery]) async throws -> [PostgresResult] {
        guard !queries.isEmpty else { return [] }
        guard evented else { return try await onQueue { try self.runPipeline(queries) } }
        return try await withCheckedThrowingContinuation { continuation in
            queue.async { self.start(queries: queries, simple: nil, continuation) }
        }
    }

    /// Runs SQL text without parameters through the simple query protocol: it may hold several
    /// statements (a migration file) or transaction control (`BEGIN`, `COMMIT`).
    public func simpleExecute(_ sql: String) async throws {
        guard evented else { return try await onQueue { try self.runSimple(sql) } }
        _ = try await withCheckedThrowingContinuation { continuation in
            queue.async { self.start(queries: [], simple: sql, continuation) }
        }
    }

    /// Closes the connection (asynchronously, on its queue). Safe to call more than once.
    /// Whatever is still in flight fails with a connection error.
    public func close() {
        reusable.store(false, ordering: .relaxed)
        queue.async {
            guard self.operations.isEmpty else {
                return self.fail(PostgresError(kind: .connection, message: "the connection was closed"), nil)
            }
            self.finish()
        }
    }

    // MARK: Blocking API (start-up code: the migrator, the embedded cluster)

    /// Opens a connection whose calls block the calling thread.
    /// - Throws: `PostgresError` of kind `.connection`.
    public static func connectBlocking(configuration: PostgresConfiguration) throws -> PostgresConnection {
        try PostgresConnection(configuration: configuration, evented: false, target: nil, poolID: PoolStateMachine.ConnectionID(lane: 0, number: 0))
    }

    /// Runs a statement on a connection from `connectBlocking` and returns its rows.
    public func queryBlocking(_ query: PostgresQuery) throws -> [PostgresRow] {
        try queue.sync { try run(query) }.rows
    }

    /// `simpleExecute`, on a connection from `connectBlocking`.
    public func simpleExecuteBlocking(_ sql: String) throws {
        try queue.sync { try runSimple(sql) }
    }

    /// Closes a connection from `connectBlocking` before returning.
    public func closeBlocking() {
        reusable.store(false, ordering: .relaxed)
        queue.sync { finish() }
    }

    // MARK: Internal API

    /// What a connection that listens reports (see `events`).
    enum ConnectionEvent: Sendable {
        case notification(channel: String, payload: String)
        /// The connection was lost (or closed); nothing more comes.
        case lost
    }

    /// Reports notifications and the connection's loss to `handler`, from now on (on the queue).
    func report(to handler: @escaping @Sendable (ConnectionEvent) -> Void) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async {
                self.events = handler
                continuation.resume()
            }
        }
    }

    /// Hands the notifications libpq has read to `events`.
    func deliverNotifications() {
        guard let handle else { return }
        while let notification = PQnotifies(handle) {
            let channel = String(cString: notification.pointee.relname)
            let payload = String(cString: notification.pointee.extra)
            PQfreemem(notification)
            events?(.notification(channel: channel, payload: payload))
        }
    }

    /// False once the connection is lost, closed, or left inside a transaction: the pool
    /// then discards it rather than lend it again.
    var isReusable: Bool { reusable.load(ordering: .relaxed) }

    /// Called by the pool as it lends an idle connection: the next use checks first that the
    /// server is still there, and opens the connection afresh if it is not (see `lostWhileIdle`).
    func markLent() {
        verifyBeforeUse.store(true, ordering: .relaxed)
    }

    // MARK: Lifecycle, on the queue

    private func onQueue<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try work() }) }
        }
    }

    /// Whether the connection, lent after sitting idle, was lost meanwhile. A loss its read
    /// source already saw, the pool handled before lending it; this finds one that just
    /// happened, by reading whatever the server sent meanwhile, before anything is sent. (One
    /// check per lease, in the same queue hop as the first statement.)
    func lostWhileIdle() -> Bool {
        dispatchPrecondition(condition: .onQueue(queue))
        return verifyBeforeUse.exchange(false, ordering: .relaxed) && !checkAlive()
    }

    /// Replaces a connection lost while idle, then calls `then` on the queue (with the error
    /// when no new connection could be opened). Nothing has been sent on the lost one, so the
    /// caller need never see its loss. The new connection is opened on a global queue, never
    /// on this one, which may be an event loop's: this queue takes its handle over afterwards,
    /// through the opener's own queue, so the handle is only ever used on one serial queue.
    func reopen(then: @escaping @Sendable ((any Error)?) -> Void) {
        dispatchPrecondition(condition: .onQueue(queue))
        finish()
        let configuration = configuration
        DispatchQueue.global().async {
            let opener = Result { try PostgresConnection(configuration: configuration, evented: false, target: nil, poolID: PoolStateMachine.ConnectionID(lane: 0, number: 0)) }
            self.queue.async {
                do {
                    let opened = try opener.get()
                    guard let handle = opened.queue.sync(execute: { () -> OpaquePointer? in
                        defer { opened.handle = nil }
                        return opened.handle
                    }) else { throw PostgresError(kind: .connection, message: "the connection was lost") }
                    self.handle = handle
                    try self.watch(handle)
                    self.reusable.store(true, ordering: .relaxed)
                    then(nil)
                } catch {
                    then(error)
                }
            }
        }
    }

    /// Opens a libpq connection, blocking the calling thread, with the output formats the
    /// decoders rely on fixed, whatever the server's defaults. The handle is the caller's.
    private static func open(_ configuration: PostgresConfiguration) throws -> OpaquePointer {
        let parameters = configuration.libpqParameters
        let connection = withCStrings(parameters.map(\.keyword) + [nil]) { keywords in
            withCStrings(parameters.map(\.value) + [nil]) { values in
                PQconnectdbParams(keywords, values, 0)
            }
        }
        guard let connection else {
            throw PostgresError(kind: .connection, message: "libpq could not allocate a connection")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = Self.message(PQerrorMessage(connection)) ?? "could not connect"
            PQfinish(connection)
            throw PostgresError(kind: .connection, message: message)
        }
        PQsetNoticeProcessor(connection, { _, _ in }, nil)  // NOTICEs are not errors; keep stderr clean
        let result = PQexec(connection, "SET TIME ZONE 'UTC'; SET DateStyle TO 'ISO, YMD'; SET bytea_output TO 'hex'; SET extra_float_digits TO 3")
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_COMMAND_OK else {
            let message = Self.message(PQerrorMessage(connection)) ?? "could not set up the connection"
            PQfinish(connection)
            throw PostgresError(kind: .connection, message: message)
        }
        return connection
    }

    /// Closes the handle. With sources, the socket is closed only once they are cancelled, so
    /// no source ever watches a descriptor that was closed (and perhaps reused).
    func finish() {
        dispatchPrecondition(condition: .onQueue(queue))
        reusable.store(false, ordering: .relaxed)
        guard let handle else { return }
        self.handle = nil
        if let events {
            self.events = nil
            events(.lost)
        }
        statementNames = [:]
        statementCount = 0
        guard let readSource else { return PQfinish(handle) }
        readSource.setCancelHandler { PQfinish(handle) }
        if let writeSource {
            writeSource.setCancelHandler { readSource.cancel() }
            writeSource.cancel()
        } else {
            readSource.cancel()
        }
        self.readSource = nil
        self.writeSource = nil
    }

    func checkAlive() -> Bool {
        dispatchPrecondition(condition: .onQueue(queue))
        guard let handle, PQstatus(handle) == CONNECTION_OK else { return false }
        // The first read may return a final error message from the server, the second then
        // sees the end of the stream; on a healthy idle connection both find nothing to read.
        let alive = PQconsumeInput(handle) == 1 && PQconsumeInput(handle) == 1 && PQstatus(handle) == CONNECTION_OK
        if !alive { reusable.store(false, ordering: .relaxed) }
        return alive
    }

    func liveHandle() throws -> OpaquePointer {
        guard let handle else {
            throw PostgresError(kind: .connection, message: "the connection is closed")
        }
        return handle
    }

    func updateReusable() {
        guard operations.isEmpty else { return }
        guard let handle else { return reusable.store(false, ordering: .relaxed) }
        let idle = PQstatus(handle) == CONNECTION_OK && PQtransactionStatus(handle) == PQTRANS_IDLE
        reusable.store(idle, ordering: .relaxed)
    }
}

/// A count of round trips, shared by a pool's connections.
final class RoundTripCounter: Sendable {
    private let count = Atomic<Int>(0)
    func add() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

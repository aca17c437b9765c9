import CLibPQ
import Dispatch
import Foundation
import Synchronization

/// The rows and the affected-row count of one statement.
public struct PostgresResult: Sendable {
    public var rows: [PostgresRow] = []
    public var rowsAffected = 0
}

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
public final class PostgresConnection: @unchecked Sendable {
    // @unchecked Sendable: `handle`, the sources, `operations`, `reopening`, `statementNames`
    // and `statementCount` are read and written only on `queue` (a serial queue; the sources'
    // handlers target it), once `init` has returned; `reusable` and `verifyBeforeUse` are
    // Atomics. Nothing else is mutable.
    private let queue: DispatchQueue
    private let configuration: PostgresConfiguration
    /// Non-blocking I/O driven by dispatch sources (`connect`), or blocking calls (`connectBlocking`).
    private let evented: Bool
    private var handle: OpaquePointer?
    private var readSource: (any DispatchSourceRead)?
    private var writeSource: (any DispatchSourceWrite)?
    /// The pipelines sent and not yet fully answered, oldest first (evented connections).
    private var operations: [Operation] = []
    /// While a connection lost while idle is replaced (see `reopen`): the work that came
    /// meanwhile, to start once it is open.
    private var reopening: [((any Error)?) -> Void]?
    /// Prepared statements by SQL and parameter types. A name is entered as its preparation is
    /// sent (pipelines sent after it may use it at once) and removed if the preparation fails.
    private var statementNames: [StatementKey: String] = [:]
    /// Names handed out on this session (`s1`, `s2`, ...), so a name is never given twice.
    private var statementCount = 0
    /// How its pool knows it, with the lane it was opened for (see `PostgresPool`).
    let poolID: PoolStateMachine.ConnectionID
    private let reusable = Atomic<Bool>(false)
    /// Set when the pool lends the connection after it sat idle: the next use first checks
    /// that the server is still there (see `lostWhileIdle`).
    private let verifyBeforeUse = Atomic<Bool>(false)

    /// What each answer of a pipeline stands for.
    private enum Answer {
        case prepared(StatementKey, String)
        case statement
        case sync
        /// The sync after a new statement's preparation, which goes ahead in a segment of its
        /// own (see `sendPipeline`).
        case preparedSync
        /// The simple query protocol: any number of results, then the end.
        case simple
    }

    /// A round trip in progress: the answers expected, and what came back so far.
    private struct Operation {
        var answers: [Answer]
        var next = 0
        /// libpq ends each statement's answer with a NULL result.
        var awaitingEnd = false
        /// An error came in the sync's place (the implicit transaction failed as it committed):
        /// its NULL, then the sync, are still to come.
        var awaitingSyncAfterError = false
        var results: [PostgresResult] = []
        var firstError: PostgresError?
        let continuation: CheckedContinuation<[PostgresResult], any Error>
    }

    /// Beyond this many prepared statements (SQL built with `unsafeRaw`, say), new SQL runs
    /// through the unnamed statement instead, so the cache cannot grow without bound.
    static let preparedStatementLimit = 500

    private struct StatementKey: Hashable {
        let sql: String
        let types: [UInt32]
    }

    /// Opens the connection, blocking the calling thread (never the queue: `connect` calls this
    /// on a global queue, so a queue that is an HTTP event loop's never waits for a connect).
    private init(configuration: PostgresConfiguration, evented: Bool, target: DispatchQueue?, poolID: PoolStateMachine.ConnectionID) throws {
        self.configuration = configuration
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
        source.setEventHandler { [weak self] in self?.readable() }
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

    static func connect(configuration: PostgresConfiguration, target: DispatchQueue?, poolID: PoolStateMachine.ConnectionID) async throws -> PostgresConnection {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result {
                    try PostgresConnection(configuration: configuration, evented: true, target: target, poolID: poolID)
                })
            }
        }
    }

    /// Runs a statement and returns its rows.
    public func query(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await pipeline([query])[0].rows
    }

    /// Runs a statement and returns the number of rows it inserted, updated or deleted.
    @discardableResult
    public func execute(_ query: PostgresQuery) async throws -> Int {
        try await pipeline([query])[0].rowsAffected
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

    // MARK: Internal API

    /// False once the connection is lost, closed, or left inside a transaction: the pool
    /// then discards it rather than lend it again.
    var isReusable: Bool { reusable.load(ordering: .relaxed) }

    /// Opens a connection, blocking the calling thread (start-up code, the migrator).
    static func connectBlocking(configuration: PostgresConfiguration) throws -> PostgresConnection {
        try PostgresConnection(configuration: configuration, evented: false, target: nil, poolID: PoolStateMachine.ConnectionID(lane: 0, number: 0))
    }

    func queryBlocking(_ query: PostgresQuery) throws -> [PostgresRow] {
        try queue.sync { try run(query) }.rows
    }

    func simpleExecuteBlocking(_ sql: String) throws {
        try queue.sync { try runSimple(sql) }
    }

    func closeBlocking() {
        reusable.store(false, ordering: .relaxed)
        queue.sync { finish() }
    }

    /// Called by the pool as it lends an idle connection: the next use checks first that the
    /// server is still there, and opens the connection afresh if it is not (see `lostWhileIdle`).
    func markLent() {
        verifyBeforeUse.store(true, ordering: .relaxed)
    }

    // MARK: On the queue

    private func onQueue<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try work() }) }
        }
    }

    /// Whether the connection, lent after sitting idle, was lost meanwhile. A loss its read
    /// source already saw, the pool handled before lending it; this finds one that just
    /// happened, by reading whatever the server sent meanwhile, before anything is sent. (One
    /// check per lease, in the same queue hop as the first statement.)
    private func lostWhileIdle() -> Bool {
        dispatchPrecondition(condition: .onQueue(queue))
        return verifyBeforeUse.exchange(false, ordering: .relaxed) && !checkAlive()
    }

    /// Replaces a connection lost while idle, then calls `then` on the queue (with the error
    /// when no new connection could be opened). Nothing has been sent on the lost one, so the
    /// caller need never see its loss. The new connection is opened on a global queue, never
    /// on this one, which may be an event loop's: this queue takes its handle over afterwards,
    /// through the opener's own queue, so the handle is only ever used on one serial queue.
    private func reopen(then: @escaping @Sendable ((any Error)?) -> Void) {
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
    private func finish() {
        dispatchPrecondition(condition: .onQueue(queue))
        reusable.store(false, ordering: .relaxed)
        guard let handle else { return }
        self.handle = nil
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

    private func checkAlive() -> Bool {
        dispatchPrecondition(condition: .onQueue(queue))
        guard let handle, PQstatus(handle) == CONNECTION_OK else { return false }
        // The first read may return a final error message from the server, the second then
        // sees the end of the stream; on a healthy idle connection both find nothing to read.
        let alive = PQconsumeInput(handle) == 1 && PQconsumeInput(handle) == 1 && PQstatus(handle) == CONNECTION_OK
        if !alive { reusable.store(false, ordering: .relaxed) }
        return alive
    }

    private func run(_ query: PostgresQuery) throws -> PostgresResult {
        dispatchPrecondition(condition: .onQueue(queue))
        let handle = try liveHandle()
        try Self.rejectUnsendable(in: query)
        let types = query.binds.map(\.type.rawValue)
        let key = StatementKey(sql: query.sql, types: types)
        let name: String
        if let prepared = statementNames[key] {
            name = prepared
        } else {
            name = statementNames.count < Self.preparedStatementLimit ? nextStatementName() : ""
            _ = try consume(PQprepare(handle, name, query.sql, Int32(types.count), types))
            if !name.isEmpty { statementNames[key] = name }
        }
        let result = withCStrings(query.binds.map(\.text)) { values in
            PQexecPrepared(handle, name, Int32(values.count), values, nil, nil, 0)
        }
        return try consume(result)
    }

    /// One pipeline, blocking: every statement is sent (each new one prepared first), then one
    /// sync, then the answers are read in order. After an error the server skips the rest up to
    /// the sync (`PGRES_PIPELINE_ABORTED`); the first error is thrown once the pipeline is drained.
    private func runPipeline(_ queries: [PostgresQuery]) throws -> [PostgresResult] {
        dispatchPrecondition(condition: .onQueue(queue))
        if queries.count == 1 { return [try run(queries[0])] }
        guard !queries.isEmpty else { return [] }
        let handle = try liveHandle()
        for query in queries { try Self.rejectUnsendable(in: query) }
        guard let answers = sendPipeline(queries, on: handle) else {
            let error = lostConnection(handle)
            finish()
            updateReusable()
            throw error
        }
        var results: [PostgresResult] = []
        var firstError: PostgresError?
        for answer in answers {
            guard let result = PQgetResult(handle) else {
                let error = lostConnection(handle)
                finish()
                updateReusable()
                throw error
            }
            defer { PQclear(result) }
            if case .sync = answer { break }
            if case .preparedSync = answer { continue }  // no NULL follows a sync
            while let extra = PQgetResult(handle) { PQclear(extra) }  // a statement's answer ends with NULL
            take(result, for: answer, into: &results, firstError: &firstError)
        }
        if PQexitPipelineMode(handle) != 1 {
            finish()
        }
        updateReusable()
        if let firstError { throw firstError }
        return results
    }

    /// Enters pipeline mode (unless other pipelines are in flight) and queues `queries` and a
    /// sync; returns the answers to expect, or nil when libpq could not queue them (the
    /// connection is broken). Each new statement is prepared first, in a segment of its own
    /// (its preparation and a sync), and its name counted on at once: no failure of anything
    /// else can then skip a preparation that pipelines sent after this one use. (It costs a
    /// sync once per statement and connection. Past the cache's limit a statement goes
    /// through the unnamed statement, prepared just before it runs.)
    private func sendPipeline(_ queries: [PostgresQuery], on handle: OpaquePointer) -> [Answer]? {
        if PQpipelineStatus(handle) == PQ_PIPELINE_OFF {
            guard PQenterPipelineMode(handle) == 1 else { return nil }
        }
        var answers: [Answer] = []
        var statements: [(key: StatementKey, name: String)] = []
        statements.reserveCapacity(queries.count)
        for query in queries {
            let key = StatementKey(sql: query.sql, types: query.binds.map(\.type.rawValue))
            if let name = statementNames[key] {
                statements.append((key, name))
            } else if statementNames.count < Self.preparedStatementLimit {
                let name = nextStatementName()
                guard PQsendPrepare(handle, name, query.sql, Int32(key.types.count), key.types) == 1,
                      PQpipelineSync(handle) == 1 else { return nil }
                statementNames[key] = name
                answers += [.prepared(key, name), .preparedSync]
                statements.append((key, name))
            } else {
                statements.append((key, ""))
            }
        }
        for (query, statement) in zip(queries, statements) {
            if statement.name.isEmpty {
                let types = statement.key.types
                guard PQsendPrepare(handle, "", query.sql, Int32(types.count), types) == 1 else { return nil }
                answers.append(.prepared(statement.key, ""))
            }
            let sent = withCStrings(query.binds.map(\.text)) { values in
                PQsendQueryPrepared(handle, statement.name, Int32(values.count), values, nil, nil, 0)
            }
            guard sent == 1 else { return nil }
            answers.append(.statement)
        }
        guard PQpipelineSync(handle) == 1 else { return nil }
        return answers + [.sync]
    }

    private func nextStatementName() -> String {
        statementCount += 1
        return "s\(statementCount)"
    }

    /// One answer of a pipeline, for the blocking and the evented reader alike: a failed
    /// preparation takes its name back, a statement keeps its rows, the first error is kept,
    /// and a statement skipped after an error (`PGRES_PIPELINE_ABORTED`) leaves nothing.
    private func take(_ result: OpaquePointer, for answer: Answer, into results: inout [PostgresResult], firstError: inout PostgresError?) {
        switch (PQresultStatus(result), answer) {
        case (PGRES_COMMAND_OK, .prepared):
            return
        case (let status, .prepared(let key, let name)):
            // Not prepared (refused, or skipped after an earlier failure in its pipeline): the
            // name is no longer counted on, so the next use prepares it again. Pipelines already
            // sent with it fail as this one did.
            if !name.isEmpty, statementNames[key] == name { statementNames[key] = nil }
            if status != PGRES_PIPELINE_ABORTED, firstError == nil { firstError = error(from: result) }
        case (PGRES_PIPELINE_ABORTED, _):
            return
        case (PGRES_COMMAND_OK, .statement), (PGRES_EMPTY_QUERY, .statement):
            results.append(PostgresResult(rowsAffected: Int(String(cString: PQcmdTuples(result))) ?? 0))
        case (PGRES_TUPLES_OK, .statement):
            results.append(Self.rows(of: result))
        default:
            if firstError == nil { firstError = error(from: result) }
        }
    }

    private func lostConnection(_ handle: OpaquePointer) -> PostgresError {
        PostgresError(kind: .connection, message: Self.message(PQerrorMessage(handle)) ?? "the connection was lost")
    }

    private static func containsNUL(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { bytes in bytes.baseAddress.map { memchr($0, 0, bytes.count) != nil } ?? false }
    }

    /// Refuses what libpq would refuse only as it queues the statement (which would break the
    /// pipeline for every caller on the connection): a NUL in a text parameter, or more
    /// parameters than the protocol can carry.
    private static func rejectUnsendable(in query: PostgresQuery) throws {
        guard query.binds.count <= Int(UInt16.max) else {
            throw PostgresError(
                kind: .query, sqlState: "54000",
                message: "\(query.binds.count) parameters in one statement; PostgreSQL takes at most \(UInt16.max)")
        }
        for (index, bind) in query.binds.enumerated() where bind.text.map(Self.containsNUL) == true {
            throw PostgresError(
                kind: .query, sqlState: "22021",
                message: "parameter $\(index + 1) contains a NUL character, which PostgreSQL text cannot hold")
        }
    }

    // MARK: Evented I/O (non-blocking libpq, dispatch sources)

    /// Sends `queries` as one pipeline (or `simple` through the simple query protocol) and
    /// returns; `readable` finishes the work when the answers arrive. Pipelines sent while
    /// others are in flight queue behind them; simple queries need the connection to themselves.
    private func start(queries: [PostgresQuery], simple: String?, _ continuation: CheckedContinuation<[PostgresResult], any Error>) {
        dispatchPrecondition(condition: .onQueue(queue))
        if reopening != nil || (operations.isEmpty && lostWhileIdle()) {
            let retry: ((any Error)?) -> Void = { error in
                if let error { return continuation.resume(throwing: error) }
                self.start(queries: queries, simple: simple, continuation)
            }
            guard reopening == nil else {
                reopening?.append(retry)
                return
            }
            reopening = [retry]
            return reopen { error in
                let waiting = self.reopening ?? []
                self.reopening = nil
                for retry in waiting { retry(error) }
            }
        }
        let handle: OpaquePointer
        do {
            handle = try liveHandle()
            for query in queries { try Self.rejectUnsendable(in: query) }
        } catch {
            return continuation.resume(throwing: error)
        }
        let answers: [Answer]
        if let simple {
            guard operations.isEmpty else {
                return continuation.resume(throwing: PostgresError(
                    kind: .query, message: "a simple query needs the connection to itself, and pipelines are in flight"))
            }
            guard PQsendQuery(handle, simple) == 1 else { return fail(lostConnection(handle), continuation) }
            answers = [.simple]
        } else {
            guard let sent = sendPipeline(queries, on: handle) else { return fail(lostConnection(handle), continuation) }
            answers = sent
        }
        operations.append(Operation(answers: answers, continuation: continuation))
        flush()
    }

    /// Sends what libpq holds; while the socket is full, a write source finishes the job.
    private func flush() {
        guard let handle else { return }
        switch PQflush(handle) {
        case 0:
            writeSource?.cancel()
            writeSource = nil
        case 1:
            guard writeSource == nil else { return }
            let source = DispatchSource.makeWriteSource(fileDescriptor: PQsocket(handle), queue: queue)
            source.setEventHandler { [weak self] in self?.flush() }
            source.activate()
            writeSource = source
        default:
            fail(lostConnection(handle), nil)
        }
    }

    /// The socket has something to read: the answers of the pipelines in flight, or, while
    /// idle, the server's last words before it closed the connection.
    private func readable() {
        guard let handle else { return }
        guard PQconsumeInput(handle) == 1 else { return fail(lostConnection(handle), nil) }
        if writeSource != nil { flush() }
        guard !operations.isEmpty else {
            // Idle: the server's last words before it closes the connection (libpq hands an
            // error that comes while idle to the notice processor and stays "OK"). The end of
            // the stream may already be there too, and needs reads of its own to be seen.
            if !checkAlive() { fail(lostConnection(handle), nil) }
            return
        }
        while !operations.isEmpty, PQisBusy(handle) == 0 {
            switch read(into: &operations[0], from: handle) {
            case .waiting:
                // libpq drops a connection it finds lost, socket and all: no more events come.
                if PQstatus(handle) == CONNECTION_BAD { fail(lostConnection(handle), nil) }
                return
            case .reading:
                continue
            case .finished:
                complete(operations.removeFirst(), on: handle)
            case .ended(let error):
                return fail(error, nil)
            }
        }
    }

    private enum Progress {
        case waiting, reading, finished
        /// The server ended the session (a FATAL error, as when an administrator or a restart
        /// ends the backend): nothing in flight will be answered. Its end of the stream may
        /// come in the same read as the error, and then no read event follows to show it.
        case ended(PostgresError)
    }

    /// Takes one result of `operation` from libpq (which has one ready: `PQisBusy` said so).
    private func read(into operation: inout Operation, from handle: OpaquePointer) -> Progress {
        let result = PQgetResult(handle)
        defer { PQclear(result) }
        if operation.awaitingEnd {
            guard result == nil else { return .reading }
            operation.awaitingEnd = false
            operation.next += 1
            return .reading
        }
        let answer = operation.answers[operation.next]
        guard let result else {
            if case .simple = answer { return .finished }
            if operation.awaitingSyncAfterError {
                operation.awaitingSyncAfterError = false
                return .reading
            }
            // Between a pipeline's last statement and its sync: nothing more until input comes.
            return .waiting
        }
        let status = PQresultStatus(result)
        if status == PGRES_FATAL_ERROR, let severity = PQresultErrorField(result, Int32(UInt8(ascii: "V"))),
           ["FATAL", "PANIC"].contains(String(cString: severity)) {
            let error = error(from: result)
            return .ended(error.kind == .connection ? error : PostgresError(
                kind: .connection, sqlState: error.sqlState, message: error.message, detail: error.detail))
        }
        switch answer {
        case .sync, .preparedSync:
            guard status == PGRES_PIPELINE_SYNC else {
                // An error in the sync's place (at a unit's sync, its implicit transaction failed
                // as it committed): the error, its NULL, then the sync.
                if operation.firstError == nil { operation.firstError = error(from: result) }
                operation.awaitingSyncAfterError = true
                return .reading
            }
            if case .sync = answer { return .finished }
            operation.next += 1
        case .simple:
            if status != PGRES_COMMAND_OK, status != PGRES_TUPLES_OK, status != PGRES_EMPTY_QUERY, operation.firstError == nil {
                operation.firstError = error(from: result)
            }
        case .prepared, .statement:
            operation.awaitingEnd = true
            take(result, for: answer, into: &operation.results, firstError: &operation.firstError)
        }
        return .reading
    }

    private func complete(_ finished: Operation, on handle: OpaquePointer) {
        if operations.isEmpty {
            if PQpipelineStatus(handle) != PQ_PIPELINE_OFF { PQexitPipelineMode(handle) }
            updateReusable()
        }
        if let error = finished.firstError {
            finished.continuation.resume(throwing: error)
        } else {
            finished.continuation.resume(returning: finished.results)
        }
    }

    /// The connection is lost: everyone who waits on it learns so, and it is closed.
    private func fail(_ error: PostgresError, _ continuation: CheckedContinuation<[PostgresResult], any Error>?) {
        let waiting = operations.map(\.continuation) + (continuation.map { [$0] } ?? [])
        operations = []
        finish()
        reusable.store(false, ordering: .relaxed)
        for continuation in waiting { continuation.resume(throwing: error) }
    }

    private func runSimple(_ sql: String) throws {
        dispatchPrecondition(condition: .onQueue(queue))
        let handle = try liveHandle()
        _ = try consume(PQexec(handle, sql))
    }

    private func liveHandle() throws -> OpaquePointer {
        guard let handle else {
            throw PostgresError(kind: .connection, message: "the connection is closed")
        }
        return handle
    }

    /// Reads and frees `result` (exactly once), throwing the server's error if it has one.
    private func consume(_ result: OpaquePointer?) throws -> PostgresResult {
        defer {
            PQclear(result)
            updateReusable()
        }
        switch result.map(PQresultStatus) {
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return PostgresResult(rowsAffected: result.flatMap { Int(String(cString: PQcmdTuples($0))) } ?? 0)
        case PGRES_TUPLES_OK:
            return result.map(Self.rows) ?? PostgresResult()
        default:
            throw error(from: result)
        }
    }

    private func updateReusable() {
        guard operations.isEmpty else { return }
        guard let handle else { return reusable.store(false, ordering: .relaxed) }
        let idle = PQstatus(handle) == CONNECTION_OK && PQtransactionStatus(handle) == PQTRANS_IDLE
        reusable.store(idle, ordering: .relaxed)
    }

    private static func rows(of result: OpaquePointer) -> PostgresResult {
        let rowCount = PQntuples(result)
        let columnCount = PQnfields(result)
        let columns = PostgresColumns(
            names: (0..<columnCount).map { column in PQfname(result, column).map { String(cString: $0) } ?? "?column?" },
            types: (0..<columnCount).map { PostgresDataType(PQftype(result, $0)) })
        var rows: [PostgresRow] = []
        rows.reserveCapacity(Int(rowCount))
        for row in 0..<rowCount {
            let values: [String?] = (0..<columnCount).map { column in
                guard PQgetisnull(result, row, column) == 0, let value = PQgetvalue(result, row, column) else { return nil }
                return String(cString: value)
            }
            rows.append(PostgresRow(columns: columns, values: values))
        }
        return PostgresResult(rows: rows, rowsAffected: Int(rowCount))
    }

    private func error(from result: OpaquePointer?) -> PostgresError {
        func field(_ code: Character) -> String? {
            guard let result, let ascii = code.asciiValue else { return nil }
            return Self.message(PQresultErrorField(result, Int32(ascii)))
        }
        let sqlState = field("C")
        let lost = handle.map { PQstatus($0) == CONNECTION_BAD } ?? true
        let message = field("M") ?? handle.flatMap { Self.message(PQerrorMessage($0)) } ?? "unknown error"
        return PostgresError(
            kind: lost || PostgresError.isConnectionState(sqlState) ? .connection : .query,
            sqlState: sqlState,
            message: message,
            detail: field("D"),
            constraint: field("n"),
            table: field("t"),
            column: field("c"))
    }

    /// A libpq message without its trailing newline.
    private static func message(_ pointer: UnsafePointer<CChar>?) -> String? {
        guard let pointer else { return nil }
        return String(cString: pointer).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Calls `body` with NUL-terminated copies of `strings` (nil stays a null pointer), freed after.
private func withCStrings<Result>(
    _ strings: [String?], _ body: ([UnsafePointer<CChar>?]) throws -> Result
) rethrows -> Result {
    let copies: [UnsafeMutablePointer<CChar>?] = strings.map { string in
        guard let string else { return nil }
        let bytes = string.utf8CString
        let copy = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count)
        bytes.withUnsafeBufferPointer { buffer in
            if let source = buffer.baseAddress { copy.initialize(from: source, count: buffer.count) }
        }
        return copy
    }
    defer { copies.forEach { $0?.deallocate() } }
    return try body(copies.map { copy in copy.map { UnsafePointer($0) } })
}

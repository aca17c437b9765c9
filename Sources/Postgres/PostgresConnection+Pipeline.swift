import CLibPQ
import Dispatch
import Foundation

/// Sending statements and reading their answers: the prepared-statement cache, pipelines on a
/// blocking connection, and on an evented one the operations in flight, read as the socket
/// becomes readable (see `PostgresConnection`).
extension PostgresConnection {
    /// What each answer of a pipeline stands for.
    enum Answer {
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
    struct Operation {
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

    struct StatementKey: Hashable {
        let sql: String
        let types: [UInt32]
    }

    // MARK: Sending

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

    // MARK: Blocking (the answers read as soon as all is sent)

    func run(_ query: PostgresQuery) throws -> PostgresResult {
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
    func runPipeline(_ queries: [PostgresQuery]) throws -> [PostgresResult] {
        dispatchPrecondition(condition: .onQueue(queue))
        if queries.count == 1 { return [try run(queries[0])] }
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

    func runSimple(_ sql: String) throws {
        dispatchPrecondition(condition: .onQueue(queue))
        let handle = try liveHandle()
        _ = try consume(PQexec(handle, sql))
    }

    // MARK: Evented (non-blocking libpq; the answers read as the socket becomes readable)

    /// Sends `queries` as one pipeline (or `simple` through the simple query protocol) and
    /// returns; `readable` finishes the work when the answers arrive. Pipelines sent while
    /// others are in flight queue behind them; simple queries need the connection to themselves.
    func start(queries: [PostgresQuery], simple: String?, _ continuation: CheckedContinuation<[PostgresResult], any Error>) {
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
        roundTrips?.add()
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
    /// idle, the server's last words before it closed the connection. `mayBeTheEnd`: the
    /// event's data was 0 (see `readToTheEnd`).
    func readable(mayBeTheEnd: Bool) {
        guard let handle else { return }
        guard PQconsumeInput(handle) == 1 else { return fail(lostConnection(handle), nil) }
        defer { deliverNotifications() }
        if writeSource != nil { flush() }
        guard !operations.isEmpty else {
            // Idle: the server's last words before it closes the connection (libpq hands an
            // error that comes while idle to the notice processor and stays "OK"). The end of
            // the stream may already be there too, and needs reads of its own to be seen.
            if !checkAlive() { fail(lostConnection(handle), nil) }
            return
        }
        takeAnswers(from: handle)
        if mayBeTheEnd { readToTheEnd() }
    }

    /// Hands every answer libpq has read to the operations in flight, in order.
    private func takeAnswers(from handle: OpaquePointer) {
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

    /// Dispatch reports the end of a socket's stream in one event (its data 0) and never again,
    /// even when bytes came with it that the event's read did not take. A backend told to quit
    /// at once (SIGQUIT: an immediate shutdown, or a reset after another backend crashed) sends
    /// a warning and exits, so the warning and the end often arrive together: the read takes
    /// the warning, and the operations in flight would wait for ever for answers that never
    /// come. So after such an event the socket is read until nothing is left in it: to its end
    /// (the connection is lost, and they fail), or to nothing more for now.
    private func readToTheEnd() {
        while let handle {
            var byte: UInt8 = 0
            let peeked = recv(PQsocket(handle), &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
            if peeked < 0, errno == EINTR { continue }
            if peeked < 0, errno == EAGAIN || errno == EWOULDBLOCK { return }
            // Bytes (read them), or the end of the stream or an error (libpq's read reports it).
            guard PQconsumeInput(handle) == 1, peeked > 0 else { return fail(lostConnection(handle), nil) }
            takeAnswers(from: handle)
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
    func fail(_ error: PostgresError, _ continuation: CheckedContinuation<[PostgresResult], any Error>?) {
        let waiting = operations.map(\.continuation) + (continuation.map { [$0] } ?? [])
        operations = []
        finish()
        reusable.store(false, ordering: .relaxed)
        for continuation in waiting { continuation.resume(throwing: error) }
    }

    // MARK: Answers

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
}

/// Calls `body` with NUL-terminated copies of `strings` (nil stays a null pointer), freed after.
func withCStrings<Result>(
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

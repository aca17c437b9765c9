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
/// Every libpq call on the handle runs on the connection's own serial `DispatchQueue`: the
/// async methods hop there and resume the caller when libpq returns, so a blocking libpq call
/// never blocks the caller's thread or Swift's cooperative pool. Statements are prepared on
/// first use and reused (`s1`, `s2`, ... keyed by SQL text and parameter types).
///
/// Several statements can travel in one round trip (`pipeline(_:)`, libpq's pipeline mode).
///
/// Usually borrowed from a `PostgresPool`; a connection serves one caller at a time.
public final class PostgresConnection: @unchecked Sendable {
    // @unchecked Sendable: `handle` and `statementNames` are read and written only on
    // `queue` (a serial queue); `reusable` and `verifyBeforeUse` are Atomics. Nothing else
    // is mutable.
    private let queue: DispatchQueue
    private let configuration: PostgresConfiguration
    private var handle: OpaquePointer?
    private var statementNames: [StatementKey: String] = [:]
    private let reusable = Atomic<Bool>(false)
    /// Set when the pool lends the connection after it sat idle: the next use first checks
    /// that the server is still there (see `verifyIfLent`).
    private let verifyBeforeUse = Atomic<Bool>(false)

    /// Beyond this many prepared statements (SQL built with `unsafeRaw`, say), new SQL runs
    /// through the unnamed statement instead, so the cache cannot grow without bound.
    static let preparedStatementLimit = 500

    private struct StatementKey: Hashable {
        let sql: String
        let types: [UInt32]
    }

    private init(configuration: PostgresConfiguration) {
        self.configuration = configuration
        queue = DispatchQueue(label: "heard.postgres.connection")
    }

    deinit {
        // Last reference gone: no queued work can still use the handle.
        if let handle { PQfinish(handle) }
    }

    // MARK: Public API (async: the work runs on the connection's queue)

    /// Opens a connection without blocking the caller.
    /// - Throws: `PostgresError` of kind `.connection`.
    public static func connect(configuration: PostgresConfiguration) async throws -> PostgresConnection {
        let connection = PostgresConnection(configuration: configuration)
        try await connection.onQueue { try connection.open() }
        return connection
    }

    /// Runs a statement and returns its rows.
    public func query(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await onQueue { try self.verifyIfLent(); return try self.run(query) }.rows
    }

    /// Runs a statement and returns the number of rows it inserted, updated or deleted.
    @discardableResult
    public func execute(_ query: PostgresQuery) async throws -> Int {
        try await onQueue { try self.verifyIfLent(); return try self.run(query) }.rowsAffected
    }

    /// Runs `queries` in order in one round trip (libpq's pipeline mode) and returns the rows of
    /// each. When one fails, the ones after it do not run and its error is thrown. Meant for a
    /// handful of statements (a transaction's start, or its last writes and `COMMIT`): the
    /// connection blocks while sending, so the answers must fit the socket's buffers.
    public func pipeline(_ queries: [PostgresQuery]) async throws -> [PostgresResult] {
        try await onQueue { try self.verifyIfLent(); return try self.runPipeline(queries) }
    }

    /// Runs SQL text without parameters through the simple query protocol: it may hold several
    /// statements (a migration file) or transaction control (`BEGIN`, `COMMIT`).
    public func simpleExecute(_ sql: String) async throws {
        try await onQueue { try self.verifyIfLent(); try self.runSimple(sql) }
    }

    /// Closes the connection (asynchronously, on its queue). Safe to call more than once.
    public func close() {
        reusable.store(false, ordering: .relaxed)
        queue.async { self.finish() }
    }

    // MARK: Internal API

    /// False once the connection is lost, closed, or left inside a transaction: the pool
    /// then discards it rather than lend it again.
    var isReusable: Bool { reusable.load(ordering: .relaxed) }

    /// Opens a connection, blocking the calling thread (start-up code, the migrator).
    static func connectBlocking(configuration: PostgresConfiguration) throws -> PostgresConnection {
        let connection = PostgresConnection(configuration: configuration)
        try connection.queue.sync { try connection.open() }
        return connection
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
    /// server is still there, and opens the connection afresh if it is not (see `verifyIfLent`).
    func markLent() {
        verifyBeforeUse.store(true, ordering: .relaxed)
    }

    // MARK: On the queue

    private func onQueue<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try work() }) }
        }
    }

    /// After a server restart an idle connection is closed without having sent anything. The
    /// first use after the pool lends it reads whatever the server sent while it was idle;
    /// if the connection is gone, nothing has been sent on it yet, so opening a new one in its
    /// place is safe and the caller never sees the old one's loss. (One check per lease, in the
    /// same queue hop as the first statement.)
    private func verifyIfLent() throws {
        dispatchPrecondition(condition: .onQueue(queue))
        guard verifyBeforeUse.exchange(false, ordering: .relaxed), !checkAlive() else { return }
        finish()
        try open()
    }

    private func open() throws {
        dispatchPrecondition(condition: .onQueue(queue))
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
        handle = connection
        // Fix the output formats the decoders rely on, whatever the server's defaults.
        try runSimple("SET TIME ZONE 'UTC'; SET DateStyle TO 'ISO, YMD'; SET bytea_output TO 'hex'; SET extra_float_digits TO 3")
    }

    private func finish() {
        dispatchPrecondition(condition: .onQueue(queue))
        if let handle { PQfinish(handle) }
        handle = nil
        statementNames = [:]
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
        try Self.rejectNUL(in: query)
        let types = query.binds.map(\.type.rawValue)
        let key = StatementKey(sql: query.sql, types: types)
        let name: String
        if let prepared = statementNames[key] {
            name = prepared
        } else {
            let cacheable = statementNames.count < Self.preparedStatementLimit
            name = cacheable ? "s\(statementNames.count + 1)" : ""
            _ = try consume(PQprepare(handle, name, query.sql, Int32(types.count), types))
            if cacheable { statementNames[key] = name }
        }
        let result = withCStrings(query.binds.map(\.text)) { values in
            PQexecPrepared(handle, name, Int32(values.count), values, nil, nil, 0)
        }
        return try consume(result)
    }

    /// One pipeline: every statement is sent (each new one prepared first), then one sync, then
    /// the answers are read in order. After an error the server skips the rest up to the sync
    /// (`PGRES_PIPELINE_ABORTED`); the first error is thrown once the pipeline is drained.
    private func runPipeline(_ queries: [PostgresQuery]) throws -> [PostgresResult] {
        dispatchPrecondition(condition: .onQueue(queue))
        if queries.count == 1 { return [try run(queries[0])] }
        guard !queries.isEmpty else { return [] }
        let handle = try liveHandle()
        for query in queries { try Self.rejectNUL(in: query) }
        guard PQenterPipelineMode(handle) == 1 else { throw lostConnection(handle) }
        enum Answer { case prepared(StatementKey, String), statement }
        var expected: [Answer] = []
        var newNames: [StatementKey: String] = [:]
        var sendFailed = false
        for query in queries where !sendFailed {
            let types = query.binds.map(\.type.rawValue)
            let key = StatementKey(sql: query.sql, types: types)
            var name = statementNames[key] ?? newNames[key]
            if name == nil {
                let cacheable = statementNames.count + newNames.count < Self.preparedStatementLimit
                let newName = cacheable ? "s\(statementNames.count + newNames.count + 1)" : ""
                if cacheable { newNames[key] = newName }
                name = newName
                sendFailed = PQsendPrepare(handle, newName, query.sql, Int32(types.count), types) != 1
                expected.append(.prepared(key, newName))
            }
            sendFailed = sendFailed || withCStrings(query.binds.map(\.text)) { values in
                PQsendQueryPrepared(handle, name, Int32(values.count), values, nil, nil, 0)
            } != 1
            expected.append(.statement)
        }
        guard !sendFailed, PQpipelineSync(handle) == 1 else {
            let error = lostConnection(handle)
            finish()
            updateReusable()
            throw error
        }
        var results: [PostgresResult] = []
        var firstError: PostgresError?
        for answer in expected {
            guard let result = PQgetResult(handle) else {
                let error = lostConnection(handle)
                finish()
                updateReusable()
                throw error
            }
            defer { PQclear(result) }
            while let extra = PQgetResult(handle) { PQclear(extra) }  // a statement's answer ends with NULL
            switch (PQresultStatus(result), answer) {
            case (PGRES_PIPELINE_ABORTED, _):
                continue
            case (PGRES_COMMAND_OK, .prepared(let key, let name)):
                if !name.isEmpty { statementNames[key] = name }
            case (PGRES_COMMAND_OK, .statement), (PGRES_EMPTY_QUERY, .statement):
                results.append(PostgresResult(rowsAffected: Int(String(cString: PQcmdTuples(result))) ?? 0))
            case (PGRES_TUPLES_OK, .statement):
                results.append(Self.rows(of: result))
            default:
                if firstError == nil { firstError = error(from: result) }
            }
        }
        // The sync's own answer, then back to one statement at a time.
        if let sync = PQgetResult(handle) { PQclear(sync) }
        if PQexitPipelineMode(handle) != 1 {
            finish()
        }
        updateReusable()
        if let firstError { throw firstError }
        return results
    }

    private func lostConnection(_ handle: OpaquePointer) -> PostgresError {
        PostgresError(kind: .connection, message: Self.message(PQerrorMessage(handle)) ?? "the connection was lost")
    }

    private static func rejectNUL(in query: PostgresQuery) throws {
        for (index, bind) in query.binds.enumerated() where bind.text?.utf8.contains(0) == true {
            throw PostgresError(
                kind: .query, sqlState: "22021",
                message: "parameter $\(index + 1) contains a NUL character, which PostgreSQL text cannot hold")
        }
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

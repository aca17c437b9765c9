import CLibPQ
import Dispatch
import Foundation
import Synchronization

/// The rows and the affected-row count of one statement.
struct PostgresResult: Sendable {
    var rows: [PostgresRow] = []
    var rowsAffected = 0
}

/// One libpq connection (`PGconn*`).
///
/// Every libpq call on the handle runs on the connection's own serial `DispatchQueue`: the
/// async methods hop there and resume the caller when libpq returns, so a blocking libpq call
/// never blocks the caller's thread or Swift's cooperative pool. Statements are prepared on
/// first use and reused (`s1`, `s2`, ... keyed by SQL text and parameter types).
///
/// Usually borrowed from a `PostgresPool`; a connection serves one caller at a time.
public final class PostgresConnection: @unchecked Sendable {
    // @unchecked Sendable: `handle` and `statementNames` are read and written only on
    // `queue` (a serial queue); `reusable` is an Atomic. Nothing else is mutable.
    private let queue: DispatchQueue
    private var handle: OpaquePointer?
    private var statementNames: [StatementKey: String] = [:]
    private let reusable = Atomic<Bool>(false)

    /// Beyond this many prepared statements (SQL built with `unsafeRaw`, say), new SQL runs
    /// through the unnamed statement instead, so the cache cannot grow without bound.
    static let preparedStatementLimit = 500

    private struct StatementKey: Hashable {
        let sql: String
        let types: [UInt32]
    }

    private init() {
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
        let connection = PostgresConnection()
        try await connection.onQueue { try connection.open(configuration) }
        return connection
    }

    /// Runs a statement and returns its rows.
    public func query(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await onQueue { try self.run(query) }.rows
    }

    /// Runs a statement and returns the number of rows it inserted, updated or deleted.
    @discardableResult
    public func execute(_ query: PostgresQuery) async throws -> Int {
        try await onQueue { try self.run(query) }.rowsAffected
    }

    /// Runs SQL text without parameters through the simple query protocol: it may hold several
    /// statements (a migration file) or transaction control (`BEGIN`, `COMMIT`).
    public func simpleExecute(_ sql: String) async throws {
        try await onQueue { try self.runSimple(sql) }
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
        let connection = PostgresConnection()
        try connection.queue.sync { try connection.open(configuration) }
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

    /// Whether an idle connection is still usable, reading whatever the server sent while it
    /// was idle: after a server restart this finds the connection closed without sending
    /// anything, so the pool can replace it safely.
    func isAlive() async -> Bool {
        (try? await onQueue { self.checkAlive() }) ?? false
    }

    // MARK: On the queue

    private func onQueue<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try work() }) }
        }
    }

    private func open(_ configuration: PostgresConfiguration) throws {
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
        for (index, bind) in query.binds.enumerated() where bind.text?.utf8.contains(0) == true {
            throw PostgresError(
                kind: .query, sqlState: "22021",
                message: "parameter $\(index + 1) contains a NUL character, which PostgreSQL text cannot hold")
        }
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

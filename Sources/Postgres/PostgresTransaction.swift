import Synchronization

extension PostgresPool {
    /// Runs `body` in a transaction, with `set_config(name, value, true)` for each of `settings`
    /// first (transaction-local, such as `("heard.tenant_id", id)` for row-level security);
    /// it commits when `body` returns and rolls back when it throws (the error is rethrown).
    ///
    /// Round trips are few, and a connection is taken only when something is sent:
    /// - a transaction whose first statement is its last (`queryAndCommit`), or that only
    ///   `enqueue`s, is one unit: the settings, what was queued and that statement go in one
    ///   round trip, on a shared connection (see `pipeline(_:)`);
    /// - otherwise its first `query` or `execute` takes a connection for the transaction alone
    ///   and sends `BEGIN` and the settings with it; statements `enqueue`d travel with the
    ///   next statement or with `COMMIT`;
    /// - a body that sends nothing (a request refused by validation) costs no round trip.
    ///
    /// The transaction must not be used after `body` returns.
    public func transaction<Value>(
        settings: [(name: String, value: String)] = [],
        _ body: (PostgresTransaction) async throws -> Value
    ) async throws -> Value {
        let transaction = PostgresTransaction(pool: self, settings: Self.settingsStatement(settings))
        do {
            let result = try await body(transaction)
            try await transaction.commit()
            transaction.end()
            return result
        } catch {
            // A connection that cannot be rolled back is closed: given back, it is discarded.
            if let connection = transaction.ownConnection {
                do { try await connection.simpleExecute("ROLLBACK") } catch { connection.close() }
            }
            transaction.end()
            throw error
        }
    }

    /// One statement setting every setting (nil when there are none).
    private static func settingsStatement(_ settings: [(name: String, value: String)]) -> PostgresQuery? {
        guard !settings.isEmpty else { return nil }
        let calls = settings.indices.map { "set_config($\(2 * $0 + 1), $\(2 * $0 + 2), true)" }
        let binds = settings.flatMap { [PostgresBind($0.name), PostgresBind($0.value)] }
        return PostgresQuery(unsafeSQL: "SELECT " + calls.joined(separator: ", "), binds: binds)
    }
}

/// A transaction in progress (see `PostgresPool.transaction`).
public struct PostgresTransaction: Sendable {
    private let pool: PostgresPool
    private let shared: Shared

    /// The phase, shared by the copies of the transaction its body may make.
    private final class Shared: Sendable {
        let phase: Mutex<Phase>
        init(_ phase: Phase) { self.phase = Mutex(phase) }
    }

    /// Where the transaction is. What is unsent (its settings, statements `enqueue`d) exists
    /// only before `COMMIT` is sent; a connection only once `BEGIN` went out on it.
    private enum Phase {
        /// Nothing sent yet: the settings and what is queued wait for the first statement.
        case unsent(settings: PostgresQuery?, queued: [PostgresQuery])
        /// The first `query` or `execute` is taking a connection for the transaction alone;
        /// no other statement may start until it is answered, since they must follow its `BEGIN`.
        case beginning(settings: PostgresQuery?, queued: [PostgresQuery])
        /// `BEGIN` and the settings were sent on the transaction's own connection (with the
        /// first statement, still unanswered while `firstInFlight`).
        case begun(PostgresConnection, queued: [PostgresQuery], firstInFlight: Bool)
        /// `COMMIT` was sent (by `queryAndCommit`, or by `commit` as the body returned), on the
        /// own connection if there is one; `queuedAfterwards` when a statement was queued since,
        /// which can no longer run.
        case committed(PostgresConnection?, queuedAfterwards: Bool)
        /// The body has returned or thrown, and the connection, if any, went back to the pool.
        case ended
    }

    init(pool: PostgresPool, settings: PostgresQuery?) {
        self.pool = pool
        self.shared = Shared(.unsent(settings: settings, queued: []))
    }

    /// The connection taken for this transaction alone, if any (so a failure must roll back).
    var ownConnection: PostgresConnection? {
        shared.phase.withLock { phase in
            switch phase {
            case .begun(let connection, _, _): connection
            case .committed(let connection, _): connection
            case .unsent, .beginning, .ended: nil
            }
        }
    }

    /// Ends the transaction, giving its own connection back to the pool.
    func end() {
        let connection = ownConnection
        shared.phase.withLock { $0 = .ended }
        if let connection { pool.release(connection) }
    }

    /// Runs one statement in the transaction and returns its rows.
    public func query(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await send(query).rows
    }

    /// Runs one statement in the transaction and returns the number of rows it changed.
    @discardableResult
    public func execute(_ query: PostgresQuery) async throws -> Int {
        try await send(query).rowsAffected
    }

    /// Queues a statement whose answer the caller does not need (an audit row): it is sent with
    /// the transaction's next statement, or with the commit, so it costs no round trip of its
    /// own. If it fails, that statement (or the commit) throws its error and nothing commits.
    public func enqueue(_ query: PostgresQuery) {
        shared.phase.withLock { phase in
            switch phase {
            case .unsent(let settings, let queued): phase = .unsent(settings: settings, queued: queued + [query])
            case .beginning(let settings, let queued): phase = .beginning(settings: settings, queued: queued + [query])
            case .begun(let connection, let queued, let first): phase = .begun(connection, queued: queued + [query], firstInFlight: first)
            case .committed(let connection, _): phase = .committed(connection, queuedAfterwards: true)
            case .ended: break
            }
        }
    }

    /// Runs `query` as the transaction's last statement and commits in the same round trip
    /// (with whatever is still unsent before it), so the transaction holds its locks only while
    /// PostgreSQL works, never while the caller does. If nothing was sent before, the whole
    /// transaction is one unit on a shared connection (`PostgresPool.pipeline`). Nothing may
    /// run in the transaction after.
    public func queryAndCommit(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await queryAndCommit([query])[0]
    }

    /// Like `queryAndCommit(_:)` for several last statements, sent together, in order: the rows
    /// of each. (Reads that do not depend on each other's answers, such as a record and the
    /// rows that complete it, then cost one round trip between them.)
    public func queryAndCommit(_ queries: [PostgresQuery]) async throws -> [[PostgresRow]] {
        guard !queries.isEmpty else { return [] }
        let (connection, unsent) = try shared.phase.withLock { phase -> (PostgresConnection?, [PostgresQuery]) in
            switch phase {
            case .unsent(let settings, let queued):
                phase = .committed(nil, queuedAfterwards: false)
                return (nil, (settings.map { [$0] } ?? []) + queued)
            case .begun(let connection, let queued, firstInFlight: false):
                phase = .committed(connection, queuedAfterwards: false)
                return (connection, queued)
            case .beginning, .begun, .committed, .ended:
                throw Self.refusal(in: phase)
            }
        }
        guard let connection else {
            let results = try await pool.pipeline(unsent + queries)
            guard results.count >= queries.count else { throw Self.noResult }
            return results.suffix(queries.count).map(\.rows)
        }
        let results = try await connection.pipeline(unsent + queries + ["COMMIT"])
        guard results.count >= queries.count + 1 else { throw Self.noResult }
        return results.dropLast().suffix(queries.count).map(\.rows)
    }

    /// Sends `query` with what is unsent, on the transaction's own connection (the first
    /// statement takes it: see `begin`).
    private func send(_ query: PostgresQuery) async throws -> PostgresResult {
        let own = try shared.phase.withLock { phase -> (PostgresConnection, [PostgresQuery])? in
            switch phase {
            case .unsent(let settings, let queued):
                phase = .beginning(settings: settings, queued: queued)
                return nil
            case .begun(let connection, let queued, firstInFlight: false):
                phase = .begun(connection, queued: [], firstInFlight: false)
                return (connection, queued + [query])
            case .beginning, .begun, .committed, .ended:
                throw Self.refusal(in: phase)
            }
        }
        guard let (connection, statements) = own else { return try await begin(with: query) }
        guard let result = try await connection.pipeline(statements).last else { throw Self.noResult }
        return result
    }

    /// The first statement: takes a connection for the transaction alone and sends `BEGIN`, the
    /// settings and what is queued with `query`. Other statements wait for its answer.
    private func begin(with query: PostgresQuery) async throws -> PostgresResult {
        let connection: PostgresConnection
        do {
            connection = try await pool.acquire()
        } catch {
            shared.phase.withLock { phase in
                if case .beginning(let settings, let queued) = phase { phase = .unsent(settings: settings, queued: queued) }
            }
            throw error
        }
        let statements = shared.phase.withLock { phase -> [PostgresQuery]? in
            guard case .beginning(let settings, let queued) = phase else { return nil }
            phase = .begun(connection, queued: [], firstInFlight: true)
            return ["BEGIN"] + (settings.map { [$0] } ?? []) + queued + [query]
        }
        guard let statements else {
            pool.release(connection)
            throw Self.refusal(in: .ended)
        }
        defer {
            shared.phase.withLock { phase in
                if case .begun(let connection, let queued, firstInFlight: true) = phase {
                    phase = .begun(connection, queued: queued, firstInFlight: false)
                }
            }
        }
        guard let result = try await connection.pipeline(statements).last else { throw Self.noResult }
        return result
    }

    /// Commits: `COMMIT` with what is queued on the transaction's own connection, or, when
    /// nothing was sent, what is queued as one unit; nothing at all when nothing was sent or
    /// queued, or when `queryAndCommit` already committed.
    func commit() async throws {
        let (connection, statements) = try shared.phase.withLock { phase -> (PostgresConnection?, [PostgresQuery]) in
            switch phase {
            case .unsent(let settings, let queued):
                phase = .committed(nil, queuedAfterwards: false)
                return (nil, queued.isEmpty ? [] : (settings.map { [$0] } ?? []) + queued)
            case .begun(let connection, let queued, _):
                phase = .committed(connection, queuedAfterwards: false)
                return (connection, queued + ["COMMIT"])
            case .committed(_, queuedAfterwards: false):
                return (nil, [])
            case .committed(_, queuedAfterwards: true):
                throw PostgresError(kind: .query, message: "a statement was queued after the transaction committed (queryAndCommit)")
            case .beginning, .ended:
                throw Self.refusal(in: phase)
            }
        }
        guard !statements.isEmpty else { return }
        if let connection {
            _ = try await connection.pipeline(statements)
        } else {
            _ = try await pool.pipeline(statements)
        }
    }

    /// Why nothing can be sent in `phase`.
    private static func refusal(in phase: Phase) -> PostgresError {
        switch phase {
        case .committed:
            PostgresError(kind: .query, message: "the transaction has already committed (queryAndCommit)")
        case .ended:
            PostgresError(kind: .query, message: "the transaction was used after its body returned")
        case .unsent, .beginning, .begun:
            PostgresError(kind: .query, message: "a transaction's statements must be sent one after another")
        }
    }

    private static var noResult: PostgresError { PostgresError(kind: .query, message: "the pipeline returned no result") }
}

/// What runs statements as units: a connection, or the pool that shares its connections. Each
/// says what a unit of `pipeline(_:)` is on it; `query` and `execute` are a unit of one.
public protocol PostgresPipelining: Sendable {
    /// Runs `queries` in order in one round trip and returns the result of each; when one fails,
    /// the ones after it do not run and its error is thrown.
    func pipeline(_ queries: [PostgresQuery]) async throws -> [PostgresResult]
}

extension PostgresPipelining {
    /// Runs one statement, as a unit, and returns its rows.
    public func query(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await pipeline([query])[0].rows
    }

    /// Runs one statement, as a unit, and returns the number of rows it inserted, updated or
    /// deleted.
    @discardableResult
    public func execute(_ query: PostgresQuery) async throws -> Int {
        try await pipeline([query])[0].rowsAffected
    }
}

/// Everything that can go wrong talking to PostgreSQL, with the server's SQLSTATE kept so
/// callers can map errors to answers (409 for a unique violation, 503 for a lost connection).
///
/// `description` is safe to log: it never contains bound parameter values (the server's
/// `detail`, and messages of the classes that quote input values, are left out).
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Could not connect, or the connection was lost (SQLSTATE class 08, 57P01-57P03).
        case connection
        /// No connection became free within the pool's acquire timeout, or too many were waiting.
        case poolTimeout
        /// The server rejected a statement.
        case query
        /// A column's value could not be decoded as the requested Swift type.
        case decode(column: String, expected: String, actual: String)
    }

    public var kind: Kind
    /// The five-character SQLSTATE code, when the server sent one.
    public var sqlState: String?
    /// The primary message. It may quote input values; prefer `description` for logs.
    public var message: String
    /// The server's detail line. It often contains values (`Key (email)=(...) already exists`).
    public var detail: String?
    /// The constraint a violation refers to.
    public var constraint: String?
    /// The table a violation refers to.
    public var table: String?
    /// The column a violation refers to.
    public var column: String?

    public init(
        kind: Kind,
        sqlState: String? = nil,
        message: String,
        detail: String? = nil,
        constraint: String? = nil,
        table: String? = nil,
        column: String? = nil
    ) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.constraint = constraint
        self.table = table
        self.column = column
    }

    /// `23505`: a unique or primary key constraint was violated.
    public var isUniqueViolation: Bool { sqlState == "23505" }

    /// The database is unavailable (connection trouble or pool exhausted): answer 503.
    public var isConnectionFailure: Bool {
        switch kind {
        case .connection, .poolTimeout: true
        case .query, .decode: false
        }
    }

    /// Whether a server SQLSTATE means the connection (or the server) went away.
    static func isConnectionState(_ sqlState: String?) -> Bool {
        guard let sqlState else { return false }
        return sqlState.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(sqlState)
    }

    public var description: String {
        var parts: [String] = []
        switch kind {
        case .connection: parts.append("connection")
        case .poolTimeout: parts.append("pool timeout")
        case .query: parts.append("query")
        case let .decode(column, expected, actual):
            parts.append("decode column \"\(column)\": expected \(expected), got \(actual)")
        }
        if let sqlState { parts.append("SQLSTATE \(sqlState)") }
        if let constraint { parts.append("constraint \(constraint)") }
        if let table { parts.append("table \(table)") }
        if let column { parts.append("column \(column)") }
        if case .decode = kind {
        } else if mayQuoteValues {
            parts.append("(message withheld: it may contain values)")
        } else {
            parts.append(message)
        }
        return "PostgresError(" + parts.joined(separator: ", ") + ")"
    }

    /// Data exceptions (class 22) quote the offending input, and `RAISE` messages (class P0)
    /// can say anything; other server messages are built from the SQL text and names.
    private var mayQuoteValues: Bool {
        guard let sqlState else { return false }
        return sqlState.hasPrefix("22") || sqlState.hasPrefix("P0")
    }
}

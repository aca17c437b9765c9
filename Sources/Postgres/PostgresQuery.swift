/// A statement whose values are always bound parameters, never spliced into the SQL.
///
/// ```swift
/// let query: PostgresQuery = "SELECT * FROM feedback WHERE id = \(id) AND tenant_id = \(tenant)"
/// // sql: "SELECT * FROM feedback WHERE id = $1 AND tenant_id = $2", two binds
/// ```
/// SQL text that must be spliced (an `ORDER BY` chosen from a fixed list) goes through
/// `\(unsafeRaw: ...)`, which is easy to find in review.
public struct PostgresQuery: Sendable, Hashable, ExpressibleByStringInterpolation, CustomStringConvertible {
    /// The SQL with `$1`, `$2`, ... placeholders.
    public var sql: String
    /// One entry per placeholder, in order.
    public var binds: [PostgresBind]

    /// A statement with explicit placeholders and values; `sql` must not contain values.
    public init(unsafeSQL sql: String, binds: [PostgresBind] = []) {
        self.sql = sql
        self.binds = binds
    }

    public init(stringLiteral value: String) {
        self.init(unsafeSQL: value)
    }

    public init(stringInterpolation: StringInterpolation) {
        self.init(unsafeSQL: stringInterpolation.sql, binds: stringInterpolation.binds)
    }

    /// The SQL and the number and types of its parameters; never their values.
    public var description: String {
        guard !binds.isEmpty else { return sql }
        return sql + " [" + binds.map { $0.type.description }.joined(separator: ", ") + "]"
    }

    public struct StringInterpolation: StringInterpolationProtocol, Sendable {
        var sql = ""
        var binds: [PostgresBind] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql.reserveCapacity(literalCapacity + 3 * interpolationCount)
            binds.reserveCapacity(interpolationCount)
        }

        public mutating func appendLiteral(_ literal: String) {
            sql += literal
        }

        /// Binds `value` as the next parameter and writes its placeholder.
        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value) {
            binds.append(PostgresBind(value))
            sql += "$\(binds.count)"
        }

        /// Binds `value`, or NULL when it is nil.
        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value?) {
            binds.append(PostgresBind(value))
            sql += "$\(binds.count)"
        }

        /// Binds an already-encoded value as the next parameter and writes its placeholder.
        mutating func appendBind(_ bind: PostgresBind) {
            binds.append(bind)
            sql += "$\(binds.count)"
        }

        /// Splices `sql` into the statement as is. Never pass anything derived from input.
        public mutating func appendInterpolation(unsafeRaw sql: String) {
            self.sql += sql
        }
    }
}

/// One bound parameter: its type and its text (nil for NULL).
public struct PostgresBind: Sendable, Hashable {
    public var type: PostgresDataType
    public var text: String?

    public init(type: PostgresDataType, text: String?) {
        self.type = type
        self.text = text
    }

    public init<Value: PostgresEncodable>(_ value: Value) {
        self.init(type: Value.postgresType, text: value.postgresText)
    }
}

/// A piece of a statement, with its own bound values, to be put together with others: the
/// conditions of a list's `WHERE` clause that depend on which filters a request names.
///
/// ```swift
/// var conditions: [SQLFragment] = ["f.tenant_id = \(tenant)"]
/// if let team { conditions.append("f.team = \(team)") }
/// let query: PostgresQuery = "SELECT ... WHERE \(SQLFragment.joined(conditions, separator: " AND "))"
/// ```
/// Values are bound and numbered only when the statement is put together, so fragments never
/// need to know each other's placeholders. Like `PostgresQuery`, SQL text goes in only through
/// literals and `\(unsafeRaw:)`.
public struct SQLFragment: Sendable, ExpressibleByStringInterpolation {
    enum Piece: Sendable {
        case sql(String)
        case bind(PostgresBind)
    }

    var pieces: [Piece]

    init(pieces: [Piece]) {
        self.pieces = pieces
    }

    public init(stringLiteral value: String) {
        pieces = [.sql(value)]
    }

    public init(stringInterpolation: StringInterpolation) {
        pieces = stringInterpolation.pieces
    }

    /// `fragments` one after another, `separator` between them.
    public static func joined(_ fragments: [SQLFragment], separator: String) -> SQLFragment {
        var pieces: [Piece] = []
        for (index, fragment) in fragments.enumerated() {
            if index > 0 { pieces.append(.sql(separator)) }
            pieces += fragment.pieces
        }
        return SQLFragment(pieces: pieces)
    }

    public struct StringInterpolation: StringInterpolationProtocol, Sendable {
        var pieces: [Piece] = []

        public init(literalCapacity: Int, interpolationCount: Int) {}

        public mutating func appendLiteral(_ literal: String) {
            pieces.append(.sql(literal))
        }

        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value) {
            pieces.append(.bind(PostgresBind(value)))
        }

        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value?) {
            pieces.append(.bind(PostgresBind(value)))
        }

        public mutating func appendInterpolation(_ fragment: SQLFragment) {
            pieces += fragment.pieces
        }

        /// Splices `sql` as is. Never pass anything derived from input.
        public mutating func appendInterpolation(unsafeRaw sql: String) {
            pieces.append(.sql(sql))
        }
    }
}

extension PostgresQuery.StringInterpolation {
    /// Writes `fragment`, numbering its values after those already bound.
    public mutating func appendInterpolation(_ fragment: SQLFragment) {
        for piece in fragment.pieces {
            switch piece {
            case .sql(let text):
                appendLiteral(text)
            case .bind(let bind):
                appendBind(bind)
            }
        }
    }
}

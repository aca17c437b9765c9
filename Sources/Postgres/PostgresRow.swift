/// The names and types of a result's columns, shared by all its rows.
struct PostgresColumns: Sendable {
    let names: [String]
    let types: [PostgresDataType]
    let indexByName: [String: Int]

    init(names: [String], types: [PostgresDataType]) {
        self.names = names
        self.types = types
        // With duplicate names (`SELECT a.id, b.id`), the first column wins, as in libpq.
        self.indexByName = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
    }
}

/// One row of a result, copied out of libpq (values in text format).
public struct PostgresRow: Sendable {
    let columns: PostgresColumns
    let values: [String?]

    /// The column names, in order.
    public var columnNames: [String] { columns.names }

    /// The number of columns.
    public var count: Int { values.count }

    /// Decodes the column called `name`.
    /// - Throws: `PostgresError` of kind `.decode` naming the column, the expected type and
    ///   what was found (another type, NULL, or no such column).
    public func decode<Value: PostgresDecodable>(_ type: Value.Type = Value.self, column name: String) throws -> Value {
        guard let index = columns.indexByName[name] else {
            throw Self.error(column: name, expected: Value.postgresTypeName, actual: "no such column")
        }
        return try decode(type, at: index)
    }

    /// Decodes the column at `index` (0-based).
    public func decode<Value: PostgresDecodable>(_ type: Value.Type = Value.self, at index: Int) throws -> Value {
        guard values.indices.contains(index) else {
            throw Self.error(column: "#\(index)", expected: Value.postgresTypeName, actual: "no such column")
        }
        let name = columns.names[index]
        let columnType = columns.types[index]
        guard let text = values[index] else {
            guard let null = Value.postgresNull else {
                throw Self.error(column: name, expected: Value.postgresTypeName, actual: "NULL")
            }
            return null
        }
        guard Value.accepts(columnType) else {
            throw Self.error(column: name, expected: Value.postgresTypeName, actual: columnType.description)
        }
        guard let value = Value(postgresText: text, type: columnType) else {
            throw Self.error(column: name, expected: Value.postgresTypeName, actual: "unreadable \(columnType) value")
        }
        return value
    }

    /// Whether the column called `name` is NULL (false when there is no such column).
    public func isNull(column name: String) -> Bool {
        guard let index = columns.indexByName[name] else { return false }
        return values[index] == nil
    }

    private static func error(column: String, expected: String, actual: String) -> PostgresError {
        PostgresError(
            kind: .decode(column: column, expected: expected, actual: actual),
            message: "cannot decode column \"\(column)\" as \(expected): found \(actual)")
    }
}

import Foundation

/// A Codable value stored as `jsonb`: bind `try PostgresJSON(value)`, decode
/// `row.decode(PostgresJSON<T>.self, column: "payload").value`.
public struct PostgresJSON<Value: Codable & Sendable>: PostgresCodable {
    public let value: Value
    /// The JSON text, encoded once when the value is wrapped.
    public let json: String

    /// Encodes `value` with `JSONEncoder` (sorted keys).
    public init(_ value: Value) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        self.value = value
        self.json = String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    public static var postgresType: PostgresDataType { .jsonb }
    public var postgresText: String? { json }

    public static var postgresTypeName: String { "jsonb" }
    public static func accepts(_ type: PostgresDataType) -> Bool { [.json, .jsonb].contains(type) }

    public init?(postgresText text: String, type: PostgresDataType) {
        guard let value = try? JSONDecoder().decode(Value.self, from: Data(text.utf8)) else { return nil }
        self.value = value
        self.json = text
    }
}

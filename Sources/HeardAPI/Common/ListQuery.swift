import Foundation
import HTTPServer
import Postgres

/// Reads a list endpoint's query string: known parameters only (an unknown or repeated one is a
/// 400 naming it, so a typo in an analyst's filter never silently widens the result), `limit`
/// (default 50, at most 500) and the opaque `cursor`.
public struct QueryReader {
    public static let defaultLimit = 50
    public static let maxLimit = 500

    private let query: QueryParameters
    public private(set) var errors: [FieldError] = []
    /// Whether the endpoint asked for the format (it exports CSV); if not, only `json` is accepted.
    private var formatRead = false

    /// - Parameters:
    ///   - allowed: the filters this endpoint has;
    ///   - paged: whether it pages (`limit`, `cursor`) and exports (`format`).
    public init(_ query: QueryParameters, allowed: Set<String>, paged: Bool = true) {
        self.query = query
        let known = paged ? allowed.union(["limit", "cursor", "format"]) : allowed
        var seen = Set<String>()
        for name in query.names {
            if !known.contains(name) {
                errors.append(FieldError(field: name, message: "is not a parameter of this endpoint"))
            } else if !seen.insert(name).inserted {
                errors.append(FieldError(field: name, message: "is given more than once"))
            }
        }
    }

    public mutating func limit() -> Int {
        guard let text = query["limit"] else { return Self.defaultLimit }
        guard let value = Int(text), (1...Self.maxLimit).contains(value) else {
            errors.append(FieldError(field: "limit", message: "must be a whole number from 1 to \(Self.maxLimit)"))
            return Self.defaultLimit
        }
        return value
    }

    /// The position a previous page ended at, decoded from the opaque `cursor` (or the parameter
    /// `name`) and checked against the list's order: one value of the right type per key.
    mutating func cursor(_ order: ListOrder, name: String = "cursor") -> [String]? {
        guard let text = query[name] else { return nil }
        guard let position = Cursor.decode(text, as: [String].self), order.accepts(position) else {
            errors.append(FieldError(field: name, message: "is not a cursor this endpoint gave out"))
            return nil
        }
        return position
    }

    /// Records a problem with `name` (for rules across parameters).
    public mutating func reject(_ name: String, _ message: String) {
        errors.append(FieldError(field: name, message: message))
    }

    public mutating func string(_ name: String, maxLength: Int = 200) -> String? {
        guard let text = query[name] else { return nil }
        guard !text.isEmpty, text.count <= maxLength else {
            errors.append(FieldError(field: name, message: "must be 1 to \(maxLength) characters"))
            return nil
        }
        guard !text.utf8.contains(0) else {
            errors.append(FieldError(field: name, message: "must not contain NUL characters"))
            return nil
        }
        return text
    }

    public mutating func date(_ name: String) -> CalendarDate? {
        guard let text = query[name] else { return nil }
        guard text.utf8.count == 10, let date = CalendarDate(text) else {
            errors.append(FieldError(field: name, message: "must be a date, YYYY-MM-DD"))
            return nil
        }
        return date
    }

    public mutating func uuid(_ name: String) -> UUID? {
        guard let text = query[name] else { return nil }
        guard let id = UUID(uuidString: text) else {
            errors.append(FieldError(field: name, message: "must be a UUID"))
            return nil
        }
        return id
    }

    public mutating func vocabulary<Value: RawRepresentable & CaseIterable>(_ name: String, _ type: Value.Type) -> Value? where Value.RawValue == String {
        guard let text = query[name] else { return nil }
        guard let value = Value(rawValue: text) else {
            errors.append(FieldError(field: name, message: "must be one of: \(Value.allCases.map(\.rawValue).joined(separator: ", "))"))
            return nil
        }
        return value
    }

    /// A whole number within `range`.
    public mutating func integer(_ name: String, in range: ClosedRange<Int>) -> Int? {
        guard let text = query[name] else { return nil }
        guard let value = Int(text), range.contains(value) else {
            errors.append(FieldError(field: name, message: "must be a whole number from \(range.lowerBound) to \(range.upperBound)"))
            return nil
        }
        return value
    }

    /// `true` or `false`.
    public mutating func bool(_ name: String) -> Bool? {
        guard let text = query[name] else { return nil }
        switch text {
        case "true": return true
        case "false": return false
        default:
            errors.append(FieldError(field: name, message: "must be true or false"))
            return nil
        }
    }

    /// JSON or CSV: `?format=json|csv` when given (anything else is a 400 naming `format`),
    /// otherwise CSV when the `Accept` header prefers `text/csv` to `application/json`.
    public mutating func format(accept: String?) -> ListFormat {
        formatRead = true
        if let text = query["format"] {
            guard let format = ListFormat(rawValue: text) else {
                errors.append(FieldError(field: "format", message: "must be json or csv"))
                return .json
            }
            return format
        }
        return ListFormat(accept: accept)
    }

    /// Throws 400 naming every parameter at fault.
    public func finish() throws(HTTPError) {
        var errors = errors
        if !formatRead, let format = query["format"], format != "json", !errors.contains(where: { $0.field == "format" }) {
            errors.append(FieldError(field: "format", message: "must be json (the only format of this list)"))
        }
        guard errors.isEmpty else { throw HTTPError.invalidQuery(errors) }
    }
}

/// How a list answers: JSON (`Page`) or CSV (`CSVWriter`).
public enum ListFormat: String, Sendable, CaseIterable {
    case json, csv

    /// From an `Accept` header: CSV when it lists `text/csv` with a quality at least that of
    /// `application/json` (when that is listed too); JSON otherwise, the default.
    public init(accept: String?) {
        var csv: Double?, json: Double?
        for range in (accept ?? "").split(separator: ",") {
            let parts = range.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let type = parts.first else { continue }
            var quality = 1.0
            for parameter in parts.dropFirst() where parameter.hasPrefix("q=") {
                quality = Double(parameter.dropFirst(2)) ?? 0
            }
            if type == "text/csv" { csv = max(csv ?? 0, quality) }
            if type == "application/json" { json = max(json ?? 0, quality) }
        }
        if let csv, csv > 0, csv >= (json ?? 0) { self = .csv } else { self = .json }
    }
}

/// Opaque page positions: base64url of a small JSON document. Opaque to clients, so the
/// position's shape can change without breaking them.
public enum Cursor {
    public static func encode<Position: Encodable>(_ position: Position) -> String {
        let json = JSON.encode(position)
        return Data(json).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public static func decode<Position: Decodable>(_ text: String, as type: Position.Type) -> Position? {
        guard text.utf8.count <= 512 else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.utf8.count % 4) % 4)
        guard let data = Data(base64Encoded: base64) else { return nil }
        return try? JSONDecoder().decode(type, from: data)  // positions spell their keys as JSON.encode writes them
    }

    /// The `Link` header value for the next page: the request's path and parameters, with
    /// `cursor` set to `next`.
    public static func nextLink(_ next: String, for request: Request) -> String {
        var parameters = request.query.filter { $0.name != "cursor" }.map { "\(percentEncode($0.name))=\(percentEncode($0.value))" }
        parameters.append("cursor=\(next)")
        return "<\(request.path)?\(parameters.joined(separator: "&"))>; rel=\"next\""
    }

    static func percentEncode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
    }
}

/// One page of a list: `items`, and `next_cursor` when there is more (also sent as a
/// `Link: <...>; rel="next"` header).
public struct Page<Item: Encodable & Sendable>: Encodable, Sendable {
    public var items: [Item]
    public var nextCursor: String?

    public init(items: [Item], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }

    /// The JSON response with its `Link` header; `request` gives the path and other parameters.
    public func response(for request: Request) -> Response {
        var response = Response.json(self)
        if let nextCursor {
            response.headers.add(name: "Link", value: Cursor.nextLink(nextCursor, for: request))
        }
        return response
    }

    private enum CodingKeys: String, CodingKey {
        case items
        case nextCursor = "next_cursor"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(items, forKey: .items)
        try container.encodeOrNull(nextCursor, forKey: .nextCursor)  // null when there is no next page
    }
}

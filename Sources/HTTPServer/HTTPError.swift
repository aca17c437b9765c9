import Foundation

/// The one error type handlers throw for an answer other than success. It is rendered one way:
/// an RFC 9457 `application/problem+json` body.
public struct HTTPError: Error, Sendable {
    public var status: HTTPStatus
    /// A URI naming the kind of problem; `about:blank` when the status says it all.
    public var type: String
    public var title: String
    public var detail: String
    /// For validation problems: every field at fault, at once.
    public var errors: [FieldError]
    /// Extra response headers (`Allow`, `Retry-After`, `WWW-Authenticate`...).
    public var headers: HTTPHeaders
    /// Extension members of the problem document (RFC 9457 §3.2), e.g. `existing_id`.
    public var extensions: [String: ProblemExtension] = [:]

    /// A problem whose status says it all: `about:blank`, titled with the reason phrase.
    public init(_ status: HTTPStatus, detail: String, errors: [FieldError] = [], headers: HTTPHeaders = HTTPHeaders()) {
        self.status = status
        self.type = "about:blank"
        self.title = status.reasonPhrase
        self.detail = detail
        self.errors = FieldError.capped(errors)
        self.headers = headers
    }

    /// A problem of a kind from the catalogue: its type, title and status come from `problem`.
    public init(_ problem: ProblemType, detail: String, errors: [FieldError] = [], headers: HTTPHeaders = HTTPHeaders()) {
        self.status = problem.status
        self.type = problem.uri
        self.title = problem.title
        self.detail = detail
        self.errors = FieldError.capped(errors)
        self.headers = headers
    }

    /// 422 with the list of fields at fault.
    public static func validation(_ errors: [FieldError], detail: String? = nil) -> HTTPError {
        HTTPError(.validationFailed, detail: detail ?? "\(errors.count) field\(errors.count == 1 ? "" : "s") did not pass validation.",
                  errors: errors)
    }

    /// 400 naming every query parameter at fault.
    public static func invalidQuery(_ errors: [FieldError], detail: String? = nil) -> HTTPError {
        HTTPError(.invalidQuery, detail: detail ?? "\(errors.count) parameter\(errors.count == 1 ? "" : "s") did not pass validation.",
                  errors: errors)
    }

    public var response: Response {
        var response = Response(status: status, headers: headers)
        let problem = ProblemDocument(
            type: type, title: title, status: status.code, detail: detail,
            errors: errors.isEmpty ? nil : errors, extensions: extensions)
        response.body = JSON.encode(problem)
        response.headers.replaceOrAdd(name: "Content-Type", value: "application/problem+json")
        return response
    }
}

/// A kind of problem with a meaning of its own (RFC 9457 §3.1.1): declared once, with its title
/// and status, and answered as `urn:heard:problem:<slug>`. Problems whose status says it all
/// (404 for a path nothing lives at, 405, 413...) are `about:blank` and need no entry.
///
/// The ones every HTTP service has are here; an application declares its own beside them
/// (`extension ProblemType { static let ... }`) and lists them all in one catalogue, which
/// `openapi.yaml` lists too.
public struct ProblemType: Sendable, Hashable {
    public let slug: String
    public let title: String
    public let status: HTTPStatus

    public init(_ slug: String, _ status: HTTPStatus, title: String) {
        self.slug = slug
        self.status = status
        self.title = title
    }

    public var uri: String { "urn:heard:problem:\(slug)" }

    /// The body is not JSON Heard accepts (syntax, duplicate keys, NUL, invalid UTF-8, depth).
    public static let malformedJSON = ProblemType("malformed-json", .badRequest, title: "The body is not acceptable JSON")
    /// Valid JSON, not a valid request: `errors` names every field at fault.
    public static let validationFailed = ProblemType("validation-failed", .unprocessableContent, title: "The request is not valid")
    /// A query parameter is unknown, repeated or invalid: `errors` names each.
    public static let invalidQuery = ProblemType("invalid-query", .badRequest, title: "The query string is not valid")

    /// The problems of this module.
    public static let http: [ProblemType] = [malformedJSON, validationFailed, invalidQuery]
}

/// One field at fault: a JSON Pointer-ish path (`responses[2].score`, `limit`) and why.
public struct FieldError: Sendable, Codable, Equatable {
    public var field: String
    public var message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    /// Most errors one answer lists; and the longest field name or message it repeats (a field
    /// name can be a client's JSON key or query parameter).
    public static let maxCount = 100
    public static let maxTextLength = 200

    /// `errors` as an answer lists them: at most `maxCount`, each name and message cut to
    /// `maxTextLength` characters, so no input makes an error answer larger than itself.
    public static func capped(_ errors: [FieldError]) -> [FieldError] {
        func cut(_ text: String) -> String {
            text.count <= maxTextLength ? text : String(text.prefix(maxTextLength - 1)) + "…"
        }
        return errors.prefix(maxCount).map { FieldError(field: cut($0.field), message: cut($0.message)) }
    }
}

/// The value of a problem's extension member: text, or a list of texts.
public enum ProblemExtension: Sendable, Encodable, Equatable, ExpressibleByStringLiteral {
    case text(String)
    case list([String])

    public init(stringLiteral value: String) { self = .text(value) }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .text(let text): try container.encode(text)
        case .list(let list): try container.encode(list)
        }
    }
}

struct ProblemDocument: Encodable {
    var type: String
    var title: String
    var status: Int
    var detail: String
    var errors: [FieldError]?
    var extensions: [String: ProblemExtension]

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        for (name, value) in extensions where !["type", "title", "status", "detail", "errors"].contains(name) {
            try container.encode(value, forKey: Key(stringValue: name))
        }
        try container.encode(type, forKey: Key(stringValue: "type"))
        try container.encode(title, forKey: Key(stringValue: "title"))
        try container.encode(status, forKey: Key(stringValue: "status"))
        try container.encode(detail, forKey: Key(stringValue: "detail"))
        if let errors { try container.encode(errors, forKey: Key(stringValue: "errors")) }
    }
}

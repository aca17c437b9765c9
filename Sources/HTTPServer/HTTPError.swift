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
    public var extensions: [String: String] = [:]

    public init(
        _ status: HTTPStatus, type: String? = nil, title: String? = nil, detail: String,
        errors: [FieldError] = [], headers: HTTPHeaders = HTTPHeaders()
    ) {
        self.status = status
        self.type = type.map { "urn:heard:problem:\($0)" } ?? "about:blank"
        self.title = title ?? status.reasonPhrase
        self.detail = detail
        self.errors = errors
        self.headers = headers
    }

    /// 422 with the list of fields at fault.
    public static func validation(_ errors: [FieldError], detail: String? = nil) -> HTTPError {
        HTTPError(
            .unprocessableContent, type: "validation-failed", title: "The request is not valid",
            detail: detail ?? "\(errors.count) field\(errors.count == 1 ? "" : "s") did not pass validation.",
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

/// One field at fault: a JSON Pointer-ish path (`responses[2].score`, `limit`) and why.
public struct FieldError: Sendable, Codable, Equatable {
    public var field: String
    public var message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }
}

struct ProblemDocument: Encodable {
    var type: String
    var title: String
    var status: Int
    var detail: String
    var errors: [FieldError]?
    var extensions: [String: String]

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

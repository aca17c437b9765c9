import HTTPServer

/// Conditional requests (RFC 9110 §13), one way for every record:
/// - a record's `ETag` is its version, quoted: `"3"` (strong: every change makes a new version);
/// - `If-None-Match` on a read answers 304 when it names the current tag or is `*` (weak
///   comparison: `W/"3"` matches too);
/// - `If-Match` on a change must name the current tag or be `*` (strong comparison: a weak tag
///   never matches): 412 with the current `ETag` when stale, 428 when a change needs it and it
///   is missing.
///
/// ```swift
/// let precondition = try IfMatch.required(request)     // 428 before any work
/// ... let current = read ...
/// try precondition?.check(current: ETag.of(version: current.version))  // 412 when stale
/// ```
enum ETag {
    static func of(version: Int) -> String { "\"\(version)\"" }

    /// The tags of an `If-Match` or `If-None-Match` list, as sent.
    fileprivate static func list(_ header: String) -> [Substring] {
        header.split(separator: ",").map { $0.drop { $0 == " " || $0 == "\t" } }.map { tag in
            var tag = tag
            while tag.last == " " || tag.last == "\t" { tag.removeLast() }
            return tag
        }
    }
}

/// A read's `If-None-Match`.
enum IfNoneMatch {
    /// 304 with the tag, when the client's copy is current; nil to answer in full.
    static func notModified(_ request: Request, etag: String) -> Response? {
        guard let header = request.headers["If-None-Match"] else { return nil }
        let matches = ETag.list(header).contains { $0 == "*" || $0 == etag || ($0.hasPrefix("W/") && $0.dropFirst(2) == etag) }
        return matches ? Response(status: .notModified, headers: ["ETag": etag]) : nil
    }
}

/// A change's `If-Match`.
struct IfMatch: Sendable {
    private let tags: [String]

    /// The request's `If-Match`, or nil when it has none.
    init?(_ request: Request) {
        guard let header = request.headers["If-Match"] else { return nil }
        tags = ETag.list(header).map(String.init)
    }

    /// The request's `If-Match`, which this change needs: 428 without it.
    static func required(_ request: Request) throws(HTTPError) -> IfMatch {
        guard let precondition = IfMatch(request) else {
            throw HTTPError(.ifMatchRequired,
                            detail: "Send If-Match with the ETag you last read, so a change never overwrites one you have not seen.")
        }
        return precondition
    }

    /// 412 with the current tag unless the request's list names it (or is `*`).
    func check(current etag: String) throws(HTTPError) {
        guard tags.contains(where: { $0 == "*" || $0 == etag }) else {
            throw HTTPError(.staleETag, detail: "The record has changed since you read it (it is at ETag \(etag)); read it again.",
                            headers: ["ETag": etag])
        }
    }

    /// The 412 for a guarded write that found the version moved between its read and its update.
    static let changedMeanwhile = HTTPError(.staleETag, detail: "The record changed while you were changing it; read it again.")
}

/// A handler: from a request to a response. Throw `HTTPError` for any answer that is not success.
public typealias Handler = @Sendable (Request) async throws -> Response

/// What the server calls for every parsed request. `Router` is the one the service uses; tests
/// may supply their own.
public protocol Responder: Sendable {
    func respond(to request: Request) async -> Response
}

/// Cross-origin access for a partner portal in a browser: only listed origins get CORS headers.
public struct CORSPolicy: Sendable {
    public var allowedOrigins: Set<String>
    public var allowedHeaders = ["Authorization", "Content-Type", "Idempotency-Key", "If-Match", "If-None-Match", "X-Request-Id"]
    public var exposedHeaders = ["ETag", "Link", "Location", "Retry-After", "X-Request-Id"]
    public var maxAgeSeconds = 600
    /// Paths anyone may read from any origin (keyless, public data): their `GET` and `HEAD`
    /// answers carry `Access-Control-Allow-Origin: *`, and a preflight there allows `GET` and
    /// `HEAD` from any origin, never with credentials.
    public var publicPathPrefixes: [String] = []
    public var publicAllowedHeaders = ["If-None-Match", "Accept"]

    func isPublic(_ path: String) -> Bool {
        publicPathPrefixes.contains { path.hasPrefix($0) }
    }

    public init(allowedOrigins: some Sequence<String> = []) {
        self.allowedOrigins = Set(allowedOrigins)
    }
}

/// A handler and facts about it that the layer above records for itself (e.g. the scope it
/// needs). The router keeps them for `Router.routes` and never reads them.
public struct Endpoint: Sendable {
    public var handler: Handler
    public var metadata: [String: String]

    public init(metadata: [String: String] = [:], _ handler: @escaping Handler) {
        self.handler = handler
        self.metadata = metadata
    }
}

/// Collects routes, then `build()` freezes them into a `Router`.
public struct RouterBuilder: Sendable {
    private var routes: [Router.Route] = []

    public init() {}

    /// Adds a route. `template` is a path with `{name}` segments, e.g. `/v1/complaints/{id}`.
    public mutating func add(_ method: String, _ template: String, _ endpoint: Endpoint) {
        let segments = Router.segments(of: template).map { segment -> Router.Segment in
            segment.hasPrefix("{") && segment.hasSuffix("}")
                ? .parameter(String(segment.dropFirst().dropLast())) : .literal(String(segment))
        }
        precondition(!routes.contains { $0.method == method && $0.template == template },
                     "route \(method) \(template) added twice")
        routes.append(Router.Route(method: method, template: template, segments: segments, handler: endpoint.handler,
                                   metadata: endpoint.metadata))
    }

    public mutating func add(_ method: String, _ template: String, _ handler: @escaping Handler) {
        add(method, template, Endpoint(handler))
    }

    public mutating func get(_ template: String, _ handler: @escaping Handler) { add("GET", template, handler) }
    public mutating func post(_ template: String, _ handler: @escaping Handler) { add("POST", template, handler) }
    public mutating func put(_ template: String, _ handler: @escaping Handler) { add("PUT", template, handler) }
    public mutating func patch(_ template: String, _ handler: @escaping Handler) { add("PATCH", template, handler) }
    public mutating func delete(_ template: String, _ handler: @escaping Handler) { add("DELETE", template, handler) }
    public mutating func get(_ template: String, _ endpoint: Endpoint) { add("GET", template, endpoint) }
    public mutating func post(_ template: String, _ endpoint: Endpoint) { add("POST", template, endpoint) }
    public mutating func put(_ template: String, _ endpoint: Endpoint) { add("PUT", template, endpoint) }
    public mutating func patch(_ template: String, _ endpoint: Endpoint) { add("PATCH", template, endpoint) }
    public mutating func delete(_ template: String, _ endpoint: Endpoint) { add("DELETE", template, endpoint) }

    /// - Parameter mapError: turns an error a handler threw (other than `HTTPError`) into an
    ///   answer, e.g. a lost database into 503; nil means 500.
    public func build(cors: CORSPolicy = CORSPolicy(), mapError: @escaping @Sendable (any Error) -> HTTPError? = { _ in nil }) -> Router {
        Router(routes: routes, cors: cors, mapError: mapError)
    }
}

/// Matches method + path template, answers 404, 405 with `Allow`, HEAD for every GET, OPTIONS
/// and CORS itself, and renders every error as problem+json.
public struct Router: Responder {
    enum Segment: Sendable {
        case literal(String)
        case parameter(String)
    }

    struct Route: Sendable {
        var method: String
        var template: String
        var segments: [Segment]
        var handler: Handler
        var metadata: [String: String]

        /// Literal segments win over parameters: `/feedback/batch` before `/feedback/{id}`.
        var specificity: [Int] { segments.map { if case .literal = $0 { 1 } else { 0 } } }
    }

    /// A path template and every method it answers: the routes sharing one template, compiled
    /// for matching without making a String per path segment. A class, immutable once made: a
    /// request's match passes over many, and a reference is one retain where a struct of
    /// strings and arrays is several.
    final class Resource: Sendable {
        enum Pattern: Sendable {
            case literal(String, bytes: [UInt8])
            case parameter(String)
        }

        let template: String
        let patterns: [Pattern]
        /// In the order the routes were sorted in, which decides the first that answers a method.
        let methods: [(method: String, handler: Handler)]
        /// The `Allow` header for 405 and OPTIONS answers.
        let allow: String
        let hasParameters: Bool
        let isASCII: Bool

        /// `routes` share one template.
        init(routes: [Route]) {
            template = routes[0].template
            patterns = routes[0].segments.map { segment in
                switch segment {
                case .literal(let text): .literal(text, bytes: Array(text.utf8))
                case .parameter(let name): .parameter(name)
                }
            }
            methods = routes.map { ($0.method, $0.handler) }
            allow = Router.allowHeader(routes.map(\.method))
            hasParameters = patterns.contains { if case .parameter = $0 { true } else { false } }
            isASCII = template.utf8.allSatisfy { $0 < 0x80 }
        }

        /// Whether the raw bytes of a path without escapes have exactly these segments.
        func matches(_ path: UnsafeBufferPointer<UInt8>) -> Bool {
            var segments = PathSegments(path)
            for pattern in patterns {
                guard let range = segments.next() else { return false }
                if case .literal(_, let bytes) = pattern,
                   bytes.count != range.count || !bytes.elementsEqual(path[range]) { return false }
            }
            return segments.next() == nil
        }

        /// The parameter values of a path `matches` accepted.
        func parameters(in path: UnsafeBufferPointer<UInt8>) -> [String: String] {
            var parameters: [String: String] = [:]
            var segments = PathSegments(path)
            for pattern in patterns {
                guard let range = segments.next() else { break }
                if case .parameter(let name) = pattern {
                    parameters[name] = String(decoding: UnsafeBufferPointer(rebasing: path[range]), as: UTF8.self)
                }
            }
            return parameters
        }

        /// Matching on percent-decoded segments (paths with escapes), with String comparison.
        func parameters(matching path: [String]) -> [String: String]? {
            guard path.count == patterns.count else { return nil }
            var parameters: [String: String] = [:]
            for (pattern, value) in zip(patterns, path) {
                switch pattern {
                case .literal(let literal, _): if literal != value { return nil }
                case .parameter(let name): parameters[name] = value
                }
            }
            return parameters
        }
    }

    /// The segments of a path as byte ranges: what follows each `/` up to the next one (what
    /// comes before the first `/` is not a segment), as `segments(of:)` splits a String.
    struct PathSegments: IteratorProtocol {
        private let path: UnsafeBufferPointer<UInt8>
        /// Where the `/` before the next segment is.
        private var slash: Int?

        init(_ path: UnsafeBufferPointer<UInt8>) {
            self.path = path
            slash = path.firstIndex(of: UInt8(ascii: "/"))
        }

        mutating func next() -> Range<Int>? {
            guard let slash else { return nil }
            let start = slash + 1
            var end = start
            while end < path.count && path[end] != UInt8(ascii: "/") { end += 1 }
            self.slash = end < path.count ? end : nil
            return start..<end
        }
    }

    /// A registered route as added: its method, template and the endpoint's metadata.
    public struct RouteDescription: Sendable, Hashable {
        public var method: String
        public var template: String
        public var metadata: [String: String]
    }

    /// Every route, in the order they were added (HEAD and OPTIONS, which the router answers
    /// itself, are not listed).
    public let routes: [RouteDescription]
    /// The resources whose templates have `n` segments at index `n` (a path matches only a
    /// template of as many segments), each list most specific first (see `Route.specificity`).
    private let resourcesBySegmentCount: [[Resource]]
    /// False when a template has non-ASCII text: String comparison (canonical equivalence) then
    /// decides, and byte comparison could disagree with it.
    private let matchesBytes: Bool
    private let cors: CORSPolicy
    private let mapError: @Sendable (any Error) -> HTTPError?

    init(routes: [Route], cors: CORSPolicy, mapError: @escaping @Sendable (any Error) -> HTTPError?) {
        self.routes = routes.map { RouteDescription(method: $0.method, template: $0.template, metadata: $0.metadata) }
        var templates: [String] = [], routesOf: [String: [Route]] = [:]
        for route in routes.sorted(by: { $1.specificity.lexicographicallyPrecedes($0.specificity) }) {
            if routesOf[route.template] == nil { templates.append(route.template) }
            routesOf[route.template, default: []].append(route)
        }
        let resources = templates.map { Resource(routes: routesOf[$0]!) }
        var bySegmentCount = Array(repeating: [Resource](), count: (resources.map(\.patterns.count).max() ?? 0) + 1)
        for resource in resources { bySegmentCount[resource.patterns.count].append(resource) }
        self.resourcesBySegmentCount = bySegmentCount
        self.matchesBytes = resources.allSatisfy(\.isASCII)
        self.cors = cors
        self.mapError = mapError
    }

    public func respond(to request: Request) async -> Response {
        var response = await route(request)
        applyCORS(request, &response)
        return response
    }

    private enum Match {
        case found(Resource, parameters: [String: String])
        case notFound
        case invalidEncoding
    }

    /// The most specific resource whose template matches the path (its template then decides
    /// which methods the path has), with the values of its parameters.
    private func match(path: String) -> Match {
        if matchesBytes {
            var path = path
            let match = path.withUTF8 { bytes -> Match? in
                // Without escapes and in ASCII, a segment's bytes are its decoded text.
                var segmentCount = 0
                for byte in bytes {
                    if byte == UInt8(ascii: "%") || byte >= 0x80 { return nil }
                    if byte == UInt8(ascii: "/") { segmentCount += 1 }  // each `/` begins a segment
                }
                guard segmentCount < resourcesBySegmentCount.count else { return .notFound }
                for resource in resourcesBySegmentCount[segmentCount] where resource.matches(bytes) {
                    return .found(resource, parameters: resource.hasParameters ? resource.parameters(in: bytes) : [:])
                }
                return .notFound
            }
            if let match { return match }
        }
        guard let segments = Self.decodedSegments(of: path) else { return .invalidEncoding }
        guard segments.count < resourcesBySegmentCount.count else { return .notFound }
        for resource in resourcesBySegmentCount[segments.count] {
            if let parameters = resource.parameters(matching: segments) { return .found(resource, parameters: parameters) }
        }
        return .notFound
    }

    private func route(_ request: Request) async -> Response {
        let resource: Resource, parameters: [String: String]
        switch match(path: request.path) {
        case .found(let found, let foundParameters):
            resource = found
            parameters = foundParameters
        case .invalidEncoding:
            var response = HTTPError(.badRequest, detail: "The path is not valid percent-encoding.").response
            response.route = "unmatched"
            return response
        case .notFound:
            var response = HTTPError(.notFound, detail: "No resource lives at this path.").response
            response.route = "unmatched"
            return response
        }
        let template = resource.template
        let method = request.method == "HEAD" ? "GET" : request.method
        guard let handler = resource.methods.first(where: { $0.method == method })?.handler else {
            let allow = resource.allow
            var response: Response
            if request.method == "OPTIONS" {
                response = Response(status: .noContent, headers: ["Allow": allow])
                if cors.isPublic(request.path), request.headers.contains("Origin") {
                    response.headers.add(name: "Access-Control-Allow-Origin", value: "*")
                    response.headers.add(name: "Access-Control-Allow-Methods", value: "GET, HEAD")
                    response.headers.add(name: "Access-Control-Allow-Headers", value: cors.publicAllowedHeaders.joined(separator: ", "))
                    response.headers.add(name: "Access-Control-Max-Age", value: String(cors.maxAgeSeconds))
                } else if let origin = allowedOrigin(request) {
                    response.headers.add(name: "Access-Control-Allow-Origin", value: origin)
                    response.headers.add(name: "Access-Control-Allow-Methods", value: allow)
                    response.headers.add(name: "Access-Control-Allow-Headers", value: cors.allowedHeaders.joined(separator: ", "))
                    response.headers.add(name: "Access-Control-Max-Age", value: String(cors.maxAgeSeconds))
                }
            } else {
                response = HTTPError(.methodNotAllowed, detail: "\(request.method) is not allowed here; allowed: \(allow).",
                                     headers: ["Allow": allow]).response
            }
            response.route = template
            return response
        }
        var routed = request
        routed.pathParameters = parameters
        routed.route = template
        var response: Response
        do {
            response = try await handler(routed)
        } catch let error as HTTPError {
            response = error.response
        } catch {
            if let mapped = mapError(error) {
                response = mapped.response
            } else {
                response = HTTPError(.internalServerError, detail: "Something went wrong on our side; it has been logged with the request id.").response
            }
            response.logFields["error"] = String(describing: type(of: error))
        }
        response.route = template
        return response
    }

    private func allowedOrigin(_ request: Request) -> String? {
        guard let origin = request.headers["Origin"], cors.allowedOrigins.contains(origin) else { return nil }
        return origin
    }

    private func applyCORS(_ request: Request, _ response: inout Response) {
        guard request.headers.contains("Origin") else { return }
        if cors.isPublic(request.path), request.method == "GET" || request.method == "HEAD" {
            response.headers.add(name: "Access-Control-Allow-Origin", value: "*")
            response.headers.add(name: "Access-Control-Expose-Headers", value: "ETag, Retry-After, X-Request-Id")
            return
        }
        response.headers.add(name: "Vary", value: "Origin")
        guard let origin = allowedOrigin(request), !response.headers.contains("Access-Control-Allow-Origin") else { return }
        response.headers.add(name: "Access-Control-Allow-Origin", value: origin)
        response.headers.add(name: "Access-Control-Expose-Headers", value: cors.exposedHeaders.joined(separator: ", "))
    }

    static func allowHeader(_ methods: [String]) -> String {
        var all = Set(methods)
        if all.contains("GET") { all.insert("HEAD") }
        all.insert("OPTIONS")
        return all.sorted().joined(separator: ", ")
    }

    static func segments(of path: String) -> [Substring] {
        path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map { $0 }
    }

    static func decodedSegments(of path: String) -> [String]? {
        var decoded: [String] = []
        for segment in segments(of: path) {
            guard let value = PercentDecoding.decode(segment, plusIsSpace: false) else { return nil }
            decoded.append(value)
        }
        return decoded
    }
}

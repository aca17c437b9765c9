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

    public init(allowedOrigins: some Sequence<String> = []) {
        self.allowedOrigins = Set(allowedOrigins)
    }
}

/// Collects routes, then `build()` freezes them into a `Router`.
public struct RouterBuilder: Sendable {
    private var routes: [Router.Route] = []

    public init() {}

    /// Adds a route. `template` is a path with `{name}` segments, e.g. `/v1/complaints/{id}`.
    public mutating func add(_ method: String, _ template: String, _ handler: @escaping Handler) {
        let segments = Router.segments(of: template).map { segment -> Router.Segment in
            segment.hasPrefix("{") && segment.hasSuffix("}")
                ? .parameter(String(segment.dropFirst().dropLast())) : .literal(String(segment))
        }
        precondition(!routes.contains { $0.method == method && $0.template == template },
                     "route \(method) \(template) added twice")
        routes.append(Router.Route(method: method, template: template, segments: segments, handler: handler))
    }

    public mutating func get(_ template: String, _ handler: @escaping Handler) { add("GET", template, handler) }
    public mutating func post(_ template: String, _ handler: @escaping Handler) { add("POST", template, handler) }
    public mutating func put(_ template: String, _ handler: @escaping Handler) { add("PUT", template, handler) }
    public mutating func patch(_ template: String, _ handler: @escaping Handler) { add("PATCH", template, handler) }
    public mutating func delete(_ template: String, _ handler: @escaping Handler) { add("DELETE", template, handler) }

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

        /// Literal segments win over parameters: `/feedback/batch` before `/feedback/{id}`.
        var specificity: [Int] { segments.map { if case .literal = $0 { 1 } else { 0 } } }

        func match(_ path: [String]) -> [String: String]? {
            guard path.count == segments.count else { return nil }
            var parameters: [String: String] = [:]
            for (segment, value) in zip(segments, path) {
                switch segment {
                case .literal(let literal): if literal != value { return nil }
                case .parameter(let name): parameters[name] = value
                }
            }
            return parameters
        }
    }

    private let routes: [Route]
    private let cors: CORSPolicy
    private let mapError: @Sendable (any Error) -> HTTPError?

    init(routes: [Route], cors: CORSPolicy, mapError: @escaping @Sendable (any Error) -> HTTPError?) {
        self.routes = routes.sorted { $1.specificity.lexicographicallyPrecedes($0.specificity) }
        self.cors = cors
        self.mapError = mapError
    }

    public func respond(to request: Request) async -> Response {
        var response = await route(request)
        applyCORS(request, &response)
        return response
    }

    private func route(_ request: Request) async -> Response {
        guard let path = Self.decodedSegments(of: request.path) else {
            var response = HTTPError(.badRequest, detail: "The path is not valid percent-encoding.").response
            response.route = "unmatched"
            return response
        }
        var matches: [(route: Route, parameters: [String: String])] = []
        for route in routes {
            if let parameters = route.match(path) { matches.append((route, parameters)) }
        }
        guard let first = matches.first else {
            var response = HTTPError(.notFound, detail: "No resource lives at this path.").response
            response.route = "unmatched"
            return response
        }
        // The most specific template that matched decides which methods the resource has.
        let template = first.route.template
        let candidates = matches.filter { $0.route.template == template }
        let method = request.method == "HEAD" ? "GET" : request.method
        guard let chosen = candidates.first(where: { $0.route.method == method }) else {
            let allow = Self.allowHeader(candidates.map(\.route.method))
            var response: Response
            if request.method == "OPTIONS" {
                response = Response(status: .noContent, headers: ["Allow": allow])
                if let origin = allowedOrigin(request) {
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
        routed.pathParameters = chosen.parameters
        var response: Response
        do {
            response = try await chosen.route.handler(routed)
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

import Foundation
import HTTPServer
import Postgres

/// A handler of an authenticated, authorised request.
public typealias SecuredHandler = @Sendable (Request, AccessContext) async throws -> Response

/// Authentication, authorisation, rate limiting and the refusal audit, in front of every `/v1`
/// operation. Each area wraps its handlers:
///
/// ```swift
/// router.get("/v1/feedback/{id}", access.secure(.feedbackRead, resource: .feedback) { request, context in
///     try await context.transaction { tx in ... tx.audit(.read, .feedback, id: id) ... }
/// })
/// ```
public struct AccessControl: Sendable {
    public struct Configuration: Sendable {
        /// Sustained requests per second allowed per key.
        public var ratePerSecond: Double = 50
        /// Requests a key may make at once above the sustained rate.
        public var burst: Double = 100
        /// Refused authentications (401) one client address may have per minute, and at once;
        /// past them, its requests get 429 before any key is looked up.
        public var authFailuresPerMinute: Double = 60
        /// Who may read `/metrics` and the details of `/readyz`.
        public var operators = OperatorAccess()
        /// Where refusals without a known key are logged in aggregate.
        public var log: RequestLog?
        /// How soon the listener for key changes reconnects after losing its connection (the
        /// key cache stays empty meanwhile: see `KeyCache`).
        public var keyListenerRetryInterval: Duration = .seconds(1)
        /// Whether a read's answer waits for its audit row to reach the disk (see `ReadAudit`).
        public var readAudit: ReadAudit = .deferred
        /// The longest a change-feed request is held waiting (`GET /v1/events?wait=`): a longer
        /// `wait` is answered, empty, at this (a proxy in front may cut long requests sooner).
        public var longPollSeconds = 30

        public init(ratePerSecond: Double = 50, burst: Double = 100, authFailuresPerMinute: Double = 60,
                    operators: OperatorAccess = OperatorAccess(), log: RequestLog? = nil, readAudit: ReadAudit = .deferred,
                    longPollSeconds: Int = 30) {
            self.ratePerSecond = ratePerSecond
            self.burst = burst
            self.authFailuresPerMinute = authFailuresPerMinute
            self.operators = operators
            self.log = log
            self.readAudit = readAudit
            self.longPollSeconds = longPollSeconds
        }
    }

    let database: PostgresPool
    let configuration: Configuration
    let rateLimiter: RateLimiter<UUID>
    /// Failed authentications per client address: the limiter in front of authentication.
    let authFailures: RateLimiter<String>
    let refusals: RefusalTally
    /// Keys that authenticated, answered from memory until a change to any key (see `KeyCache`).
    let keys: KeyCache
    /// Requests to keyless public endpoints per client address (`open`).
    let publicReads: RateLimiter<String>
    /// The time a request is judged at (deadlines, `overdue`), read once per request.
    let clock: @Sendable () -> Date

    public init(database: PostgresPool, configuration: Configuration = Configuration(), clock: @escaping @Sendable () -> Date = { Date() }) {
        self.database = database
        self.configuration = configuration
        self.rateLimiter = RateLimiter(ratePerSecond: configuration.ratePerSecond, burst: configuration.burst)
        self.clock = clock
        self.authFailures = RateLimiter(ratePerSecond: configuration.authFailuresPerMinute / 60, burst: configuration.authFailuresPerMinute)
        self.refusals = RefusalTally(log: configuration.log)
        self.keys = KeyCache()
        self.publicReads = RateLimiter(ratePerSecond: configuration.ratePerSecond, burst: configuration.burst)
    }

    /// Wraps the handler of a keyless public endpoint (`/v1/public/...`): no key is asked for or
    /// looked up, and each client address gets the rate a key gets (`RATE_LIMIT_PER_SECOND`,
    /// `RATE_LIMIT_BURST`); past it, 429 with `Retry-After`. The handler must read only what is
    /// declared public, through a tenant-scoped transaction like any other.
    public func open(_ handler: @escaping Handler) -> Endpoint {
        Endpoint { request in
            if let wait = publicReads.admit(request.clientAddress ?? "") {
                throw HTTPError(.rateLimited, detail: "Too many requests from this address; retry after \(wait) second\(wait == 1 ? "" : "s").",
                                headers: ["Retry-After": String(wait)])
            }
            return try await handler(request)
        }
    }

    /// Wraps `handler`: it runs only for a valid, unexpired, unrevoked key with `scope`, within
    /// the key's rate limit. Refusals answer 401/403/404/429 and are audited in a transaction of
    /// their own, so nothing rolls them back.
    public func secure(_ scope: Scope, resource: AuditResource, _ handler: @escaping SecuredHandler) -> Endpoint {
        secure(anyOf: [scope], resource: resource, handler)
    }

    /// The endpoint metadata naming the scope an operation needs, as `openapi.yaml`'s
    /// `x-required-scope` states it: one scope, or `any` when every scope opens it.
    public static let requiredScopeKey = "x-required-scope"

    /// Like `secure(_:resource:_:)`, for an operation any one of `scopes` opens.
    public func secure(anyOf scopes: [Scope], resource: AuditResource, _ handler: @escaping SecuredHandler) -> Endpoint {
        let required = Set(scopes) == Set(Scope.allCases) ? "any" : scopes.map(\.rawValue).joined(separator: ", ")
        return Endpoint(metadata: [Self.requiredScopeKey: required]) { request in
            try Self.rejectTenantParameters(request)
            let principal = try await authenticate(request, resource: resource)
            guard scopes.contains(where: principal.has) else {
                await recordRefusal(principal, request, resource: resource, outcome: .forbidden, status: 403)
                let needed = scopes.count == 1 ? "the scope \(scopes[0].rawValue)" : "one of the scopes \(scopes.map(\.rawValue).joined(separator: ", "))"
                throw HTTPError(.missingScope, detail: "This API key lacks \(needed), which this operation needs.")
            }
            if let wait = rateLimiter.admit(principal.keyID) {
                refusals.record(.rateLimited, address: request.clientAddress)
                await recordRefusal(principal, request, resource: resource, outcome: .rateLimited, status: 429)
                throw HTTPError(.rateLimited, detail: "This API key has made too many requests; retry after \(wait) second\(wait == 1 ? "" : "s").",
                                headers: ["Retry-After": String(wait)])
            }
            let context = AccessContext(principal: principal, database: database, requestID: request.requestID, now: clock(),
                                        readAudit: configuration.readAudit)
            do {
                var response = try await handler(request, context)
                response.logFields["key_id"] = principal.keyID.lowercased
                return response
            } catch let error as HTTPError where error.status == .notFound {
                // Another tenant's id looks exactly like no record at all, and is audited.
                await recordRefusal(principal, request, resource: resource, outcome: .notFound, status: 404)
                throw error
            }
        }
    }

    // MARK: Authentication

    /// The credentials after `Bearer `, without the spaces or tabs around them.
    private static func token(after header: String) -> String {
        var credentials = header.dropFirst(7)
        while credentials.first == " " || credentials.first == "\t" { credentials.removeFirst() }
        while credentials.last == " " || credentials.last == "\t" { credentials.removeLast() }
        return String(credentials)
    }

    /// Checks the key; every refusal (401) also counts against the client address's allowance of
    /// failures, and an address that has used it up is refused (429) before any key is looked up.
    private func authenticate(_ request: Request, resource: AuditResource) async throws -> Principal {
        let address = request.clientAddress
        if let address, let wait = authFailures.wait(for: address) {
            refusals.record(.addressLimited, address: address)
            throw HTTPError(.rateLimited,
                            detail: "Too many requests without a valid API key from this address; retry after \(wait) second\(wait == 1 ? "" : "s").",
                            headers: ["Retry-After": String(wait)])
        }
        do {
            return try await checkKey(request, resource: resource)
        } catch let error as HTTPError where error.status == .unauthorized {
            if let address { _ = authFailures.admit(address) }
            throw error
        }
    }

    private func checkKey(_ request: Request, resource: AuditResource) async throws -> Principal {
        guard let header = request.headers["Authorization"] else {
            refusals.record(.missingKey, address: request.clientAddress)
            throw Self.unauthenticated("This operation needs an API key: send Authorization: Bearer <key>.", invalidToken: false)
        }
        guard header.count > 7, header.prefix(7).lowercased() == "bearer ", let key = APIKeySecret(text: Self.token(after: header)) else {
            refusals.record(.malformedKey, address: request.clientAddress)
            throw Self.unauthenticated("The Authorization header does not hold a Heard API key.", invalidToken: true)
        }
        let secretHash = key.secretHash
        let principal: Principal
        if let cached = keys.principal(keyID: key.id, secretHash: secretHash) {
            principal = cached
        } else {
            startListeningForKeyChanges()
            let generation = keys.generation()
            guard let found = try await lookUp(key, secretHash: secretHash, request, resource: resource) else {
                // Belongs to no tenant: counted and logged in aggregate, not an audit row each.
                refusals.record(.unknownKey, address: request.clientAddress)
                throw Self.unauthenticated("This API key is not valid.", invalidToken: true)
            }
            principal = found
            if let generation, !Self.hasExpired(principal) { keys.store(principal, secretHash: secretHash, generation: generation) }
        }
        if let expiresOn = principal.expiresOn, Self.hasExpired(principal) {
            await recordRefusal(principal, request, resource: resource, outcome: .unauthenticated, status: 401)
            throw Self.unauthenticated("This API key expired on \(expiresOn).", invalidToken: true)
        }
        return principal
    }

    /// The key as PostgreSQL knows it; nil when it does not; a refusal when it (or a key up the
    /// chain that minted it) is revoked.
    private func lookUp(_ key: APIKeySecret, secretHash: String, _ request: Request, resource: AuditResource) async throws -> Principal? {
        let rows = try await database.query(
            "SELECT key_id, tenant_id, organisation_id, scopes, expires_on, revoked FROM heard_authenticate(\(key.id), \(secretHash))")
        guard let row = rows.first else { return nil }
        let principal = Principal(
            keyID: try row.decode(UUID.self, column: "key_id"),
            tenantID: try row.decode(UUID.self, column: "tenant_id"),
            organisationID: try row.decode(UUID?.self, column: "organisation_id"),
            scopes: Set(try row.decode([String].self, column: "scopes").compactMap(Scope.init(rawValue:))),
            expiresOn: try row.decode(CalendarDate?.self, column: "expires_on"))
        // `revoked` and `expires_on` include the keys up the chain that minted this one.
        if try row.decode(Bool.self, column: "revoked") {
            await recordRefusal(principal, request, resource: resource, outcome: .unauthenticated, status: 401)
            throw Self.unauthenticated("This API key, or the key that created it, has been revoked.", invalidToken: true)
        }
        return principal
    }

    /// Judged on every request, cached key or not.
    private static func hasExpired(_ principal: Principal) -> Bool {
        principal.expiresOn.map { $0 <= CalendarDate(utcDayOf: Date()) } ?? false
    }

    /// The first lookup starts the listener that keeps `keys` honest; until it listens, the
    /// cache takes nothing.
    private func startListeningForKeyChanges() {
        keys.startOnce { [keys, database, configuration] in
            database.listen(to: [KeyCache.channel], retryInterval: configuration.keyListenerRetryInterval) { keys.handle($0) }
        }
    }

    private static func unauthenticated(_ detail: String, invalidToken: Bool) -> HTTPError {
        HTTPError(.unauthenticated, detail: detail,
                  headers: ["WWW-Authenticate": invalidToken ? "Bearer realm=\"heard\", error=\"invalid_token\"" : "Bearer realm=\"heard\""])
    }

    /// The tenant and organisation come from the key, never from the request.
    private static func rejectTenantParameters(_ request: Request) throws(HTTPError) {
        let forbidden = request.query.names.filter { ["tenant_id", "tenant", "organisation_id"].contains($0) }
        guard forbidden.isEmpty else {
            throw HTTPError(.invalidQuery, detail: "The tenant and organisation are the API key's own and are never taken from a request.",
                            errors: forbidden.map { FieldError(field: $0, message: "is never accepted: the tenant and organisation are the API key's own") })
        }
    }

    /// A refusal is audited in its own transaction: whatever failed cannot roll it back.
    private func recordRefusal(_ principal: Principal, _ request: Request, resource: AuditResource, outcome: AuditOutcome, status: Int) async {
        let resourceID = request.pathParameters["id"]
        _ = try? await database.transaction(settings: principal.databaseSettings) { transaction in
            AuditTrail.record(on: transaction, principal: principal, requestID: request.requestID,
                                        action: AuditAction(method: request.method), resourceType: resource,
                                        resourceID: resourceID, rowsExported: nil, outcome: outcome, status: status)
        }
    }
}

/// What a handler of a secured route gets: who is calling, and their tenant's database.
public struct AccessContext: Sendable {
    public let principal: Principal
    let database: PostgresPool
    let requestID: String
    /// The request's time, from the app's clock: what deadlines and `overdue` are judged at.
    public let now: Date
    let readAudit: ReadAudit

    /// Runs `body` in one transaction scoped to the caller's tenant (and organisation): row-level
    /// security sees only their rows, and audit events recorded on it commit with the work.
    public func transaction<Value>(_ body: (TenantTransaction) async throws -> Value) async throws -> Value {
        try await transaction(settings: principal.databaseSettings, body)
    }

    /// `transaction`, for a read whose only write is its audit row: its commit waits for the
    /// row to reach the disk, or not, as `ReadAudit` says.
    public func readTransaction<Value>(_ body: (TenantTransaction) async throws -> Value) async throws -> Value {
        try await transaction(settings: principal.databaseSettings + (readAudit == .deferred ? [("synchronous_commit", "off")] : []), body)
    }

    /// `transaction`, for the writes of a group of requests done together (`Coalescer`): a row
    /// lock held elsewhere (a natural key that another transaction has inserted and not yet
    /// committed) fails the group after `lockTimeoutMilliseconds` rather than hold every request
    /// in it, and the key's requests queued behind; its requests then go again alone, and only
    /// the one that needs that row waits for it.
    public func groupTransaction<Value>(lockTimeoutMilliseconds: Int = 1000, _ body: (TenantTransaction) async throws -> Value) async throws -> Value {
        try await transaction(settings: principal.databaseSettings + [("lock_timeout", "\(lockTimeoutMilliseconds)ms")], body)
    }

    private func transaction<Value>(settings: [(name: String, value: String)], _ body: (TenantTransaction) async throws -> Value) async throws -> Value {
        try await database.transaction(settings: settings) { transaction in
            try await body(TenantTransaction(base: transaction, principal: principal, requestID: requestID))
        }
    }
}

/// How the audit rows of reads reach the disk. Either way a read is answered only once its audit
/// row is committed, in the transaction that read the record (its own, or that of the reads of
/// its key done together: `ReadsTogether`).
public enum ReadAudit: String, Sendable, CaseIterable {
    /// The commit waits for its WAL flush (concurrent commits share flushes: group commit).
    case flushed
    /// The commit does not wait for the flush (`synchronous_commit = off` for that transaction
    /// alone): PostgreSQL's WAL writer flushes it within three times `wal_writer_delay` (600 ms
    /// by default). A PostgreSQL or machine crash may lose the audit rows of reads answered in
    /// that last moment; never a write, and never a row of a read that was not answered.
    case deferred
}

/// A transaction inside the caller's tenant.
public struct TenantTransaction: Sendable {
    let base: PostgresTransaction
    public let principal: Principal
    let requestID: String

    public func query(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await base.query(query)
    }

    /// Runs `queries` one after another in the transaction (what completes a record read
    /// here, say): the rows of each, in order.
    public func query(_ queries: [PostgresQuery]) async throws -> [[PostgresRow]] {
        var rows: [[PostgresRow]] = []
        for query in queries { rows.append(try await base.query(query)) }
        return rows
    }

    @discardableResult
    public func execute(_ query: PostgresQuery) async throws -> Int {
        try await base.execute(query)
    }

    /// The transaction's last statement, committed in the same round trip (see
    /// `PostgresTransaction.queryAndCommit`).
    public func queryAndCommit(_ query: PostgresQuery) async throws -> [PostgresRow] {
        try await base.queryAndCommit(query)
    }

    /// Several last statements, sent together and committed (see
    /// `PostgresTransaction.queryAndCommit(_:)`): the rows of each.
    public func queryAndCommit(_ queries: [PostgresQuery]) async throws -> [[PostgresRow]] {
        try await base.queryAndCommit(queries)
    }

    /// One audit row per record (a batch's creates, its duplicates), in one statement, queued
    /// like `audit`.
    public func audit(_ action: AuditAction, _ resourceType: AuditResource, ids: [String]) {
        guard !ids.isEmpty else { return }
        base.enqueue("""
            INSERT INTO audit_events (tenant_id, organisation_id, key_id, action, resource_type, resource_id, outcome, status, request_id)
            SELECT \(principal.tenantID), \(principal.organisationID), \(principal.keyID), \(action.rawValue), \(resourceType.rawValue), id, 'success', 200, \(requestID)
              FROM unnest(\(ids)::text[]) AS id
            """)
    }

    /// Appends to the audit trail, in this transaction: the record exists exactly when the work
    /// does. The row is queued and sent with the next statement or the commit.
    public func audit(_ action: AuditAction, _ resourceType: AuditResource, id: String? = nil, rowsExported: Int? = nil) {
        AuditTrail.record(on: base, principal: principal, requestID: requestID, action: action,
                                    resourceType: resourceType, resourceID: id, rowsExported: rowsExported,
                                    outcome: .success, status: 200)
    }
}

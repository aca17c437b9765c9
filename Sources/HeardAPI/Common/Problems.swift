import HTTPServer

/// Every kind of problem Heard answers, each declared once with its title and status. The
/// `type` of a problem document is `urn:heard:problem:<slug>`; `openapi.yaml` lists every one
/// (`components.schemas.Problem`), and a test holds the two lists equal.
extension ProblemType {
    // Access
    static let unauthenticated = ProblemType("unauthenticated", .unauthorized, title: "Not authenticated")
    static let missingScope = ProblemType("missing-scope", .forbidden, title: "Missing scope")
    static let councilKeyRequired = ProblemType("council-key-required", .forbidden, title: "A council-wide key is needed")
    static let rateLimited = ProblemType("rate-limited", .tooManyRequests, title: "Too many requests")

    // Service
    static let notReady = ProblemType("not-ready", .serviceUnavailable, title: "Not ready")
    /// `/metrics` from an address or without a token the deployment allows.
    static let operatorsOnly = ProblemType("operators-only", .forbidden, title: "For operators only")
    static let databaseUnavailable = ProblemType("database-unavailable", .serviceUnavailable, title: "The database is unavailable")
    /// A value a request carried that the database refuses as data (SQLSTATE class 22).
    static let invalidValue = ProblemType("invalid-value", .badRequest, title: "A value cannot be stored")

    // Retries and races
    static let invalidIdempotencyKey = ProblemType("invalid-idempotency-key", .badRequest, title: "Invalid Idempotency-Key")
    static let idempotencyKeyReused = ProblemType("idempotency-key-reused", .unprocessableContent, title: "Idempotency-Key reused")
    static let idempotencyKeyInUse = ProblemType("idempotency-key-in-use", .conflict, title: "Idempotency-Key in use")
    static let naturalKeyConflict = ProblemType("natural-key-conflict", .conflict, title: "Already recorded")
    static let ifMatchRequired = ProblemType("if-match-required", .preconditionRequired, title: "If-Match required")
    static let staleETag = ProblemType("stale-etag", .preconditionFailed, title: "The record has changed")

    // Records
    static let measureExists = ProblemType("measure-exists", .conflict, title: "Measure exists")
    static let closureDayExists = ProblemType("closure-day-exists", .conflict, title: "Closure day exists")
    static let actionNotAllowed = ProblemType("action-not-allowed", .conflict, title: "Action not allowed")
    static let alreadyAcknowledged = ProblemType("already-acknowledged", .conflict, title: "Already acknowledged")
    static let alreadyAMember = ProblemType("already-a-member", .conflict, title: "Already a member")
    static let procedureFixed = ProblemType("procedure-fixed", .conflict, title: "The procedure is fixed by regulation")
    static let categoryExists = ProblemType("category-exists", .conflict, title: "Category exists")
    static let involvementRecorded = ProblemType("involvement-recorded", .conflict, title: "Involvement already recorded")

    // The change feed
    static let feedBusy = ProblemType("feed-busy", .serviceUnavailable, title: "Too many requests waiting for events")

    /// The catalogue: every problem type Heard can answer.
    static let catalogue: [ProblemType] = http + [
        unauthenticated, missingScope, councilKeyRequired, rateLimited, notReady, operatorsOnly, databaseUnavailable, invalidValue,
        invalidIdempotencyKey, idempotencyKeyReused, idempotencyKeyInUse, naturalKeyConflict, ifMatchRequired, staleETag,
        measureExists, closureDayExists, actionNotAllowed, alreadyAcknowledged, alreadyAMember, procedureFixed, categoryExists,
        feedBusy,
        involvementRecorded,
    ]
}

import Foundation
import HTTPServer
import Postgres

/// The whole API: every area's routes on one router, and what they share.
///
/// Each area lives in its own folder (its models and validation, its SQL and its routes side by
/// side) and adds its routes here with one line.
public struct HeardApp: Sendable {
    public let database: PostgresPool
    public let migrator: Migrator
    public let metrics: Metrics
    public let access: AccessControl
    let measures = MeasureCache()
    let measureVersions = MeasureVersions()
    let feedbackCreates = Coalescer<Principal.Identity, FeedbackStore.Insert, TogetherOutcome<FeedbackRecord?>>(maxInFlight: 2, maxGroup: 100)
    let feedbackReads = ReadsTogether<FeedbackRecord>(audited: .feedback, maxInFlight: 2, maxGroup: 100)

    /// - Parameter clock: the time requests are handled at (`AccessContext.now`); tests hold it.
    public init(database: PostgresPool, migrator: Migrator, metrics: Metrics, access: AccessControl.Configuration = .init(),
                clock: @escaping @Sendable () -> Date = { Date() }) {
        self.database = database
        self.migrator = migrator
        self.metrics = metrics
        self.access = AccessControl(database: database, configuration: access, clock: clock)
        self.access.refusals.register(on: metrics)
        let pool = database
        metrics.register(gauge: "heard_db_pool_connections_in_use", help: "Database connections lent to requests, whole or shared by units.") {
            Double(pool.stats.inUse)
        }
        metrics.register(gauge: "heard_db_pool_connections_open", help: "Database connections open.") {
            Double(pool.stats.open)
        }
        metrics.register(gauge: "heard_db_pool_units_in_flight", help: "Units of statements sent on shared database connections and not yet answered.") {
            Double(pool.stats.units)
        }
        metrics.register(gauge: "heard_db_pool_waiting", help: "Requests waiting for a database connection.") {
            Double(pool.stats.waiting)
        }
        metrics.register(gauge: "heard_db_pool_size", help: "The most database connections the pool opens.") {
            Double(pool.stats.size)
        }
    }

    /// Work the service does on its own while it runs: expired Idempotency-Key answers of every
    /// tenant are deleted every `interval` seconds. Cancel the task to stop it.
    public func startHousekeeping(every interval: Double = 300, log: RequestLog? = nil) -> Task<Void, Never> {
        let database = database
        return Task {
            while !Task.isCancelled {
                do {
                    let expired = try await Idempotency.expire(on: database)
                    if expired > 0 { log?.event("idempotency keys expired", fields: ["count": String(expired)]) }
                } catch {
                    log?.event("idempotency expiry failed", level: .warn, fields: ["error": String(describing: error)])
                }
                try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
            }
        }
    }

    public func router(cors: CORSPolicy = CORSPolicy()) -> Router {
        var router = RouterBuilder()
        SystemRoutes(app: self).add(to: &router)
        AdminKeysRoutes(access: access).add(to: &router)
        router.get("/v1/audit", access.secure(.auditRead, resource: .auditEvent, AuditTrail.list.respond))
        MeasureRoutes(access: access, cache: measures).add(to: &router)
        FeedbackRoutes(access: access, measures: measures, versions: measureVersions, creates: feedbackCreates,
                       reads: feedbackReads).add(to: &router)
        SafeguardingRoutes(access: access).add(to: &router)
        ClosureDayRoutes(access: access, calendarChanged: [ComplaintStore.reviseDueDates]).add(to: &router)
        ParticipantRoutes(access: access).add(to: &router)
        ConsentRoutes.add(to: &router, access: access)
        GroupRoutes(access: access).add(to: &router)
        TrainingRoutes.endpoints.add(to: &router, access: access)
        RewardRoutes.endpoints.add(to: &router, access: access)
        ActivityRoutes(access: access).add(to: &router)
        TenantSettingsRoutes(access: access).add(to: &router)
        router.get("/v1/reports/participation", access.secure(.reportsRead, resource: .participationReport, ParticipationReport.respond))
        WorkingDayRoutes(access: access).add(to: &router)
        ComplaintProcedureRoutes(access: access).add(to: &router)
        ComplaintCategoryRoutes(access: access).add(to: &router)
        ComplaintRoutes(access: access).add(to: &router)
        LearningActionRoutes(access: access).add(to: &router)
        EventRoutes(access: access).add(to: &router)
        VacancyRoutes(access: access).add(to: &router)
        YouSaidRoutes(access: access).add(to: &router)
        YouSaidPublicFeed(access: access).add(to: &router)
        CommissioningRoutes(access: access).add(to: &router)
        var cors = cors
        cors.publicPathPrefixes = ["/v1/public/"]
        return router.build(cors: cors, mapError: Self.problem(for:))
    }

    /// What the client hears when a handler fails with something other than `HTTPError`.
    /// A database that cannot be reached is a temporary condition: 503 and when to retry.
    static func problem(for error: any Error) -> HTTPError? {
        if let error = error as? PostgresError, error.isConnectionFailure {
            return HTTPError(.databaseUnavailable, detail: "The database is not reachable just now; retry shortly.",
                             headers: ["Retry-After": "2"])
        }
        if let error = error as? PostgresError, case .query = error.kind, error.sqlState?.hasPrefix("22") == true {
            // A data exception (a NUL, a date or number out of range, text that is not the
            // type) only comes from a value a request carried that the readers let through:
            // the client's to fix, never a 500. The readers name the field where they can.
            return HTTPError(.invalidValue,
                             detail: "The request holds a value the database cannot accept (such as a NUL character or a number or date out of range).")
        }
        return nil
    }
}

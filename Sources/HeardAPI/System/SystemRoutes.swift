import Foundation
import HTTPServer
import Postgres

/// `/healthz`, `/readyz` and `/metrics`: for load balancers, orchestrators and Prometheus.
struct SystemRoutes {
    let app: HeardApp

    func add(to router: inout RouterBuilder) {
        // Probed every few seconds by load balancers: a constant, encoded once.
        let healthy = Response.json(Health(status: "ok"))
        router.get("/healthz") { _ in healthy }
        let operators = app.access.configuration.operators
        router.get("/readyz") { request in try await readiness(detailed: operators.allows(request)) }
        router.get("/metrics") { [metrics = app.metrics] request in
            guard operators.allows(request) else {
                throw HTTPError(.operatorsOnly,
                                detail: "Metrics are served only to the addresses or token this deployment allows (METRICS_ALLOWED_ADDRESSES, METRICS_TOKEN).")
            }
            return .text(metrics.render(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
    }

    struct Health: Encodable, Sendable {
        var status: String
    }

    struct Readiness: Encodable, Sendable {
        var status: String
        var database: String
        var pendingMigrations: [String]

        enum CodingKeys: String, CodingKey {
            case status, database, pendingMigrations = "pending_migrations"
        }
    }

    /// 200 when the database answers and every migration is applied; else 503 saying which,
    /// when `detailed` (an operator asks), or only that it is not ready.
    private func readiness(detailed: Bool) async throws -> Response {
        func notReady(_ detail: String) -> HTTPError {
            HTTPError(.notReady,
                      detail: detailed ? detail : "The service is not ready.", headers: ["Retry-After": "2"])
        }
        let pending: [Migration]
        do {
            pending = try await app.migrator.pending(using: app.database)
        } catch let error as PostgresError {
            throw notReady(error.isConnectionFailure
                ? "The database is not reachable."
                : "The database answered with an error (SQLSTATE \(error.sqlState ?? "unknown")).")
        }
        guard pending.isEmpty else {
            let names = pending.map(\.fileName)
            throw notReady("Migrations are pending: \(names.joined(separator: ", ")). Run `heard migrate`.")
        }
        guard detailed else { return .json(Health(status: "ready")) }
        return .json(Readiness(status: "ready", database: "ok", pendingMigrations: []))
    }
}

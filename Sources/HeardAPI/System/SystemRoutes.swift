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
        router.get("/readyz") { _ in try await readiness() }
        router.get("/metrics") { [metrics = app.metrics] _ in
            .text(metrics.render(), contentType: "text/plain; version=0.0.4; charset=utf-8")
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

    /// 200 when the database answers and every migration is applied; else 503 saying which.
    private func readiness() async throws -> Response {
        let pending: [Migration]
        do {
            pending = try await app.migrator.pending(using: app.database)
        } catch let error as PostgresError {
            throw HTTPError(.notReady, detail: error.isConnectionFailure
                                ? "The database is not reachable."
                                : "The database answered with an error (SQLSTATE \(error.sqlState ?? "unknown")).",
                            headers: ["Retry-After": "2"])
        }
        guard pending.isEmpty else {
            let names = pending.map(\.fileName)
            throw HTTPError(.notReady, detail: "Migrations are pending: \(names.joined(separator: ", ")). Run `heard migrate`.",
                            headers: ["Retry-After": "2"])
        }
        return .json(Readiness(status: "ready", database: "ok", pendingMigrations: []))
    }
}

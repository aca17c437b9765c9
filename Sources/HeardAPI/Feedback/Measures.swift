import Foundation
import HTTPServer
import Postgres

/// A measure of a tenant's framework, at its current version: what children are asked to score.
public struct Measure: Encodable, Sendable {
    public var id: UUID
    public var code: String
    public var group: MeasureGroup
    public var wording: String
    public var version: Int
    public var scale: Scale
    public var active: Bool

    public struct Scale: Encodable, Sendable, Equatable {
        public var min: Int
        public var max: Int
        /// Scores from this one up count as agreeing.
        public var agreeFrom: Int
        /// One label per point, `min` to `max`; empty when the scale has none.
        public var labels: [String]

        public func contains(_ score: Int) -> Bool { (min...max).contains(score) }
    }

    enum CodingKeys: String, CodingKey {
        case id, code, group, wording, version, scale, active
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id.lowercased, forKey: .id)
        try container.encode(code, forKey: .code)
        try container.encode(group, forKey: .group)
        try container.encode(wording, forKey: .wording)
        try container.encode(version, forKey: .version)
        try container.encode(scale, forKey: .scale)
        try container.encode(active, forKey: .active)
    }
}

/// The SQL for measures.
enum MeasureStore {
    /// Every measure of the tenant at its current version, by code.
    static func all(on transaction: PostgresTransaction, tenantID: UUID) async throws -> [Measure] {
        try await transaction.query("""
            SELECT m.id, m.code, m.measure_group, m.active, v.version, v.wording, v.scale_min, v.scale_max, v.agree_from, v.labels
              FROM measures m
              JOIN measure_versions v ON v.tenant_id = m.tenant_id AND v.measure_id = m.id AND v.version = m.current_version
             WHERE m.tenant_id = \(tenantID)
             ORDER BY m.code
            """).map { row in
            Measure(
                id: try row.decode(UUID.self, column: "id"), code: try row.decode(String.self, column: "code"),
                group: MeasureGroup(rawValue: try row.decode(String.self, column: "measure_group")) ?? .other,
                wording: try row.decode(String.self, column: "wording"), version: try row.decode(Int.self, column: "version"),
                scale: Measure.Scale(min: try row.decode(Int.self, column: "scale_min"), max: try row.decode(Int.self, column: "scale_max"),
                                     agreeFrom: try row.decode(Int.self, column: "agree_from"), labels: try row.decode([String].self, column: "labels")),
                active: try row.decode(Bool.self, column: "active"))
        }
    }
}

/// `/v1/measures`: the tenant's measure framework (any valid key reads it).
struct MeasureRoutes {
    let access: AccessControl

    func add(to router: inout RouterBuilder) {
        router.get("/v1/measures", access.secure(anyOf: Scope.allCases, resource: "measure") { request, context in
            let query = QueryReader(request.query, allowed: [], paged: false)
            try query.finish()
            let measures = try await context.transaction { tx in
                try await MeasureStore.all(on: tx.base, tenantID: context.principal.tenantID)
            }
            return Page(items: measures, nextCursor: nil).response(for: request)
        })
    }
}

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

        enum CodingKeys: String, CodingKey {
            case min, max, agreeFrom = "agree_from", labels
        }
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
    static func find(_ id: UUID, on transaction: PostgresTransaction, tenantID: UUID) async throws -> Measure? {
        try await all(on: transaction, tenantID: tenantID).first { $0.id == id }
    }

    static func create(code: String, group: MeasureGroup, wording: String, scale: Measure.Scale, active: Bool,
                       on transaction: PostgresTransaction, tenantID: UUID) async throws -> UUID {
        let id = UUID()
        try await transaction.execute("""
            INSERT INTO measures (tenant_id, id, code, measure_group, active) VALUES (\(tenantID), \(id), \(code), \(group.rawValue), \(active))
            """)
        try await addVersion(1, of: id, wording: wording, scale: scale, on: transaction, tenantID: tenantID)
        return id
    }

    static func addVersion(_ version: Int, of id: UUID, wording: String, scale: Measure.Scale,
                           on transaction: PostgresTransaction, tenantID: UUID) async throws {
        try await transaction.execute("""
            INSERT INTO measure_versions (tenant_id, measure_id, version, wording, scale_min, scale_max, agree_from, labels)
            VALUES (\(tenantID), \(id), \(version), \(wording), \(scale.min), \(scale.max), \(scale.agreeFrom), \(scale.labels))
            """)
    }

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

/// `/v1/measures`: the tenant's measure framework. Any valid key reads it; changing it needs
/// `admin` and a council-wide key (a partner's key cannot change the council's framework).
/// Changing a measure's wording or scale makes a new version: every response keeps the version
/// it was given against.
struct MeasureRoutes {
    let access: AccessControl
    /// Told of every change, so this instance validates feedback against it at once.
    let cache: MeasureCache

    func add(to router: inout RouterBuilder) {
        router.get("/v1/measures", access.secure(anyOf: Scope.allCases, resource: .measure) { request, context in
            let query = QueryReader(request.query, allowed: [], paged: false)
            try query.finish()
            let measures = try await context.transaction { tx in
                try await MeasureStore.all(on: tx.base, tenantID: context.principal.tenantID)
            }
            return Page(items: measures, nextCursor: nil).response(for: request)
        })
        router.get("/v1/measures/{id}", access.secure(anyOf: Scope.allCases, resource: .measure) { request, context in
            let id = try Self.measureID(request)
            let measure = try await context.transaction { tx in
                try await MeasureStore.find(id, on: tx.base, tenantID: context.principal.tenantID)
            }
            return .json(try Self.found(measure))
        })
        router.post("/v1/measures", access.secure(.admin, resource: .measure) { request, context in
            try context.principal.requireCouncilWide(toChange: "the council's measures")
            var body = try FieldReader(body: request.body)
            let code = body.string("code", maxLength: 63)
            if let code, !Self.validCode(code) { body.reject("code", "must be 2-63 characters of a-z, 0-9 and _, starting with a letter") }
            let group = body.vocabulary("group", MeasureGroup.self)
            let wording = body.string("wording", maxLength: 500)
            let scale = Self.scale(&body, required: true)
            let active = body.bool("active", required: false) ?? true
            try body.finish()
            guard let code, let group, let wording, let scale else { throw HTTPError.validation([]) }
            let tenant = context.principal.tenantID
            let measure: Measure
            do {
                measure = try await context.transaction { tx in
                    let id = try await MeasureStore.create(code: code, group: group, wording: wording, scale: scale, active: active,
                                                           on: tx.base, tenantID: tenant)
                    tx.audit(.create, .measure, id: id.lowercased)
                    return try Self.found(try await MeasureStore.find(id, on: tx.base, tenantID: tenant))
                }
            } catch let error as PostgresError where error.isUniqueViolation {
                throw HTTPError(.measureExists, detail: "This tenant already has a measure with the code \(code).")
            }
            cache.forget(tenant)
            return .json(measure, status: .created, headers: ["Location": "/v1/measures/\(measure.id.lowercased)"])
        })
        router.patch("/v1/measures/{id}", access.secure(.admin, resource: .measure) { request, context in
            try context.principal.requireCouncilWide(toChange: "the council's measures")
            let id = try Self.measureID(request)
            var body = try FieldReader(body: request.body)
            let wording = body.optionalString("wording", maxLength: 500)
            let group = body.vocabulary("group", MeasureGroup.self, required: false)
            let active = body.bool("active", required: false)
            let scale = Self.scale(&body, required: false)
            try body.finish()
            let tenant = context.principal.tenantID
            let measure = try await context.transaction { tx -> Measure in
                let current = try Self.found(try await MeasureStore.find(id, on: tx.base, tenantID: tenant))
                let newWording = wording ?? current.wording, newScale = scale ?? current.scale
                if newWording != current.wording || newScale != current.scale {
                    // Versions, not overwrites: old responses keep the wording they were given against.
                    try await MeasureStore.addVersion(current.version + 1, of: id, wording: newWording, scale: newScale, on: tx.base, tenantID: tenant)
                    try await tx.execute("UPDATE measures SET current_version = \(current.version + 1) WHERE tenant_id = \(tenant) AND id = \(id)")
                }
                if let group, group != current.group {
                    try await tx.execute("UPDATE measures SET measure_group = \(group.rawValue) WHERE tenant_id = \(tenant) AND id = \(id)")
                }
                if let active, active != current.active {
                    try await tx.execute("UPDATE measures SET active = \(active) WHERE tenant_id = \(tenant) AND id = \(id)")
                }
                tx.audit(.update, .measure, id: id.lowercased)
                return try Self.found(try await MeasureStore.find(id, on: tx.base, tenantID: tenant))
            }
            cache.forget(tenant)
            return .json(measure)
        })
    }

    /// `scale: {min, max, agree_from, labels}`, checked whole.
    static func scale(_ body: inout FieldReader, required: Bool) -> Measure.Scale? {
        guard var nested = body.object("scale") else {
            if required { body.reject("scale", "is required") }
            return nil
        }
        let min = nested.integer("min", in: -100...100), max = nested.integer("max", in: -100...100)
        let agreeFrom = nested.integer("agree_from", in: -100...100)
        var labels: [String] = []
        if let raw = nested.raw("labels") {
            if case .array(let items) = raw, items.allSatisfy({ if case .string(let text) = $0 { !text.isEmpty && text.count <= 100 } else { false } }) {
                labels = items.compactMap { if case .string(let text) = $0 { text } else { nil } }
            } else {
                nested.reject("labels", "must be an array of labels of 1-100 characters")
            }
        }
        if let min, let max {
            if min >= max || max - min > 20 { nested.reject("max", "must be above min, by at most 20 points") }
            if let agreeFrom, !(min...Swift.max(min, max)).contains(agreeFrom) { nested.reject("agree_from", "must be within min and max") }
            if !labels.isEmpty, labels.count != max - min + 1 { nested.reject("labels", "must have one label per point, \(max - min + 1)") }
        }
        body.absorb(nested)
        guard let min, let max, let agreeFrom, min < max, max - min <= 20, (min...max).contains(agreeFrom),
              labels.isEmpty || labels.count == max - min + 1 else { return nil }
        return Measure.Scale(min: min, max: max, agreeFrom: agreeFrom, labels: labels)
    }

    static func validCode(_ code: String) -> Bool {
        guard let first = code.utf8.first, first >= 97, first <= 122, (2...63).contains(code.utf8.count) else { return false }
        return code.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
    }

    static func measureID(_ request: Request) throws(HTTPError) -> UUID {
        guard let id = UUID(uuidString: request.parameter("id")) else { throw HTTPError(.notFound, detail: "There is no measure with this id.") }
        return id
    }

    static func found(_ measure: Measure?) throws(HTTPError) -> Measure {
        guard let measure else { throw HTTPError(.notFound, detail: "There is no measure with this id.") }
        return measure
    }
}

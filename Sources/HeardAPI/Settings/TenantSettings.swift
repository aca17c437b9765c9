import Foundation
import HTTPServer
import Postgres

/// The tenant's settings, `GET/PATCH /v1/admin/settings` (scope `admin`): the consultation
/// fatigue windows. A tenant that never changed them has the defaults, at version 1.
struct TenantSettings: StoredRecord {
    var fatigueTopicDays = 90
    var fatigueMaxPer30Days = 4
    var version = 1
    var updatedAt: Date?

    var etag: String { ETag.of(version: version) }

    static let table = Table<TenantSettings>("tenant_settings s", [
        .column("fatigue_topic_days", "s.fatigue_topic_days", \.fatigueTopicDays),
        .column("fatigue_max_per_30_days", "s.fatigue_max_per_30_days", \.fatigueMaxPer30Days),
        .column("version", "s.version", \.version), .column("updated_at", "s.updated_at", \.updatedAt),
    ])

    static let topicDaysRange = 1...3650
    static let maxPer30DaysRange = 1...100

    /// The caller's tenant's settings.
    static func current(on tx: TenantTransaction) async throws -> TenantSettings {
        try await tx.query("\(unsafeRaw: table.select(includeFreeText: false)) WHERE s.tenant_id = \(tx.principal.tenantID)")
            .first.map { try table.decode($0, includeFreeText: false) } ?? TenantSettings()
    }

    func response() -> Response {
        var response = Response.json(self)
        response.headers.add(name: "ETag", value: etag)
        return response
    }
}

struct TenantSettingsRoutes {
    let access: AccessControl

    func add(to router: inout RouterBuilder) {
        router.get("/v1/admin/settings", access.secure(.admin, resource: .tenantSettings) { request, context in
            let settings = try await context.transaction { tx in
                let settings = try await TenantSettings.current(on: tx)
                tx.audit(.read, .tenantSettings)
                return settings
            }
            return IfNoneMatch.notModified(request, etag: settings.etag) ?? settings.response()
        })
        router.patch("/v1/admin/settings", access.secure(.admin, resource: .tenantSettings, Self.change))
    }

    /// The fields that change, with `If-Match` (428 without, 412 when stale); a council-wide key only.
    static func change(_ request: Request, _ context: AccessContext) async throws -> Response {
        guard context.principal.organisationID == nil else {
            throw HTTPError(.councilKeyRequired, detail: "A partner organisation's key cannot change the council's settings.")
        }
        let ifMatch = try IfMatch.required(request)
        var fields = try FieldReader(body: request.body)
        let topicDays = fields.integer("fatigue_topic_days", in: TenantSettings.topicDaysRange, required: false)
        let maxPer30Days = fields.integer("fatigue_max_per_30_days", in: TenantSettings.maxPer30DaysRange, required: false)
        for name in ["fatigue_topic_days", "fatigue_max_per_30_days"] where fields.isNull(name) {
            fields.reject(name, "cannot be cleared: leave it out to keep it")
        }
        try fields.finish()
        let settings = try await context.transaction { tx -> TenantSettings in
            let current = try await TenantSettings.current(on: tx)
            try ifMatch.check(current: current.etag)
            var changed = current
            changed.fatigueTopicDays = topicDays ?? current.fatigueTopicDays
            changed.fatigueMaxPer30Days = maxPer30Days ?? current.fatigueMaxPer30Days
            guard changed.fatigueTopicDays != current.fatigueTopicDays || changed.fatigueMaxPer30Days != current.fatigueMaxPer30Days else {
                return current
            }
            // The defaults are version 1, so the first change stores version 2.
            let stored = try await tx.query("""
                INSERT INTO tenant_settings (tenant_id, fatigue_topic_days, fatigue_max_per_30_days, version)
                VALUES (\(tx.principal.tenantID), \(changed.fatigueTopicDays), \(changed.fatigueMaxPer30Days), 2)
                ON CONFLICT (tenant_id) DO UPDATE
                   SET fatigue_topic_days = excluded.fatigue_topic_days, fatigue_max_per_30_days = excluded.fatigue_max_per_30_days,
                       version = tenant_settings.version + 1, updated_at = now()
                 WHERE tenant_settings.version = \(current.version)
                RETURNING fatigue_topic_days, fatigue_max_per_30_days, version, updated_at
                """)
            guard let row = stored.first else { throw IfMatch.changedMeanwhile }
            tx.audit(.update, .tenantSettings)
            return try TenantSettings.table.decode(row, includeFreeText: false)
        }
        return settings.response()
    }
}

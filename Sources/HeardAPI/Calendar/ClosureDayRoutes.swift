import Foundation
import HTTPServer
import Postgres

/// A council's closure days, which its working-day deadlines skip.
enum ClosureDays {
    struct Day: Encodable, Sendable {
        var day: CalendarDate
        var reason: String
    }

    /// The caller's tenant's calendar: bank holidays, weekends and its closure days.
    static func calendar(on tx: TenantTransaction) async throws -> WorkingDayCalendar {
        try calendar(from: try await tx.query(allQuery(on: tx)))
    }

    static func all(on tx: TenantTransaction) async throws -> [Day] {
        try days(from: try await tx.query(allQuery(on: tx)))
    }

    /// The statement that reads the tenant's closure days, to send with others; `days(from:)`
    /// and `calendar(from:)` read its rows.
    static func allQuery(on tx: TenantTransaction) -> PostgresQuery {
        "SELECT day, reason FROM tenant_closure_days WHERE tenant_id = \(tx.principal.tenantID) ORDER BY day"
    }

    static func days(from rows: [PostgresRow]) throws -> [Day] {
        try rows.map { Day(day: try $0.decode(CalendarDate.self, column: "day"), reason: try $0.decode(String.self, column: "reason")) }
    }

    static func calendar(from rows: [PostgresRow]) throws -> WorkingDayCalendar {
        WorkingDayCalendar(closureDays: Set(try days(from: rows).map(\.day)))
    }
}

/// `/v1/admin/closure-days` (scope admin; changes need a council-wide key): list, add, remove.
/// Adding or removing a day tells each area whose stored deadlines count working days
/// (`calendarChanged`), in the same transaction, so no deadline is left counted the old way.
struct ClosureDayRoutes {
    let access: AccessControl
    /// What to do when the council's calendar changes on a day (HeardApp: complaints' due dates).
    var calendarChanged: [@Sendable (CalendarDate, TenantTransaction) async throws -> Void] = []

    func add(to router: inout RouterBuilder) {
        router.get("/v1/admin/closure-days", access.secure(.admin, resource: .closureDay) { request, context in
            let query = QueryReader(request.query, allowed: [], paged: false)
            try query.finish()
            let days = try await context.transaction { tx in try await ClosureDays.all(on: tx) }
            return Page(items: days, nextCursor: nil).response(for: request)
        })
        router.post("/v1/admin/closure-days", access.secure(.admin, resource: .closureDay) { request, context in
            try context.principal.requireCouncilWide(toChange: "the council's closure days")
            var body = try FieldReader(body: request.body)
            let day = body.date("day")
            let reason = body.string("reason", maxLength: 200)
            try body.finish()
            guard let day, let reason else { throw HTTPError.validation([]) }
            let created = try await context.transaction { [calendarChanged] tx -> Bool in
                let inserted = try await tx.execute("""
                    INSERT INTO tenant_closure_days (tenant_id, day, reason) VALUES (\(context.principal.tenantID), \(day), \(reason))
                    ON CONFLICT (tenant_id, day) DO NOTHING
                    """)
                guard inserted == 1 else { return false }
                tx.audit(.create, .closureDay, id: day.description)
                for changed in calendarChanged { try await changed(day, tx) }
                return true
            }
            guard created else {
                throw HTTPError(.closureDayExists, detail: "\(day) is already a closure day.")
            }
            return .json(ClosureDays.Day(day: day, reason: reason), status: .created,
                         headers: ["Location": "/v1/admin/closure-days/\(day)"])
        })
        router.delete("/v1/admin/closure-days/{day}", access.secure(.admin, resource: .closureDay) { request, context in
            try context.principal.requireCouncilWide(toChange: "the council's closure days")
            let text = request.parameter("day")
            guard text.utf8.count == 10, let day = CalendarDate(text) else {
                throw HTTPError(.notFound, detail: "There is no closure day \(text.prefix(20)).")
            }
            let deleted = try await context.transaction { [calendarChanged] tx -> Bool in
                let deleted = try await tx.execute("DELETE FROM tenant_closure_days WHERE tenant_id = \(context.principal.tenantID) AND day = \(day)")
                guard deleted == 1 else { return false }
                tx.audit(.delete, .closureDay, id: day.description)
                for changed in calendarChanged { try await changed(day, tx) }
                return true
            }
            guard deleted else { throw HTTPError(.notFound, detail: "\(day) is not a closure day.") }
            return Response(status: .noContent)
        })
    }
}

import Foundation
import HTTPServer
import Postgres

/// `GET /v1/calendar/working-days`: Heard's working-day counting, for any key, with its tenant's
/// closure days, so other council systems share one definition of a deadline.
/// - `?from=D&add=N`: `{"date": ...}`, the Nth working day after D (D is day 0);
/// - `?from=D&to=E`: `{"working_days": n}`, the working days after D up to and including E.
struct WorkingDayRoutes {
    let access: AccessControl

    /// The furthest a count may reach, in working days (about twenty years).
    static let maxAdd = 5000
    /// Dates are taken from these years, which the bank-holiday rules cover.
    static let years = 1970...2199

    struct Sum: Encodable, Sendable { var date: CalendarDate }
    struct Count: Encodable, Sendable {
        var workingDays: Int
        enum CodingKeys: String, CodingKey { case workingDays = "working_days" }
    }

    func add(to router: inout RouterBuilder) {
        router.get("/v1/calendar/working-days", access.secure(anyOf: Scope.allCases, resource: .calendar) { request, context in
            var query = QueryReader(request.query, allowed: ["from", "add", "to"], paged: false)
            let from = Self.day(&query, "from")
            let add = query.integer("add", in: 0...Self.maxAdd)
            let to = Self.day(&query, "to")
            if from == nil, request.query["from"] == nil { query.reject("from", "is required") }
            switch (request.query["add"] != nil, request.query["to"] != nil) {
            case (true, true): query.reject("to", "give add or to, not both")
            case (false, false): query.reject("add", "give add (a number of working days) or to (a date)")
            default: break
            }
            if let from, let to, to < from { query.reject("to", "must not be before from") }
            try query.finish()
            let calendar = try await context.transaction { tx in try await ClosureDays.calendar(on: tx) }
            if let from, let add { return .json(Sum(date: calendar.adding(workingDays: add, to: from))) }
            if let from, let to { return .json(Count(workingDays: calendar.workingDays(from: from, to: to))) }
            throw HTTPError.invalidQuery([])
        })
    }

    private static func day(_ query: inout QueryReader, _ name: String) -> CalendarDate? {
        guard let date = query.date(name) else { return nil }
        guard years.contains(date.year) else {
            query.reject(name, "must be in the years \(years.lowerBound) to \(years.upperBound)")
            return nil
        }
        return date
    }
}

import Foundation
import HTTPServer
import Postgres

/// A project's own fields as a create or a change sends them: all on create (`started_on`
/// default today, never in the future), only those that change on a `PATCH`. The stage moves
/// only through its transitions, and the award's match with the youth ranking is worked out,
/// never sent.
struct ProjectFields: Sendable {
    var title: String?
    var service: String?
    var serviceArea: ServiceArea?
    var budgetBand: BudgetBand?
    var startedOn: CalendarDate?

    static let maxTitleLength = 200

    static func read(_ body: [UInt8], creating: Bool, today: CalendarDate) throws(HTTPError) -> ProjectFields {
        var reader = try FieldReader(body: body)
        var fields = ProjectFields()
        func present(_ name: String) -> Bool { creating || reader.has(name) }
        if present("title") { fields.title = reader.string("title", maxLength: maxTitleLength) }
        if present("service") { fields.service = reader.string("service", maxLength: maxTitleLength) }
        if present("service_area") { fields.serviceArea = reader.vocabulary("service_area", ServiceArea.self) }
        if present("budget_band") { fields.budgetBand = reader.vocabulary("budget_band", BudgetBand.self) }
        if creating {
            fields.startedOn = reader.date("started_on", required: false, notAfter: today)
            fields.startedOn = fields.startedOn ?? today
        }
        refuseWorkedOut(&reader)
        try reader.finish()
        return fields
    }

    /// The fields Heard keeps itself, each refused with why.
    static func refuseWorkedOut(_ reader: inout FieldReader) {
        let kept = [
            ("stage", "moves only with POST /v1/commissioning-projects/{id}/transitions (a new project starts at needs_analysis)"),
            ("award", "is made with POST /v1/commissioning-projects/{id}/award"),
            ("award_matched_youth_ranking", "is worked out by Heard from the tender's youth ranking; it is never sent"),
        ]
        for (name, why) in kept where reader.has(name) {
            _ = reader.raw(name)
            reader.reject(name, why)
        }
    }
}

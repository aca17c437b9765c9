import Foundation
import HTTPServer
import Postgres

/// A vacancy as sent (`POST /v1/vacancies`, and a PATCH merged onto the stored one): its title,
/// seniority, service area and team, and optionally the sending system's key
/// (`source_system` + `external_id`, both or neither).
struct NewVacancy: Sendable {
    var sourceSystem: String?
    var externalID: String?
    var title: String
    var seniority: Seniority
    var serviceArea: ServiceArea
    var team: String?
    private(set) var contentHash = ""

    static func parse(_ fields: inout FieldReader) throws(HTTPError) -> NewVacancy {
        let sourceSystem = fields.optionalString("source_system", maxLength: 100)
        let externalID = fields.optionalString("external_id", maxLength: 200)
        if (sourceSystem == nil) != (externalID == nil) {
            fields.reject(sourceSystem == nil ? "source_system" : "external_id", "is required with \(sourceSystem == nil ? "external_id" : "source_system")")
        }
        let title = fields.string("title", maxLength: 200)
        let seniority = fields.vocabulary("seniority", Seniority.self)
        let serviceArea = fields.vocabulary("service_area", ServiceArea.self)
        let team = fields.optionalString("team", maxLength: 100)
        VacancyFields.refuseComputed(&fields)
        try fields.finish()
        guard let title, let seniority, let serviceArea else { throw HTTPError.validation([FieldError(field: "(body)", message: "is incomplete")]) }
        var vacancy = NewVacancy(sourceSystem: sourceSystem, externalID: externalID, title: title, seniority: seniority,
                                 serviceArea: serviceArea, team: team)
        var hash = ContentHash()
        for part in [sourceSystem, externalID, title, seniority.rawValue, serviceArea.rawValue, team] { hash.add(part) }
        vacancy.contentHash = hash.hexDigest
        return vacancy
    }
}

enum VacancyFields {
    /// Fields Heard works out itself: sent in a body, each is a 422 saying so.
    static let computed = ["youth_choice_appointed", "youth_ranking", "days_to_tell"]

    static func refuseComputed(_ fields: inout FieldReader) {
        for name in computed where fields.has(name) {
            _ = fields.raw(name)
            fields.reject(name, "is worked out by Heard (from the youth panel's scores, the decision and the day young people were told), never sent")
        }
    }
}

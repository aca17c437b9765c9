import Foundation
import HTTPServer
import Postgres

/// A complaint as a complaints system sends it, validated (`POST /v1/complaints`).
struct NewComplaint: Sendable {
    var sourceSystem: String
    var externalID: String
    var procedure: ComplaintProcedureCode
    var receivedOn: CalendarDate
    var complainantRole: ComplainantRole
    var subjectRef: String?
    var serviceArea: ServiceArea
    var team: String?
    /// Category codes, checked against the council's categories when stored (`ComplaintCategory.check`).
    var categories: [String]
    var summary: String?
    var matterDate: CalendarDate?
    var lateAcceptanceReason: String?
    var advocacyOffered: Bool?
    /// The partner organisation's slug, as sent.
    var organisation: String?
    private(set) var contentHash = ""

    static let maxSummaryLength = 8000

    /// Reads and validates `body`; `today` is the day in England. 400/422 naming every field at fault.
    static func parse(_ body: [UInt8], today: CalendarDate) throws(HTTPError) -> NewComplaint {
        var fields = try FieldReader(body: body)
        let sourceSystem = fields.string("source_system", maxLength: 100)
        let externalID = fields.string("external_id", maxLength: 200)
        let procedure = fields.vocabulary("procedure", ComplaintProcedureCode.self)
        let receivedOn = fields.date("received_on", notAfter: today)
        let role = fields.vocabulary("complainant_role", ComplainantRole.self)
        let subjectRef = fields.optionalString("subject_ref", maxLength: 100)
        let serviceArea = fields.vocabulary("service_area", ServiceArea.self)
        let team = fields.optionalString("team", maxLength: 100)
        let categories = fields.stringList("categories", minCount: 1, maxCount: 20,
                                           rule: "is not a category code: " + ComplaintCategory.codeRule, valid: ComplaintCategory.isCode)
        let summary = fields.optionalString("summary", maxLength: maxSummaryLength)
        let matterDate = fields.date("matter_date", required: false, notAfter: today)
        let lateReason = fields.optionalString("late_acceptance_reason", maxLength: 2000)
        let advocacyOffered = fields.bool("advocacy_offered", required: false)
        let organisation = fields.optionalString("organisation", maxLength: 63)

        if let matterDate, matterDate <= today {
            if let receivedOn, matterDate > receivedOn {
                fields.reject("matter_date", "must not be after received_on")
            } else if let receivedOn, matterDate < receivedOn.adding(years: -1), lateReason == nil {
                fields.reject("late_acceptance_reason", "is required when the matter is more than a year before received_on")
            }
        }
        if lateReason != nil, matterDate == nil { fields.reject("late_acceptance_reason", "needs matter_date") }
        if procedure == .statutoryChildrenAct, role?.isChildOrYoungPerson == true, advocacyOffered == nil {
            fields.reject("advocacy_offered", "is required when a child or young person complains under the statutory procedure")
        }
        try fields.finish()
        guard let sourceSystem, let externalID, let procedure, let receivedOn, let role, let serviceArea, let categories else {
            throw HTTPError.validation([FieldError(field: "(body)", message: "is incomplete")])  // unreachable: finish() threw
        }
        var complaint = NewComplaint(
            sourceSystem: sourceSystem, externalID: externalID, procedure: procedure, receivedOn: receivedOn, complainantRole: role,
            subjectRef: subjectRef, serviceArea: serviceArea, team: team, categories: categories, summary: summary,
            matterDate: matterDate, lateAcceptanceReason: lateReason, advocacyOffered: advocacyOffered, organisation: organisation)
        complaint.contentHash = complaint.canonicalHash()
        return complaint
    }

    /// SHA-256 of the content in a canonical form (`ContentHash`; categories in the order sent).
    private func canonicalHash() -> String {
        var hash = ContentHash(capacity: 256 + (summary?.utf8.count ?? 0))
        hash.add(sourceSystem); hash.add(externalID); hash.add(procedure.rawValue); hash.add(receivedOn.description)
        hash.add(complainantRole.rawValue); hash.add(subjectRef); hash.add(serviceArea.rawValue); hash.add(team)
        hash.add(categories.joined(separator: ",")); hash.add(summary); hash.add(matterDate?.description)
        hash.add(lateAcceptanceReason); hash.add(advocacyOffered.map { String($0) }); hash.add(organisation)
        return hash.hexDigest
    }
}

extension CalendarDate {
    /// The same day `years` years on (29 February becomes the 28th in a common year).
    func adding(years: Int) -> CalendarDate {
        CalendarDate(year: year + years, month: month, day: day) ?? CalendarDate(year: year + years, month: month, day: day - 1) ?? self
    }
}

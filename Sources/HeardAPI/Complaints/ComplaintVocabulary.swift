/// The complaints procedure a complaint follows.
enum ComplaintProcedureCode: String, CaseIterable, Sendable {
    case statutoryChildrenAct = "statutory_children_act"
    case corporate
}

/// Who made the complaint.
enum ComplainantRole: String, CaseIterable, Sendable {
    case child, youngPerson = "young_person", parentCarer = "parent_carer"
    case personWithParentalResponsibility = "person_with_parental_responsibility"
    case fosterCarer = "foster_carer", specialGuardian = "special_guardian", careLeaver = "care_leaver"
    case advocateOnBehalf = "advocate_on_behalf", other

    /// A child or young person: under the statutory procedure they must be offered an advocate.
    var isChildOrYoungPerson: Bool { self == .child || self == .youngPerson }
}

/// What a complaint is about (the default set of the tenant's vocabulary).
enum ComplaintCategory: String, CaseIterable, Sendable {
    case communication, delay, decision, staffConduct = "staff_conduct", qualityOfService = "quality_of_service"
    case placement, contact, financial, other
}

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

// What a complaint is about is the council's own vocabulary: ComplaintCategory.

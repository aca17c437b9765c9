/// Recruitment's vocabularies (issue 17, DOMAIN.md §3). Extend them only by adding values.

/// How senior a post is; `senior_leader` and `manager` count as senior in the figures.
public enum Seniority: String, CaseIterable, Sendable {
    case seniorLeader = "senior_leader", manager, practitioner, fosterCarer = "foster_carer", support, other

    public var isSenior: Bool { self == .seniorLeader || self == .manager }
}

/// How young people on the panel were told the outcome.
public enum ToldHow: String, CaseIterable, Sendable {
    case meeting, letter, phone, message, other
}

/// What the recruitment area asks of Participation.
enum RecruitmentPanelRules {
    /// The consent a panel member must hold on the panel's day (a waiver never replaces it).
    static let consent = ConsentPurpose.recruitmentPanels
    /// The training a panel member must hold current on the panel's day, unless waived.
    static let course = TrainingCourse.recruitmentPanel
    /// The topic of the panels' activities: fatigue warnings see one panel after another.
    static let topic = "recruitment"
    /// The scale scores are on when the panel names none: 1 to 5.
    static let defaultScaleMax = 5

    /// The rung of Hart's ladder a panel stands on: young people share the decision when their
    /// view carries weight (adult-initiated shared decisions), else they are consulted.
    static func rung(weightPercent: Int) -> HartsRung {
        weightPercent > 0 ? .adultInitiatedSharedDecisions : .consultedAndInformed
    }
}

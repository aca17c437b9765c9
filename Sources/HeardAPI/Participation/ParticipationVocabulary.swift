/// Participation's vocabularies (issue 15, DOMAIN.md §5). Extend them only by adding values.

/// Who gave consent.
public enum ConsentGiver: String, CaseIterable, Sendable {
    case `self`, parentCarer = "parent_carer", personWithParentalResponsibility = "person_with_parental_responsibility"
}

/// What consent is for.
public enum ConsentPurpose: String, CaseIterable, Sendable {
    case involvement, recruitmentPanels = "recruitment_panels", commissioning, photosAndMedia = "photos_and_media"
    case contactAboutOutcomes = "contact_about_outcomes"
}

public enum GroupKind: String, CaseIterable, Sendable {
    case childrenInCareCouncil = "children_in_care_council", careLeaversForum = "care_leavers_forum", youthCouncil = "youth_council"
    case parentCarerForum = "parent_carer_forum", youngCommissioners = "young_commissioners", youngInspectors = "young_inspectors"
    case other
}

public enum TrainingCourse: String, CaseIterable, Sendable {
    case recruitmentPanel = "recruitment_panel", youngCommissioner = "young_commissioner", safeguarding
    case youngInspector = "young_inspector", other
}

public enum RewardKind: String, CaseIterable, Sendable {
    case voucher, payment, certificate, accreditation, other
}

public enum ActivityKind: String, CaseIterable, Sendable {
    case consultation, survey, forumMeeting = "forum_meeting", focusGroup = "focus_group", coProduction = "co_production"
    case event, interviewPanel = "interview_panel", commissioning, inspection, other
}

/// The eight rungs of Hart's ladder of participation (seed 003), by number. Rungs 1-3 are
/// non-participation: recorded honestly, reported as such.
public enum HartsRung: Int, CaseIterable, Sendable {
    case manipulation = 1, decoration, tokenism, assignedButInformed, consultedAndInformed, adultInitiatedSharedDecisions
    case childInitiatedAndDirected, childInitiatedSharedDecisions

    public var code: String {
        switch self {
        case .manipulation: "manipulation"
        case .decoration: "decoration"
        case .tokenism: "tokenism"
        case .assignedButInformed: "assigned_but_informed"
        case .consultedAndInformed: "consulted_and_informed"
        case .adultInitiatedSharedDecisions: "adult_initiated_shared_decisions"
        case .childInitiatedAndDirected: "child_initiated_and_directed"
        case .childInitiatedSharedDecisions: "child_initiated_shared_decisions"
        }
    }

    public var isParticipation: Bool { rawValue >= 4 }
}

extension AgeBand {
    /// Under 13, or not known to be 13 or over: consent must come from a parent, carer or
    /// person with parental responsibility (DOMAIN.md §5).
    var needsAdultConsent: Bool {
        switch self {
        case .under5, .from5To7, .from8To12, .unknown: true
        case .from13To15, .from16To17, .from18To25, .adult: false
        }
    }
}

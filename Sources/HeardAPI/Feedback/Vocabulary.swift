/// The vocabularies council systems code against (DOMAIN.md, "Vocabularies"). Extend them only
/// by adding values.
public enum ServiceArea: String, CaseIterable, Sendable, Codable {
    case earlyHelp = "early_help", childrenInNeed = "children_in_need", childProtection = "child_protection"
    case childrenLookedAfter = "children_looked_after", careLeavers = "care_leavers"
    case childrenWithDisabilities = "children_with_disabilities", send, youthJustice = "youth_justice"
    case fostering, adoption, education, other
}

public enum Channel: String, CaseIterable, Sendable, Codable {
    case survey, closedCase = "closed_case", cpConference = "cp_conference", cicReview = "cic_review", advocacy
    case independentVisitor = "independent_visitor", partner, appStatement = "app_statement", forum, phone, leaflet
    case website, other
}

public enum RespondentRole: String, CaseIterable, Sendable, Codable {
    case child, youngPerson = "young_person", parentCarer = "parent_carer", fosterCarer = "foster_carer"
    case familyMember = "family_member", partnerAgency = "partner_agency", professional, advocate, other
}

public enum AgeBand: String, CaseIterable, Sendable, Codable {
    case under5 = "under_5", from5To7 = "5_to_7", from8To12 = "8_to_12", from13To15 = "13_to_15"
    case from16To17 = "16_to_17", from18To25 = "18_to_25", adult, unknown
}

/// The stage of the child's journey.
public enum JourneyStage: String, CaseIterable, Sendable, Codable {
    case assessment, plan, review, closure, other
}

public enum FeedbackKind: String, CaseIterable, Sendable, Codable {
    case compliment, concern, suggestion, general
}

public enum MeasureGroup: String, CaseIterable, Sendable, Codable {
    case principle, practiceOutcome = "practice_outcome", changeOutcome = "change_outcome"
    case qualityOfLife = "quality_of_life", other
}

/// Optional equality data, for checking who is heard against the children served.
public enum Gender: String, CaseIterable, Sendable, Codable {
    case female, male, nonBinary = "non_binary", other, preferNotToSay = "prefer_not_to_say", notKnown = "not_known"
}

/// The ONS 2021 census ethnic groups (England and Wales), one value per detailed category.
public enum Ethnicity: String, CaseIterable, Sendable, Codable {
    case asianBangladeshi = "asian_bangladeshi", asianChinese = "asian_chinese", asianIndian = "asian_indian"
    case asianPakistani = "asian_pakistani", asianOther = "asian_other"
    case blackAfrican = "black_african", blackCaribbean = "black_caribbean", blackOther = "black_other"
    case mixedWhiteAndAsian = "mixed_white_and_asian", mixedWhiteAndBlackAfrican = "mixed_white_and_black_african"
    case mixedWhiteAndBlackCaribbean = "mixed_white_and_black_caribbean", mixedOther = "mixed_other"
    case whiteBritish = "white_british", whiteIrish = "white_irish"
    case whiteGypsyOrIrishTraveller = "white_gypsy_or_irish_traveller", whiteRoma = "white_roma", whiteOther = "white_other"
    case otherArab = "other_arab", otherAny = "other_any"
    case preferNotToSay = "prefer_not_to_say", notKnown = "not_known"
}

public enum Disability: String, CaseIterable, Sendable, Codable {
    case yes, no, preferNotToSay = "prefer_not_to_say", notKnown = "not_known"
}

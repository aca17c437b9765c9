import Foundation

/// Where a "we did" stands: new items are planned; done and not possible are final unless
/// reopened.
enum YouSaidStatus: String, CaseIterable, Sendable {
    case planned, inProgress = "in_progress", done, notPossible = "not_possible"
}

/// The moves between statuses (`allowed_actions`). A `PATCH` names the new `status`; the action
/// is the move from the current one to it.
enum YouSaidAction: String, CaseIterable, Sendable {
    case start, complete
    case declareNotPossible = "declare_not_possible"
    case reopen
}

/// How young people were told (`POST /v1/you-said/{id}/feedback-given`).
enum FeedbackGivenHow: String, CaseIterable, Sendable {
    case letter, meeting, forum, app, website, socialMedia = "social_media", other
}

/// The kinds of record a "you said" comes from, each a list of ids in `sources`.
enum YouSaidSourceKind: String, CaseIterable, Sendable {
    case feedback, complaints, activities, groups

    /// The table the ids are looked up in (constant SQL).
    var table: String {
        switch self {
        case .feedback: "feedback"
        case .complaints: "complaints"
        case .activities: "activities"
        case .groups: "participant_groups"
        }
    }

    /// The item's column holding the ids (constant SQL).
    var column: String {
        switch self {
        case .feedback: "feedback_ids"
        case .complaints: "complaint_ids"
        case .activities: "activity_ids"
        case .groups: "group_ids"
        }
    }

    /// What one is, in a message.
    var noun: String {
        switch self {
        case .feedback: "feedback record"
        case .complaints: "complaint"
        case .activities: "activity"
        case .groups: "group"
        }
    }
}

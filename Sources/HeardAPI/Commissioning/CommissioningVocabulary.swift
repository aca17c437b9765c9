/// Commissioning's vocabularies (issue 18, DOMAIN.md §4). Extend them only by adding values.

/// A commissioning project's stage, in order: a project starts at needs analysis, moves forward
/// one stage at a time and back any number of stages with a reason (`ProjectLifecycle`).
public enum ProjectStage: String, CaseIterable, Sendable {
    case needsAnalysis = "needs_analysis", specification, tenderEvaluation = "tender_evaluation", award
    case contractMonitoring = "contract_monitoring", closed

    /// The stages young people can be involved in (all but closed).
    static let involving: [ProjectStage] = allCases.filter { $0 != .closed }

    /// The stages a monitoring visit may be recorded at: from the award on.
    static let monitored: [ProjectStage] = [.award, .contractMonitoring, .closed]
}

/// The contract's value.
public enum BudgetBand: String, CaseIterable, Sendable {
    case under100k = "under_100k", from100kTo500k = "100k_to_500k", from500kTo1m = "500k_to_1m", over1m = "over_1m"
}

/// A visit report's recommendation's priority.
public enum RecommendationPriority: String, CaseIterable, Sendable {
    case high, medium, low
}

/// What a revisit found of a recommendation: not (fully) implemented needs the provider's reason.
public enum RecommendationOutcome: String, CaseIterable, Sendable {
    case implemented, partlyImplemented = "partly_implemented", notImplemented = "not_implemented"

    var needsReason: Bool { self != .implemented }
}

/// Where a monitoring visit is: its revisit awaited, or made.
enum VisitStatus: String, CaseIterable, Sendable {
    case awaitingRevisit = "awaiting_revisit", revisited
}

enum VisitAction: String, CaseIterable, Sendable {
    case revisit
}

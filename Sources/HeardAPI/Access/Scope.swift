/// What an API key may do. A key carries a set of scopes; every operation names the one it needs.
public enum Scope: String, CaseIterable, Sendable, Codable, Hashable {
    case feedbackWrite = "feedback:write"
    case feedbackRead = "feedback:read"
    case complaintsWrite = "complaints:write"
    case complaintsRead = "complaints:read"
    /// Recruitment, commissioning, participation, you said we did.
    case involvementWrite = "involvement:write"
    case involvementRead = "involvement:read"
    case reportsRead = "reports:read"
    /// Comments, summaries and other narrative fields; without it they are absent from answers.
    case freeTextRead = "free_text:read"
    /// Counts under 5 unsuppressed in reports.
    case smallNumbersRead = "small_numbers:read"
    case auditRead = "audit:read"
    case admin
}

/// The records the change feed reports, each with the scope a key needs to read it: a key sees
/// the events of exactly the resources its scopes let it read elsewhere in the API. A new
/// resource is a case here and its trigger line in a migration (see `Migrations/0014_events.sql`).
enum EventResource: String, CaseIterable, Sendable {
    case feedback
    case safeguardingAlert = "safeguarding_alert"
    case complaint
    case participant
    case activity
    case youSaidItem = "you_said_item"
    case vacancy

    /// The scope that reads this resource's records (as its own routes require).
    var scope: Scope {
        switch self {
        case .feedback, .safeguardingAlert: .feedbackRead
        case .complaint: .complaintsRead
        case .participant, .activity, .youSaidItem, .vacancy: .involvementRead
        }
    }

    /// The scopes that open the feed: each reads at least one resource.
    static let readScopes: [Scope] = Scope.allCases.filter { scope in allCases.contains { $0.scope == scope } }
}

/// What happened to the record: made, changed (a correction), or moved by a lifecycle action.
enum EventKind: String, CaseIterable, Sendable {
    case created, changed, transitioned
}

/// An event's `type`: `<resource>.<kind>`, such as `feedback.created` or `complaint.transitioned`.
struct EventType: Hashable, Sendable {
    let resource: EventResource
    let kind: EventKind

    var rawValue: String { "\(resource.rawValue).\(kind.rawValue)" }

    static let all: [EventType] = EventResource.allCases.flatMap { resource in EventKind.allCases.map { EventType(resource: resource, kind: $0) } }

    /// The types a key with `principal`'s scopes may read.
    static func readable(by principal: Principal) -> [EventType] {
        all.filter { principal.has($0.resource.scope) }
    }
}

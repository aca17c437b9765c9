import Foundation
import HTTPServer
import Postgres

/// What was done to a resource.
public enum AuditAction: String, Sendable, Codable, CaseIterable {
    case read, list, export, create, update, delete, authenticate

    init(method: String) {
        switch method {
        case "POST": self = .create
        case "PUT", "PATCH": self = .update
        case "DELETE": self = .delete
        default: self = .read
        }
    }
}

public enum AuditOutcome: String, Sendable, Codable, CaseIterable {
    case success, unauthenticated, forbidden, notFound = "not_found", rateLimited = "rate_limited"
}

/// The audit trail: who read, exported or wrote which record, and who was refused. The service's
/// database role can only append to it (and read its own tenant's part).
enum AuditTrail {
    /// Queues the audit row on `transaction`: it travels with the transaction's next statement
    /// or its `COMMIT` (no round trip of its own) and commits, or fails, with the work.
    static func record(
        on transaction: PostgresTransaction, principal: Principal, requestID: String, action: AuditAction,
        resourceType: AuditResource, resourceID: String?, rowsExported: Int?, outcome: AuditOutcome, status: Int
    ) {
        transaction.enqueue("""
            INSERT INTO audit_events (tenant_id, organisation_id, key_id, action, resource_type, resource_id,
                                      rows_exported, outcome, status, request_id)
            VALUES (\(principal.tenantID), \(principal.organisationID), \(principal.keyID), \(action.rawValue),
                    \(resourceType.rawValue), \(resourceID.map { String($0.prefix(200)) }), \(rowsExported), \(outcome.rawValue),
                    \(status), \(requestID))
            """)
    }

    /// An `INSERT` of one success row for each row of `source` (a CTE of the same statement),
    /// naming the record `resourceID` (SQL over `source`'s columns, or a bound value): so a
    /// statement that reads or writes records writes their audit rows itself, and the unit it
    /// travels in needs nothing else.
    /// `rowsExported` and `requestID` likewise (a list's row count; the request of each row of a
    /// group of requests written together).
    static func recordEach(
        of source: String, resourceID: SQLFragment, rowsExported: SQLFragment = "NULL::integer", principal: Principal, requestID: SQLFragment,
        action: AuditAction, resourceType: AuditResource
    ) -> SQLFragment {
        """
        INSERT INTO audit_events (tenant_id, organisation_id, key_id, action, resource_type, resource_id, rows_exported, outcome, status, request_id)
        SELECT \(principal.tenantID), \(principal.organisationID), \(principal.keyID), \(action.rawValue), \(resourceType.rawValue),
               \(resourceID), \(rowsExported), 'success', 200, \(requestID)
          FROM \(unsafeRaw: source)
        """
    }

    /// `GET /v1/audit`: newest first, filtered, paged by cursor.
    static let list = ListEndpoint<AuditEvent, Void>(
        resource: .auditEvent,
        filters: [
            .vocabulary("action", AuditAction.self, "e.action"), .vocabulary("outcome", AuditOutcome.self, "e.outcome"),
            .text("resource_type", "e.resource_type"), .text("resource_id", "e.resource_id", maxLength: 200), .uuid("key_id", "e.key_id"),
        ],
        days: DayRange(column: "e.occurred_at", zone: .utc),
        order: ListOrder(descending: [("e.id", .bigint)]))
}

/// One entry of the audit trail.
struct AuditEvent: StoredRecord {
    var id = 0
    var occurredAt = Date(timeIntervalSince1970: 0)
    var keyId: UUID?
    var organisationId: UUID?
    var action = ""
    var resourceType = ""
    var resourceId: String?
    var rowsExported: Int?
    var outcome = ""
    var status = 0
    var requestId = ""

    static let table = Table<AuditEvent>("audit_events e", [
        .column("id", "e.id", \.id), .column("occurred_at", "e.occurred_at", \.occurredAt), .column("key_id", "e.key_id", \.keyId),
        .column("organisation_id", "e.organisation_id", \.organisationId), .column("action", "e.action", \.action),
        .column("resource_type", "e.resource_type", \.resourceType), .column("resource_id", "e.resource_id", \.resourceId),
        .column("rows_exported", "e.rows_exported", \.rowsExported), .column("outcome", "e.outcome", \.outcome),
        .column("status", "e.status", \.status), .column("request_id", "e.request_id", \.requestId),
    ])
}

/// The kinds of record the audit trail names (`resource_type`): one constant each, so a typo
/// cannot make a second spelling of one.
public struct AuditResource: RawRepresentable, Sendable, Hashable {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    static let feedback = AuditResource(rawValue: "feedback")
    static let safeguardingAlert = AuditResource(rawValue: "safeguarding_alert")
    static let apiKey = AuditResource(rawValue: "api_key")
    static let auditEvent = AuditResource(rawValue: "audit_event")
    static let measure = AuditResource(rawValue: "measure")
    static let closureDay = AuditResource(rawValue: "closure_day")
    static let system = AuditResource(rawValue: "system")
    static let participant = AuditResource(rawValue: "participant")
    static let consent = AuditResource(rawValue: "consent")
    static let participantGroup = AuditResource(rawValue: "participant_group")
    static let groupMembership = AuditResource(rawValue: "group_membership")
    static let trainingRecord = AuditResource(rawValue: "training_record")
    static let reward = AuditResource(rawValue: "reward")
    static let activity = AuditResource(rawValue: "activity")
    static let tenantSettings = AuditResource(rawValue: "tenant_settings")
    static let participationReport = AuditResource(rawValue: "participation_report")
    static let calendar = AuditResource(rawValue: "calendar")
    static let complaint = AuditResource(rawValue: "complaint")
    static let complaintProcedure = AuditResource(rawValue: "complaint_procedure")
    static let learningAction = AuditResource(rawValue: "learning_action")
    static let complaintReport = AuditResource(rawValue: "complaint_report")
    static let complaintCategory = AuditResource(rawValue: "complaint_category")
    static let event = AuditResource(rawValue: "event")
    static let commissioningProject = AuditResource(rawValue: "commissioning_project")
    static let commissioningVisit = AuditResource(rawValue: "commissioning_visit")
    static let commissioningReport = AuditResource(rawValue: "commissioning_report")
    static let youSaidItem = AuditResource(rawValue: "you_said_item")
    static let youSaidMilestone = AuditResource(rawValue: "you_said_milestone")
    static let youSaidFeedbackGiven = AuditResource(rawValue: "you_said_feedback_given")
    static let youSaidRound = AuditResource(rawValue: "you_said_round")
    static let vacancy = AuditResource(rawValue: "vacancy")
    static let vacancyCandidate = AuditResource(rawValue: "vacancy_candidate")
    static let youthPanelScore = AuditResource(rawValue: "youth_panel_score")
    static let recruitmentReport = AuditResource(rawValue: "recruitment_report")
}

import Foundation
import Postgres

/// The two questions other areas ask of participation (recruitment panels and commissioning
/// check the same records), each answered by one rule, as SQL that any statement can embed
/// and as a call:
/// - consent for a purpose is in force on a day when it was given on or before that day and
///   not withdrawn on or before it (in force up to, not including, the withdrawal day);
/// - a participant is trained for a course on a day when a record of that course was
///   completed on or before it and expires on or after it (the expiry day itself is current),
///   or never expires.
enum ParticipationRules {
    /// True when `participant` (of `tenant`) holds consent for `purpose` in force on `day`.
    static func consentInForce(tenant: SQLFragment, participant: SQLFragment, purpose: ConsentPurpose, on day: SQLFragment) -> SQLFragment {
        """
        EXISTS (SELECT 1 FROM consents consent
                 WHERE consent.tenant_id = \(tenant) AND consent.participant_id = \(participant)
                   AND \(purpose.rawValue)::text = ANY(consent.purposes) AND consent.given_on <= \(day)
                   AND (consent.withdrawn_on IS NULL OR consent.withdrawn_on > \(day)))
        """
    }

    /// True when `participant` (of `tenant`) is trained for `course` on `day`.
    static func trainedFor(tenant: SQLFragment, participant: SQLFragment, course: TrainingCourse, on day: SQLFragment) -> SQLFragment {
        trainedFor(tenant: tenant, participant: participant, course: "\(course.rawValue)::text", on: day)
    }

    /// `trainedFor` with the course an expression (a column of the statement).
    static func trainedFor(tenant: SQLFragment, participant: SQLFragment, course: SQLFragment, on day: SQLFragment) -> SQLFragment {
        """
        EXISTS (SELECT 1 FROM training_records training
                 WHERE training.tenant_id = \(tenant) AND training.participant_id = \(participant)
                   AND training.course = \(course) AND training.completed_on <= \(day)
                   AND (training.expires_on IS NULL OR training.expires_on >= \(day)))
        """
    }

    /// Whether `participant` holds consent for `purpose` in force on `day`.
    static func hasConsent(_ participant: UUID, for purpose: ConsentPurpose, on day: CalendarDate, tx: TenantTransaction) async throws -> Bool {
        let rule = consentInForce(tenant: "\(tx.principal.tenantID)", participant: "\(participant)", purpose: purpose, on: "\(day)::date")
        return try await tx.query("SELECT \(rule) AS holds").first?.decode(Bool.self, column: "holds") ?? false
    }

    /// Whether `participant` is trained for `course` on `day`.
    static func isTrained(_ participant: UUID, for course: TrainingCourse, on day: CalendarDate, tx: TenantTransaction) async throws -> Bool {
        let rule = trainedFor(tenant: "\(tx.principal.tenantID)", participant: "\(participant)", course: course, on: "\(day)::date")
        return try await tx.query("SELECT \(rule) AS holds").first?.decode(Bool.self, column: "holds") ?? false
    }
}

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

    /// True when `activity` (of `tenant`) gave participation: a rung of Hart's ladder from 4 up
    /// (`HartsRung.isParticipation`).
    static func wasParticipation(tenant: SQLFragment, activity: SQLFragment) -> SQLFragment {
        """
        EXISTS (SELECT 1 FROM activities activity
                 WHERE activity.tenant_id = \(tenant) AND activity.id = \(activity) AND activity.harts_rung >= 4)
        """
    }

    /// Where a participant stands on a day, for an area that seats them (a tender panel, a visit).
    struct Standing: Sendable {
        /// A participant of the caller's tenant (and organisation).
        var found: Bool
        var consented: Bool
        /// Trained for the course asked about (false when none was).
        var trained: Bool
    }

    /// The standing of each of `ids` on `day`, in order: found, holding consent for `purpose` in
    /// force, and trained for `course` when one is given. One statement.
    static func standing(of ids: [UUID], consentFor purpose: ConsentPurpose, trainedFor course: TrainingCourse? = nil,
                         on day: CalendarDate, tx: TenantTransaction) async throws -> [Standing] {
        let tenant: SQLFragment = "\(tx.principal.tenantID)"
        let consented = consentInForce(tenant: tenant, participant: "i.id", purpose: purpose, on: "\(day)::date")
        let trained = course.map { trainedFor(tenant: tenant, participant: "i.id", course: $0, on: "\(day)::date") } ?? "false"
        return try await tx.query("""
            SELECT p.id IS NOT NULL AS found, \(consented) AS consented, \(trained) AS trained
              FROM unnest(\(ids)::uuid[]) WITH ORDINALITY AS i (id, n)
              LEFT JOIN participants p ON p.tenant_id = \(tx.principal.tenantID) AND p.id = i.id
             ORDER BY i.n
            """).map {
            Standing(found: try $0.decode(Bool.self, column: "found"), consented: try $0.decode(Bool.self, column: "consented"),
                     trained: try $0.decode(Bool.self, column: "trained"))
        }
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

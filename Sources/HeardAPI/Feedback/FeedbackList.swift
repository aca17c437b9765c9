import Foundation
import HTTPServer
import Postgres

/// `GET /v1/feedback`: the caller's feedback (a partner key: its organisation's), filtered,
/// newest recorded first, paged by an opaque cursor, as JSON or CSV.
///
/// Newest recorded first (`seq` descending) because it is the order that never skips: `seq` is
/// taken when an insert starts, not when it commits, so a row with a lower `seq` can become
/// visible after one with a higher `seq`. Walking down, such a row is either above the first
/// page (it did not exist when the walk began) or still ahead of the cursor; walking up, it
/// could fall behind the cursor and be missed.
enum FeedbackList {
    static let endpoint = ListEndpoint<FeedbackRecord, [Measure]>(
        resource: .feedback,
        filters: [
            .vocabulary("service_area", ServiceArea.self, "f.service_area"), .text("team", "f.team"),
            .vocabulary("channel", Channel.self, "f.channel"), .vocabulary("stage", JourneyStage.self, "f.stage"),
            .vocabulary("kind", FeedbackKind.self, "f.kind"), .vocabulary("respondent_role", RespondentRole.self, "f.respondent_role"),
            .text("subject_ref", "f.subject_ref"), .bool("safeguarding_concern", "f.safeguarding_concern"),
            .custom("measure", read: { $0.string($1, maxLength: 63) }, condition: { code, measures in
                guard let measure = measures.first(where: { $0.code == code }) else {
                    throw HTTPError.invalidQuery([FieldError(field: "measure", message: "is not a measure of this tenant (see /v1/measures)")])
                }
                return "\(measure.id) = ANY(f.response_measures)"
            }),
        ],
        days: DayRange(column: "f.given_at", zone: .utc),
        order: ListOrder(descending: [("f.seq", .bigint)]),
        csvFilename: "feedback.csv",
        prepare: { tx, _ in try await MeasureStore.all(on: tx.base, tenantID: tx.principal.tenantID) }
    ).completing { records, _, tx in
        try await FeedbackStore.completeResponses(&records, on: tx)
    }.exporting { columns, measures in
        // One score_<code> column per measure of the tenant, where the responses stand.
        let scores = measures.map { measure in
            CSVColumn<FeedbackRecord>("score_\(measure.code)") { record in record.responses.first { $0.measure == measure.code }.map { String($0.score) } }
        }
        guard let index = columns.firstIndex(where: { $0.header == "subject_ref" }) else { return columns + scores }
        return Array(columns[...index]) + scores + columns[(index + 1)...]
    }
}

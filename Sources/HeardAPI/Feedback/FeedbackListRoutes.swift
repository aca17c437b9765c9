import Foundation
import HTTPServer
import Postgres

/// `GET /v1/feedback`: the caller's feedback (a partner key: its organisation's), filtered,
/// newest recorded first, paged by an opaque cursor, as JSON or CSV.
///
/// Order and paging: by `seq` (the order feedback was recorded) descending; the cursor is the
/// `seq` of the last row returned and the next page is the rows below it. Newest first because
/// it is the order that never skips: `seq` is taken when an insert starts, not when it commits,
/// so a row with a lower `seq` can become visible after one with a higher `seq`. Walking down,
/// such a row is either above the first page (it did not exist when the walk began) or still
/// ahead of the cursor; walking up, it could fall behind the cursor and be missed. Every row
/// committed before the first page is returned exactly once; rows recorded during the walk
/// appear at most once.
struct FeedbackListRoutes {
    let access: AccessControl

    static let filters: Set<String> = [
        "from", "to", "service_area", "team", "channel", "stage", "kind", "respondent_role", "measure", "subject_ref",
        "safeguarding_concern",
    ]

    func add(to router: inout RouterBuilder) {
        router.get("/v1/feedback", access.secure(.feedbackRead, resource: "feedback") { request, context in
            try await list(request, context)
        })
    }

    struct Position: Codable {
        var seq: Int
    }

    /// The filters of one request, validated.
    struct Filter {
        var from: CalendarDate?
        var to: CalendarDate?
        var serviceArea: ServiceArea?
        var team: String?
        var channel: Channel?
        var stage: JourneyStage?
        var kind: FeedbackKind?
        var respondentRole: RespondentRole?
        var measure: String?
        var subjectRef: String?
        var safeguardingConcern: Bool?
    }

    private func list(_ request: Request, _ context: AccessContext) async throws -> Response {
        var query = QueryReader(request.query, allowed: Self.filters)
        let limit = query.limit()
        let after = query.cursor(Position.self)
        let format = query.format(accept: request.headers["Accept"])
        var filter = Filter()
        filter.from = query.date("from")
        filter.to = query.date("to")
        filter.serviceArea = query.vocabulary("service_area", ServiceArea.self)
        filter.team = query.string("team", maxLength: 100)
        filter.channel = query.vocabulary("channel", Channel.self)
        filter.stage = query.vocabulary("stage", JourneyStage.self)
        filter.kind = query.vocabulary("kind", FeedbackKind.self)
        filter.respondentRole = query.vocabulary("respondent_role", RespondentRole.self)
        filter.measure = query.string("measure", maxLength: 63)
        filter.subjectRef = query.string("subject_ref", maxLength: 100)
        filter.safeguardingConcern = query.bool("safeguarding_concern")
        try query.finish()
        if let from = filter.from, let to = filter.to, to < from {
            throw HTTPError(.badRequest, type: "invalid-query", title: "The query string is not valid",
                            detail: "1 parameter did not pass validation.",
                            errors: [FieldError(field: "to", message: "must not be before from")])
        }

        let principal = context.principal
        let includeFreeText = principal.has(.freeTextRead)
        let (records, measures, hasMore) = try await context.transaction { tx in
            let measures = try await MeasureStore.all(on: tx.base, tenantID: principal.tenantID)
            var measureID: UUID?
            if let code = filter.measure {
                guard let measure = measures.first(where: { $0.code == code }) else {
                    throw HTTPError(.badRequest, type: "invalid-query", title: "The query string is not valid",
                                    detail: "1 parameter did not pass validation.",
                                    errors: [FieldError(field: "measure", message: "is not a measure of this tenant (see /v1/measures)")])
                }
                measureID = measure.id
            }
            let (records, hasMore) = try await FeedbackListStore.page(
                filter, measureID: measureID, after: after?.seq, limit: limit, on: tx, includeFreeText: includeFreeText)
            tx.audit(format == .csv ? .export : .list, "feedback", rowsExported: records.count)
            return (records, measures, hasMore)
        }
        let next = hasMore ? records.last.map { Cursor.encode(Position(seq: $0.seq)) } : nil

        switch format {
        case .json:
            return Page(items: records.map(\.record), nextCursor: next).response(for: request)
        case .csv:
            var csv = CSVWriter(header: FeedbackCSV.header(measures: measures, includeFreeText: includeFreeText))
            for listed in records {
                csv.append(FeedbackCSV.row(listed.record, measures: measures, includeFreeText: includeFreeText))
            }
            return csv.response(filename: "feedback.csv", nextLink: next.map { Cursor.nextLink($0, for: request) })
        }
    }
}

/// The columns of a feedback export: every field of the record, one `score_<code>` column per
/// measure of the tenant (empty when the feedback did not score it), and `comment` only for a
/// key with `free_text:read`.
enum FeedbackCSV {
    static func header(measures: [Measure], includeFreeText: Bool) -> [String] {
        var columns = ["id", "source_system", "external_id", "channel", "respondent_role", "age_band", "service_area", "team",
                       "stage", "kind", "given_at", "subject_ref"]
        columns += measures.map { "score_\($0.code)" }
        if includeFreeText { columns.append("comment") }
        columns += ["anonymous", "consent_to_follow_up", "safeguarding_concern", "safeguarding_alert_id", "safeguarding_alert_status",
                    "gender", "ethnicity", "disability", "organisation", "version", "created_at", "updated_at"]
        return columns
    }

    static func row(_ record: FeedbackRecord, measures: [Measure], includeFreeText: Bool) -> [String?] {
        var cells: [String?] = [
            record.id.lowercased, record.sourceSystem, record.externalId, record.channel, record.respondentRole, record.ageBand,
            record.serviceArea, record.team, record.stage, record.kind, CSVWriter.instant(record.givenAt), record.subjectRef,
        ]
        var scores: [String: Int] = [:]
        for response in record.responses { scores[response.measure] = response.score }
        cells += measures.map { scores[$0.code].map(String.init) }
        if includeFreeText { cells.append(record.comment) }
        cells += [
            CSVWriter.bool(record.anonymous), CSVWriter.bool(record.consentToFollowUp), CSVWriter.bool(record.safeguardingConcern),
            record.safeguardingAlert?.id, record.safeguardingAlert?.status,
            record.equality?.gender, record.equality?.ethnicity, record.equality?.disability, record.organisation,
            String(record.version), CSVWriter.instant(record.createdAt), CSVWriter.instant(record.updatedAt),
        ]
        return cells
    }
}

/// The SQL of the list: one query for the page, one for all its responses.
enum FeedbackListStore {
    struct Listed {
        var seq: Int
        var record: FeedbackRecord
    }

    /// Up to `limit` records below `after` (newest first), and whether there are more.
    static func page(
        _ filter: FeedbackListRoutes.Filter, measureID: UUID?, after: Int?, limit: Int, on tx: TenantTransaction, includeFreeText: Bool
    ) async throws -> (records: [Listed], hasMore: Bool) {
        let tenant = tx.principal.tenantID
        // The bounds of `from` and `to` are whole days in UTC: `to` includes all of its day.
        let rows = try await tx.query("""
            \(unsafeRaw: FeedbackStore.recordSelect(includeFreeText: includeFreeText))
             WHERE f.tenant_id = \(tenant)
               AND (\(after)::bigint IS NULL OR f.seq < \(after)::bigint)
               AND (\(filter.from)::date IS NULL OR f.given_at >= (\(filter.from)::date)::timestamp AT TIME ZONE 'UTC')
               AND (\(filter.to)::date IS NULL OR f.given_at < (\(filter.to)::date + 1)::timestamp AT TIME ZONE 'UTC')
               AND (\(filter.serviceArea?.rawValue)::text IS NULL OR f.service_area = \(filter.serviceArea?.rawValue)::text)
               AND (\(filter.team)::text IS NULL OR f.team = \(filter.team)::text)
               AND (\(filter.channel?.rawValue)::text IS NULL OR f.channel = \(filter.channel?.rawValue)::text)
               AND (\(filter.stage?.rawValue)::text IS NULL OR f.stage = \(filter.stage?.rawValue)::text)
               AND (\(filter.kind?.rawValue)::text IS NULL OR f.kind = \(filter.kind?.rawValue)::text)
               AND (\(filter.respondentRole?.rawValue)::text IS NULL OR f.respondent_role = \(filter.respondentRole?.rawValue)::text)
               AND (\(filter.subjectRef)::text IS NULL OR f.subject_ref = \(filter.subjectRef)::text)
               AND (\(filter.safeguardingConcern)::boolean IS NULL OR f.safeguarding_concern = \(filter.safeguardingConcern)::boolean)
               AND (\(measureID)::uuid IS NULL OR \(measureID)::uuid = ANY(f.response_measures))
             ORDER BY f.seq DESC
             LIMIT \(limit + 1)
            """)
        let hasMore = rows.count > limit
        let pageRows = rows.prefix(limit)
        let ids = try pageRows.map { try $0.decode(UUID.self, column: "id") }

        // Every response of the page in one query: no query per record.
        let responses = try await FeedbackStore.responses(of: ids, on: tx)
        let records = try pageRows.map { row in
            let id = try row.decode(UUID.self, column: "id")
            return Listed(seq: try row.decode(Int.self, column: "seq"),
                          record: try FeedbackStore.record(from: row, responses: responses[id] ?? [], includeFreeText: includeFreeText))
        }
        return (records, hasMore)
    }
}

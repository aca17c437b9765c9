import Foundation
import HTTPServer
import Postgres

/// `/v1/complaints`: complaints under the statutory children's procedure or the corporate one
/// (DOMAIN.md §2), posted by complaints systems that retry and moved through the procedure by
/// the complaints team. A retry never makes a second complaint: (`source_system`,
/// `external_id`) is the natural key, as for feedback.
struct ComplaintRoutes {
    let access: AccessControl

    static let notFound = HTTPError(.notFound, detail: "There is no complaint with this id.")

    func add(to router: inout RouterBuilder) {
        router.post("/v1/complaints", access.secure(.complaintsWrite, resource: .complaint, Idempotency.wrap(Self.create)))
        router.get("/v1/complaints", access.secure(.complaintsRead, resource: .complaint, ComplaintList.endpoint.respond))
        router.get("/v1/complaints/{id}", access.secure(.complaintsRead, resource: .complaint) { request, context in
            let id = try Self.complaintID(request)
            var query = QueryReader(request.query, allowed: ["as_of"], paged: false)
            let asOf = query.date("as_of") ?? WorkingDayCalendar.localDay(of: context.now)
            try query.finish()
            let complaint = try await context.readTransaction { tx in try await ComplaintStore.read(id, on: tx, asOf: asOf) }
            guard let complaint else { throw Self.notFound }
            return IfNoneMatch.notModified(request, etag: complaint.etag) ?? Self.answer(complaint, status: .ok)
        })
        router.get("/v1/reports/complaints", access.secure(.reportsRead, resource: .complaintReport, ComplaintReport.handle))
        router.post("/v1/complaints/{id}/transitions", access.secure(.complaintsWrite, resource: .complaint, ComplaintTransitions.handle))
    }

    static func complaintID(_ request: Request) throws(HTTPError) -> UUID {
        guard let id = UUID(uuidString: request.parameter("id")) else { throw notFound }
        return id
    }

    private static func create(_ request: Request, _ context: AccessContext) async throws -> Response {
        let today = WorkingDayCalendar.localDay(of: context.now)
        let complaint = try NewComplaint.parse(request.body, today: today)
        let created = try await context.transaction { tx -> Complaint? in
            let organisationID = try await FeedbackRoutes.organisation(complaint.organisation, for: tx.principal, on: tx)
            try await ComplaintCategory.check(complaint.categories, on: tx)
            let procedure = try await ComplaintProcedures.procedure(complaint.procedure, on: tx, receivedOn: complaint.receivedOn)
            let calendar = try await ClosureDays.calendar(on: tx)
            guard let id = try await ComplaintStore.create(complaint, procedure: procedure, organisationID: organisationID,
                                                           calendar: calendar, on: tx) else { return nil }
            return try await ComplaintStore.find(id, on: tx, asOf: today, calendar: calendar)
        }
        if let created { return answer(created, status: .created) }

        // The natural key was taken: a retry (the same content: 200 with the complaint) or a conflict.
        let existing = try await NaturalKey.settle(context, .complaint, noun: "complaint") { tx -> NaturalKey.Holder<Complaint>? in
            guard let existing = try await ComplaintStore.existing(complaint, on: tx),
                  let found = try await ComplaintStore.find(existing.id, on: tx, asOf: today, calendar: try await ClosureDays.calendar(on: tx))
            else { return nil }
            return NaturalKey.Holder(found, id: found.id, name: "Complaint \(found.reference)", sameContent: existing.contentHash == complaint.contentHash)
        }
        return answer(existing, status: .ok)
    }

    static func answer(_ complaint: Complaint, status: HTTPStatus) -> Response {
        var response = Response.json(complaint, status: status)
        response.headers.add(name: "ETag", value: complaint.etag)
        response.headers.add(name: "Location", value: "/v1/complaints/\(complaint.id.lowercased)")
        return response
    }
}

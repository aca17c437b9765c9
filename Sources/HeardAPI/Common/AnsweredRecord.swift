import Foundation
import HTTPServer

/// A record answered on its own: with its `ETag` (its version) and `Location` (its path), and
/// read by one `GET` that is the same for every such record.
protocol AnsweredRecord: StoredRecord {
    var id: UUID { get }
    var version: Int { get }
    /// The record's path (`/v1/participants/<id>`).
    var location: String { get }
}

extension AnsweredRecord {
    var etag: String { ETag.of(version: version) }

    /// The record as JSON with its `ETag` and `Location`.
    func response(status: HTTPStatus) -> Response {
        var response = Response.json(self, status: status)
        response.headers.add(name: "ETag", value: etag)
        response.headers.add(name: "Location", value: location)
        return response
    }

    /// The `GET` of a record its path's `{id}` names alone, behind `access.secure(scope)`.
    static func readByID(_ access: AccessControl, _ scope: Scope, resource: AuditResource, notFound: HTTPError) -> Endpoint {
        access.secure(scope, resource: resource) { request, context in
            guard let id = UUID(uuidString: request.parameter("id")) else { throw notFound }
            return try await read(id, request, context, resource: resource, notFound: notFound)
        }
    }

    /// The `GET` of the record `id` (below `parent`, when it has one: of another parent it is
    /// `notFound`): the read and its audit row in one statement, one round trip (`Table.read`).
    static func read(_ id: UUID, below parent: ParentKey? = nil, _ request: Request, _ context: AccessContext,
                     resource: AuditResource, notFound: HTTPError) async throws -> Response {
        let includeFreeText = context.principal.has(.freeTextRead)
        let record = try await context.readTransaction { tx in
            try await table.read(id, below: parent, on: tx, includeFreeText: includeFreeText, audited: resource)
        }
        return try answer(record, request, notFound: notFound)
    }

    /// The record read, or `notFound`; 304 to a matching `If-None-Match`.
    static func answer(_ record: Self?, _ request: Request, notFound: HTTPError) throws -> Response {
        guard let record else { throw notFound }
        return IfNoneMatch.notModified(request, etag: record.etag) ?? record.response(status: .ok)
    }

    /// A `GET` of one record: `find` reads it in the caller's tenant (free text when the key may
    /// read it); audited as a read; `notFound` when absent (another tenant's included); 304 to
    /// a matching `If-None-Match`.
    static func read(_ request: Request, _ context: AccessContext, resource: AuditResource, notFound: HTTPError,
                     _ find: @Sendable (TenantTransaction, _ includeFreeText: Bool) async throws -> Self?) async throws -> Response {
        let includeFreeText = context.principal.has(.freeTextRead)
        let record = try await context.readTransaction { tx in
            let record = try await find(tx, includeFreeText)
            if let record { tx.audit(.read, resource, id: record.id.lowercased) }
            return record
        }
        return try answer(record, request, notFound: notFound)
    }
}

import Foundation
import HTTPServer
import Postgres

/// The `Idempotency-Key` request header for creates (IETF httpapi draft), scoped per API key and
/// route:
/// - the first request with a key runs, and its answer is kept for 8 days, then expires (the
///   key is new again), for every tenant alike: `expire` deletes what has expired;
/// - the same key again with the same body is answered with the kept status and body;
/// - the same key with a different body: 422;
/// - the same key while the first is still running: 409 (a request abandoned for over a minute,
///   say by a crash, is taken over);
/// - a first request that fails with a server error keeps nothing, so it can be retried.
enum Idempotency {
    static let header = "Idempotency-Key"
    static let abandonedAfterSeconds = 60
    /// How long an answer is kept; migration 0013's heard_expire_idempotency_keys() says the same.
    static let keptForDays = 8

    /// Deletes expired answers of every tenant; returns how many.
    @discardableResult
    static func expire(on database: PostgresPool) async throws -> Int {
        try await database.query("SELECT heard_expire_idempotency_keys() AS expired").first?.decode(Int.self, column: "expired") ?? 0
    }
    /// Headers kept and replayed with the answer.
    static let replayedHeaders = ["Content-Type", "Location", "ETag"]

    static func wrap(_ handler: @escaping SecuredHandler) -> SecuredHandler {
        { request, context in
            guard let key = request.headers[header] else { return try await handler(request, context) }
            let route = "\(request.method) \(request.route ?? request.path)"
            guard !key.isEmpty, key.utf8.count <= 255, key.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else {
                throw HTTPError(.invalidIdempotencyKey, detail: "Idempotency-Key must be 1-255 visible ASCII characters.")
            }
            let requestHash = SHA256.hexDigest(request.body)
            if let replay = try await claim(key, route: route, requestHash: requestHash, context: context) { return replay }
            let response: Response
            do {
                response = try await handler(request, context)
            } catch let error as HTTPError where error.status.code < 500 {
                try await complete(key, route: route, with: error.response, context: context)
                throw error
            } catch {
                try? await release(key, route: route, context: context)
                throw error
            }
            if response.status.code >= 500 {
                try? await release(key, route: route, context: context)
            } else {
                try await complete(key, route: route, with: response, context: context)
            }
            return response
        }
    }

    /// Claims the key for this request (nil: go ahead), or answers from what is kept.
    private static func claim(_ key: String, route: String, requestHash: String, context: AccessContext) async throws -> Response? {
        let principal = context.principal
        return try await context.transaction { tx -> Response? in
            // Taken over: a key whose first request was abandoned, or whose answer has expired
            // (it may not have been deleted yet).
            let claimed = try await tx.query("""
                INSERT INTO idempotency_keys (tenant_id, organisation_id, key_id, route, idempotency_key, request_hash)
                VALUES (\(principal.tenantID), \(principal.organisationID), \(principal.keyID), \(route), \(key), \(requestHash))
                ON CONFLICT (tenant_id, key_id, route, idempotency_key) DO UPDATE
                   SET created_at = now(), request_hash = excluded.request_hash, state = 'in_flight',
                       status = NULL, response_headers = NULL, response_body = NULL
                 WHERE (idempotency_keys.state = 'in_flight'
                        AND idempotency_keys.request_hash = excluded.request_hash
                        AND idempotency_keys.created_at < now() - make_interval(secs => \(abandonedAfterSeconds)))
                    OR idempotency_keys.created_at < now() - make_interval(days => \(keptForDays)::integer)
                RETURNING 1
                """)
            if !claimed.isEmpty { return nil }
            guard let row = try await tx.query("""
                SELECT request_hash, state, status, response_headers::text, response_body FROM idempotency_keys
                 WHERE tenant_id = \(principal.tenantID) AND key_id = \(principal.keyID) AND route = \(route) AND idempotency_key = \(key)
                """).first else { return nil }
            guard try row.decode(String.self, column: "request_hash") == requestHash else {
                throw HTTPError(.idempotencyKeyReused, detail: "This Idempotency-Key was used with a different request body.")
            }
            guard try row.decode(String.self, column: "state") == "completed" else {
                throw HTTPError(.idempotencyKeyInUse, detail: "A request with this Idempotency-Key is still being processed; retry shortly.",
                                headers: ["Retry-After": "1"])
            }
            var response = Response(status: HTTPStatus(code: try row.decode(Int.self, column: "status")),
                                    body: try row.decode([UInt8].self, column: "response_body"))
            let headers = try JSONSerialization.jsonObject(with: Data(try row.decode(String.self, column: "response_headers").utf8)) as? [String: String] ?? [:]
            for (name, value) in headers.sorted(by: { $0.key < $1.key }) { response.headers.add(name: name, value: value) }
            response.headers.add(name: "Idempotent-Replayed", value: "true")
            return response
        }
    }

    private static func complete(_ key: String, route: String, with response: Response, context: AccessContext) async throws {
        var kept: [String: String] = [:]
        for name in replayedHeaders { if let value = response.headers[name] { kept[name] = value } }
        let headers = String(decoding: try JSONSerialization.data(withJSONObject: kept, options: [.sortedKeys]), as: UTF8.self)
        let principal = context.principal
        try await context.transaction { tx in
            try await tx.execute("""
                UPDATE idempotency_keys SET state = 'completed', status = \(response.status.code), response_headers = \(headers)::jsonb,
                       response_body = \(response.body)
                 WHERE tenant_id = \(principal.tenantID) AND key_id = \(principal.keyID) AND route = \(route) AND idempotency_key = \(key)
                """)
        }
    }

    private static func release(_ key: String, route: String, context: AccessContext) async throws {
        let principal = context.principal
        try await context.transaction { tx in
            try await tx.execute("""
                DELETE FROM idempotency_keys
                 WHERE tenant_id = \(principal.tenantID) AND key_id = \(principal.keyID) AND route = \(route)
                   AND idempotency_key = \(key) AND state = 'in_flight'
                """)
        }
    }
}

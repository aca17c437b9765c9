import Foundation
import Postgres
import Synchronization

/// What each measure version a response was given against says: the measure's code, the
/// version's wording and the point from which a score agrees. Kept once read, for as long as the
/// process lives: a version never changes once made (a new wording or scale is the next
/// version, and a measure's code never changes), so nothing kept here can be stale, and no other
/// instance needs to tell this one anything.
///
/// So `GET /v1/feedback/{id}` reads the record's stored responses (measure, version, score) with
/// the record and its audit row, and answers their wording from here, instead of joining three
/// tables in a second statement on every read. A version not yet known costs one more round
/// trip (catalogue data, no record's), once.
///
/// Kept per tenant, and bounded: past `limit` versions in all, no more are kept (a read whose
/// versions are not known then asks PostgreSQL each time), so no tenant's catalogue can grow the
/// process without end.
final class MeasureVersions: Sendable {
    struct Key: Hashable, Sendable {
        let tenant: UUID
        let measure: UUID
        let version: Int
    }

    struct Facts: Sendable {
        let code: String
        let wording: String
        let agreeFrom: Int
    }

    static let limit = 50_000

    private let known = Mutex<[Key: Facts]>([:])

    /// The scored responses of `stored`, ordered by measure code, when every version is known
    /// (or, `droppingUnknown`, leaving out any that is not: a version missing from the database
    /// too, which the join this replaces left out alike); nil when one is not known.
    func responses(_ stored: FeedbackRecord.StoredResponses, tenant: UUID, droppingUnknown: Bool = false) -> [FeedbackRecord.ScoredResponse]? {
        let count = min(stored.measures.count, stored.versions.count, stored.scores.count)
        var responses: [FeedbackRecord.ScoredResponse] = []
        responses.reserveCapacity(count)
        let complete = known.withLock { known -> Bool in
            for index in 0..<count {
                guard let facts = known[Key(tenant: tenant, measure: stored.measures[index], version: stored.versions[index])] else {
                    if droppingUnknown { continue }
                    return false
                }
                let score = stored.scores[index]
                responses.append(FeedbackRecord.ScoredResponse(measure: facts.code, score: score, wording: facts.wording,
                                                               measureVersion: stored.versions[index], agrees: score >= facts.agreeFrom))
            }
            return true
        }
        guard complete else { return nil }
        return responses.sorted { $0.measure < $1.measure }
    }

    /// The versions of `stored` not known yet.
    func unknown(in stored: FeedbackRecord.StoredResponses, tenant: UUID) -> [(measure: UUID, version: Int)] {
        let pairs = zip(stored.measures, stored.versions).map { (measure: $0, version: $1) }
        return known.withLock { known in pairs.filter { known[Key(tenant: tenant, measure: $0.measure, version: $0.version)] == nil } }
    }

    /// The statement that reads `versions` of the tenant's measures; `learn` keeps its rows.
    static func query(_ versions: [(measure: UUID, version: Int)], tenant: UUID) -> PostgresQuery {
        """
        SELECT v.measure_id, v.version, m.code, v.wording, v.agree_from
          FROM unnest(\(versions.map(\.measure))::uuid[], \(versions.map(\.version))::int[]) AS wanted (measure_id, version)
          JOIN measure_versions v ON v.tenant_id = \(tenant) AND v.measure_id = wanted.measure_id AND v.version = wanted.version
          JOIN measures m ON m.tenant_id = v.tenant_id AND m.id = v.measure_id
        """
    }

    func learn(from rows: [PostgresRow], tenant: UUID) throws {
        let learned = try rows.map { row in
            (Key(tenant: tenant, measure: try row.decode(UUID.self, column: "measure_id"), version: try row.decode(Int.self, column: "version")),
             Facts(code: try row.decode(String.self, column: "code"), wording: try row.decode(String.self, column: "wording"),
                   agreeFrom: try row.decode(Int.self, column: "agree_from")))
        }
        known.withLock { known in
            for (key, facts) in learned where known.count < Self.limit { known[key] = facts }
        }
    }

    /// How many versions are kept (for tests).
    var count: Int { known.withLock { $0.count } }
}

import Foundation
import HTTPServer
import Postgres

/// A create whose natural key was already taken (`source_system` + `external_id`, a
/// participant's `ref`): council systems retry, so the same content again is a retry, answered
/// `200` with the record as stored and audited as a read; different content is a `409`
/// `natural-key-conflict` naming the record that holds the key (`existing_id`), and nothing
/// changes. An area says how to find the holder and whether the content is the same:
///
/// ```swift
/// let record = try await NaturalKey.settle(context, .participant, noun: "participant", key: "ref") { tx -> NaturalKey.Holder<ParticipantRecord>? in
///     guard let found = try await ParticipantStore.holder(of: participant.ref, on: tx) else { return nil }
///     return NaturalKey.Holder(found, id: found.id, sameContent: found.contentHash == participant.contentHash)
/// }
/// return record.response(status: .ok)
/// ```
enum NaturalKey {
    /// The record that holds the key, as the caller's key may read it.
    struct Holder<Record: Sendable>: Sendable {
        var record: Record
        var id: UUID
        /// How the record is named in the conflict's detail (a complaint's reference, say).
        var name: String?
        var sameContent: Bool

        init(_ record: Record, id: UUID, name: String? = nil, sameContent: Bool) {
            self.record = record
            self.id = id
            self.name = name
            self.sameContent = sameContent
        }
    }

    /// The retry's answer: the holder `find` reads (in a transaction of its own) when its
    /// content is the same; otherwise the 409. `noun` and `key` name the record and its key in
    /// the detail ("complaint", "source_system and external_id").
    static func settle<Record: Sendable>(_ context: AccessContext, _ resource: AuditResource, noun: String,
                                         key: String = "source_system and external_id",
                                         find: @escaping @Sendable (TenantTransaction) async throws -> Holder<Record>?) async throws -> Record {
        try await context.transaction { tx in
            // Not visible: held by a record this key may not read (another organisation's).
            guard let holder = try await find(tx) else {
                throw HTTPError(.naturalKeyConflict, detail: "Another \(noun) already has this \(key).")
            }
            guard holder.sameContent else {
                let name = holder.name ?? "\(noun.prefix(1).uppercased())\(noun.dropFirst()) \(holder.id.lowercased)"
                var conflict = HTTPError(.naturalKeyConflict, detail: "\(name) already has this \(key), with different content; it was not changed.")
                conflict.extensions["existing_id"] = .text(holder.id.lowercased)
                throw conflict
            }
            tx.audit(.read, resource, id: holder.id.lowercased)
            return holder.record
        }
    }
}

import Foundation
import HTTPServer
import HeardCore
import Postgres

/// One published item as the public feed shows it: the public fields of the round that last
/// published it, and nothing else (no subject ref, participant, source id, key or note).
struct PublicYouSaid: StoredRecord {
    struct Round: StoredRecord {
        var title = ""
        var publishedOn = CalendarDate(daysSince1970: 0)

        static let table = Table<Round>("you_said_publications p", [
            .column("title", "p.round_title", \.title), .column("published_on", "p.published_on", \.publishedOn),
        ])
    }

    var id = UUID.zero
    var said = ""
    var weDid: String?
    var theme = ""
    var serviceArea = ""
    var ownerTeam: String?
    var status = ""
    var progressPercent = 0
    var reasonNotPossible: String?
    var raisedOn = CalendarDate(daysSince1970: 0)
    var targetOn: CalendarDate?
    var round: Round?
    var publishedAt = Date(timeIntervalSince1970: 0)

    /// Only what a council may show anyone: `said`, `we_did` and the reason are the narrative
    /// the council chose to publish.
    static let table = Table<PublicYouSaid>("you_said_publications p", [
        .column("id", "p.item_id", \.id), .column("said", "p.said", \.said), .column("we_did", "p.we_did", \.weDid),
        .column("theme", "p.theme", \.theme), .column("service_area", "p.service_area", \.serviceArea),
        .column("owner_team", "p.owner_team", \.ownerTeam), .column("status", "p.status", \.status),
        .column("progress_percent", "p.progress_percent", \.progressPercent),
        .column("reason_not_possible", "p.reason_not_possible", \.reasonNotPossible),
        .column("raised_on", "p.raised_on", \.raisedOn), .column("target_on", "p.target_on", \.targetOn),
        .nested("round", \.round, prefix: "round_"), .column("published_at", "p.published_at", \.publishedAt),
    ])
}

/// `GET /v1/public/{tenant_slug}/you-said-we-did`: a council's published answers, for its
/// website or anyone's feed reader, with no key. Only the latest publication of each item, as
/// a round published it; newest rounds first, at most `maxItems`.
///
/// The tenant comes from the slug, not a key, and row-level security still holds: the slug is
/// looked up by `heard_public_tenant` (a SECURITY DEFINER function that answers only the
/// tenant's id and name), and the feed is read as the runtime role in a transaction set to
/// that tenant, like any key's, from `you_said_publications`, which holds only public fields.
/// Nothing is audited: nothing personal is read. Cacheable (`Cache-Control: public,
/// max-age=300`, `ETag`, 304), readable from any origin, rate limited per client address.
struct YouSaidPublicFeed {
    let access: AccessControl

    static let maxItems = 1000
    static let notFound = HTTPError(.notFound, detail: "There is no council with this name here.")

    func add(to router: inout RouterBuilder) {
        router.get("/v1/public/{tenant_slug}/you-said-we-did", access.open(Self.respond(database: access.database)))
    }

    struct Feed: Encodable, Sendable {
        var council: String
        var updatedAt: Date?
        var items: [PublicYouSaid]

        enum CodingKeys: String, CodingKey {
            case council, updatedAt = "updated_at", items
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(council, forKey: .council)
            try container.encode(updatedAt.map(JSON.iso8601), forKey: .updatedAt)
            try container.encode(items, forKey: .items)
        }
    }

    static func respond(database: PostgresPool) -> Handler {
        { request in
            let slug = request.parameter("tenant_slug")
            try QueryReader(request.query, allowed: [], paged: false).finish()
            guard Registry.validSlug(slug),
                  let tenant = try await database.query("SELECT tenant_id, name FROM heard_public_tenant(\(slug))").first else { throw notFound }
            let tenantID = try tenant.decode(UUID.self, column: "tenant_id")
            let name = try tenant.decode(String.self, column: "name")
            let table = PublicYouSaid.table
            let items = try await database.transaction(settings: [("heard.tenant_id", tenantID.lowercased), ("heard.organisation_id", "")]) { tx in
                try await tx.query("""
                    SELECT \(unsafeRaw: table.selectList(includeFreeText: true))
                      FROM (SELECT DISTINCT ON (l.item_id) l.* FROM you_said_publications l
                             WHERE l.tenant_id = \(tenantID) ORDER BY l.item_id, l.round_seq DESC) AS p
                     ORDER BY p.round_seq DESC, p.item_id
                     LIMIT \(maxItems)
                    """).map { try table.decode($0, includeFreeText: true) }
            }
            let feed = Feed(council: name, updatedAt: items.map(\.publishedAt).max(), items: items)
            let atom = wantsAtom(request.headers["Accept"])
            let body = atom ? Array(AtomFeed.render(feed, slug: slug).utf8) : JSON.encode(feed)
            let etag = "\"\(SHA256.hexDigest(body).prefix(32))\""
            let headers: HTTPHeaders = ["ETag": etag, "Cache-Control": "public, max-age=300", "Vary": "Accept"]
            if var notModified = IfNoneMatch.notModified(request, etag: etag) {
                notModified.headers = headers
                return notModified
            }
            var response = Response(status: .ok, headers: headers, body: body)
            response.headers.add(name: "Content-Type", value: atom ? "application/atom+xml; charset=utf-8" : "application/json")
            return response
        }
    }

    /// Whether `Accept` asks for Atom (and not JSON first).
    static func wantsAtom(_ accept: String?) -> Bool {
        guard let accept else { return false }
        let types = accept.split(separator: ",").map { $0.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? "" }
        guard let atom = types.firstIndex(of: "application/atom+xml") else { return false }
        return types.firstIndex(of: "application/json").map { atom < $0 } ?? true
    }
}

/// The feed as Atom (RFC 4287): one entry per item, its text escaped for XML.
enum AtomFeed {
    static func render(_ feed: YouSaidPublicFeed.Feed, slug: String) -> String {
        var xml = """
            <?xml version="1.0" encoding="utf-8"?>
            <feed xmlns="http://www.w3.org/2005/Atom">
            <title>\(text("You said, we did: \(feed.council)"))</title>
            <id>urn:heard:you-said-we-did:\(text(slug))</id>
            <updated>\(JSON.iso8601(feed.updatedAt ?? Date(timeIntervalSince1970: 0)))</updated>
            <author><name>\(text(feed.council))</name></author>
            <link rel="self" href="/v1/public/\(text(slug))/you-said-we-did"/>

            """
        for item in feed.items {
            var content = "You said: \(item.said)"
            if let weDid = item.weDid { content += "\nWe did: \(weDid)" }
            content += "\nStatus: \(item.status.replacingOccurrences(of: "_", with: " ")) (\(item.progressPercent)%)"
            if let reason = item.reasonNotPossible { content += "\nWhy not: \(reason)" }
            if let team = item.ownerTeam { content += "\nOwner: \(team)" }
            if let target = item.targetOn { content += "\nTarget: \(target)" }
            if let round = item.round { content += "\nPublished in: \(round.title) (\(round.publishedOn))" }
            xml += """
                <entry>
                <id>urn:uuid:\(item.id.lowercased)</id>
                <title>\(text("\(item.theme): \(item.status.replacingOccurrences(of: "_", with: " "))"))</title>
                <updated>\(JSON.iso8601(item.publishedAt))</updated>
                <category term="\(text(item.serviceArea))"/>
                <content type="text">\(text(content))</content>
                </entry>

                """
        }
        return xml + "</feed>\n"
    }

    /// `value` as XML character data or an attribute value: markup characters escaped, and
    /// characters XML 1.0 cannot hold (control characters, unpaired surrogates' replacements)
    /// replaced by U+FFFD, so the document is always well-formed.
    static func text(_ value: String) -> String {
        var out = ""
        out.reserveCapacity(value.utf8.count)
        for scalar in value.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
            default:
                let v = scalar.value
                let allowed = (0x20...0xD7FF).contains(v) || (0xE000...0xFFFD).contains(v) || (0x10000...0x10FFFF).contains(v)
                out.unicodeScalars.append(allowed ? scalar : "\u{FFFD}")
            }
        }
        return out
    }
}

import Foundation
import HeardAPI
import HeardTesting
import Postgres
import XCTest

/// `GET /v1/feedback`: filters, cursor paging under concurrent inserts, limits, 400s, CSV
/// (RFC 4180, formula defence, free-text scope), partner isolation and the audit trail.
final class FeedbackListTests: XCTestCase {
    var harness: AccessHarness!
    var council: Registry.Tenant!
    /// feedback:write, feedback:read and free_text:read.
    var writer: String!

    override func setUp() async throws {
        // Paging one row at a time while three writers insert is far above the default rate limit.
        harness = try await AccessHarness.start(access: .init(ratePerSecond: 10_000, burst: 10_000))
        council = try await harness.tenant("dudley")
        writer = try await harness.key(council, scopes: [.feedbackWrite, .feedbackRead, .freeTextRead])
    }

    override func tearDown() async throws {
        await harness.stop()
    }

    // MARK: Helpers

    /// A JSON string literal.
    static func json(_ text: String) -> String {
        String(decoding: try! JSONEncoder().encode(text), as: UTF8.self)
    }

    @discardableResult
    func create(_ externalID: String, key: String? = nil, _ overrides: [String: String] = [:], removing: [String] = []) throws -> String {
        let response = try harness.send("POST", "/v1/feedback", key: key ?? writer,
                                        body: FeedbackSamples.body(externalID: externalID, overrides: overrides, removing: removing))
        XCTAssertEqual(response.status, 201, response.text)
        return try XCTUnwrap(response.json["id"] as? String, response.text)
    }

    func ids(_ query: String, key: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> Set<String> {
        let response = try harness.send("GET", "/v1/feedback\(query)", key: key ?? writer)
        XCTAssertEqual(response.status, 200, "\(query): \(response.text)", file: file, line: line)
        XCTAssertTrue(response.json["next_cursor"] is NSNull, "\(query): one page", file: file, line: line)
        return Set(response.items.compactMap { $0["id"] as? String })
    }

    /// Every item of every page, following `next_cursor` (and checking `Link` agrees with it).
    func walk(_ query: String, key: String? = nil) throws -> [[String: Any]] {
        var items: [[String: Any]] = []
        var target = "/v1/feedback\(query)"
        while true {
            let page = try harness.send("GET", target, key: key ?? writer)
            XCTAssertEqual(page.status, 200, page.text)
            guard page.status == 200 else { return items }
            items += page.items
            guard let next = page.json["next_cursor"] as? String else {
                XCTAssertNil(page.header("Link"), "no Link on the last page")
                return items
            }
            let link = try XCTUnwrap(page.header("Link"))
            XCTAssertTrue(link.hasSuffix("cursor=\(next)>; rel=\"next\""), link)
            target = String(link.dropFirst().prefix { $0 != ">" })
        }
    }

    func assertBadRequest(_ query: String, naming field: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let response = try harness.send("GET", "/v1/feedback\(query)", key: writer)
        XCTAssertEqual(response.status, 400, "\(query): \(response.text)", file: file, line: line)
        XCTAssertEqual(response.header("Content-Type"), "application/problem+json", file: file, line: line)
        let fields = (response.json["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String }
        XCTAssertEqual(fields, [field], "\(query): \(response.text)", file: file, line: line)
    }

    func auditRows(_ requestID: String) async throws -> [(action: String, resourceType: String, rowsExported: Int?)] {
        let pool = PostgresPool(configuration: harness.database.configuration, size: 1)
        defer { pool.shutdown() }
        return try await pool.query("""
            SELECT action, resource_type, rows_exported FROM audit_events WHERE request_id = \(requestID) ORDER BY id
            """).map {
            (try $0.decode(String.self, column: "action"), try $0.decode(String.self, column: "resource_type"),
             try $0.decode(Int?.self, column: "rows_exported"))
        }
    }

    // MARK: Filters

    func testEachFilterNarrowsTheList() throws {
        let a = try create("a")  // the sample: children_looked_after, north, cic_review, review, compliment, young_person, 2026-11-20T10:00Z
        let b = try create("b", [
            "service_area": #""early_help""#, "team": #""south""#, "channel": #""survey""#, "stage": #""assessment""#,
            "kind": #""concern""#, "respondent_role": #""parent_carer""#, "given_at": #""2026-11-18T23:30:00Z""#,
            "subject_ref": #""P-9""#, "safeguarding_concern": "true", "responses": #"[{"measure":"involved_in_decisions","score":2}]"#,
        ])
        let c = try create("c", ["given_at": #""2026-11-19T00:00:00Z""#, "responses": "[]", "kind": #""suggestion""#],
                           removing: ["team", "subject_ref"])
        let d = try create("d", ["given_at": #""2026-11-19T23:59:59Z""#, "channel": #""advocacy""#, "stage": #""closure""#,
                                 "respondent_role": #""child""#, "responses": #"[{"measure":"worker_knows_me","score":1}]"#])

        XCTAssertEqual(try ids(""), [a, b, c, d])
        XCTAssertEqual(try ids("?from=2026-11-19"), [a, c, d])
        XCTAssertEqual(try ids("?to=2026-11-19"), [b, c, d], "to includes the whole of its day")
        XCTAssertEqual(try ids("?from=2026-11-19&to=2026-11-19"), [c, d])
        XCTAssertEqual(try ids("?to=2026-11-18"), [b], "23:30 on the 18th is within to=2026-11-18")
        XCTAssertEqual(try ids("?from=2026-11-21"), [])
        XCTAssertEqual(try ids("?service_area=early_help"), [b])
        XCTAssertEqual(try ids("?service_area=children_looked_after"), [a, c, d])
        XCTAssertEqual(try ids("?team=north"), [a, d])
        XCTAssertEqual(try ids("?team=south"), [b])
        XCTAssertEqual(try ids("?channel=survey"), [b])
        XCTAssertEqual(try ids("?channel=advocacy"), [d])
        XCTAssertEqual(try ids("?stage=review"), [a, c])
        XCTAssertEqual(try ids("?stage=closure"), [d])
        XCTAssertEqual(try ids("?kind=compliment"), [a, d])
        XCTAssertEqual(try ids("?kind=suggestion"), [c])
        XCTAssertEqual(try ids("?respondent_role=parent_carer"), [b])
        XCTAssertEqual(try ids("?respondent_role=young_person"), [a, c])
        XCTAssertEqual(try ids("?measure=listened_to"), [a])
        XCTAssertEqual(try ids("?measure=worker_knows_me"), [a, d])
        XCTAssertEqual(try ids("?measure=involved_in_decisions"), [b])
        XCTAssertEqual(try ids("?measure=service_meets_needs"), [])
        XCTAssertEqual(try ids("?subject_ref=P-9"), [b])
        XCTAssertEqual(try ids("?subject_ref=P-1234"), [a, d])
        XCTAssertEqual(try ids("?safeguarding_concern=true"), [b])
        XCTAssertEqual(try ids("?safeguarding_concern=false"), [a, c, d])
        XCTAssertEqual(try ids("?team=north&kind=compliment&stage=closure&measure=worker_knows_me&from=2026-11-19"), [d], "filters combine")
        XCTAssertEqual(try ids("?team=north&channel=survey"), [])
    }

    func testItemsAreTheRecordAsReadOneByOneNewestFirst() throws {
        let first = try create("first", ["safeguarding_concern": "true", "kind": #""concern""#])
        let second = try create("second", ["equality": #"{"gender":"female","ethnicity":"white_british"}"#])
        let list = try harness.send("GET", "/v1/feedback", key: writer)
        XCTAssertEqual(list.status, 200)
        XCTAssertEqual(list.header("Content-Type"), "application/json")
        XCTAssertEqual(list.items.compactMap { $0["id"] as? String }, [second, first], "newest recorded first")
        for item in list.items {
            let id = try XCTUnwrap(item["id"] as? String)
            let one = try harness.send("GET", "/v1/feedback/\(id)", key: writer)
            XCTAssertEqual(NSDictionary(dictionary: item), NSDictionary(dictionary: one.json), "the list's item is GET /v1/feedback/{id}'s body")
        }
        let responses = try XCTUnwrap(list.items.first?["responses"] as? [[String: Any]])
        XCTAssertEqual(responses.compactMap { $0["measure"] as? String }, ["listened_to", "worker_knows_me"])
        XCTAssertEqual(list.items.last?["comment"] as? String, "My worker listens to me")
    }

    // MARK: Paging

    func testPagingNeitherSkipsNorRepeatsWhileFeedbackIsInserted() throws {
        var before: Set<String> = []
        for index in 0..<30 { before.insert(try create("before-\(index)")) }

        // Three writers insert at once (so commits can land out of `seq` order) while we page.
        let inserted = LockedList()
        let group = DispatchGroup()
        let harness = self.harness!, writer = self.writer!
        for thread in 0..<3 {
            DispatchQueue.global().async(group: group) {
                for index in 0..<20 {
                    let response = try? harness.send("POST", "/v1/feedback", key: writer,
                                                     body: FeedbackSamples.body(externalID: "during-\(thread)-\(index)"))
                    if response?.status == 201, let id = response?.json["id"] as? String { inserted.append(id) }
                }
            }
        }
        let seen = try walk("?limit=3").compactMap { $0["id"] as? String }
        group.wait()

        XCTAssertEqual(seen.count, Set(seen).count, "no row twice: \(seen.count) rows, \(Set(seen).count) distinct")
        XCTAssertTrue(before.isSubset(of: Set(seen)), "every row there when paging began is listed; missing \(before.subtracting(seen).count)")
        XCTAssertTrue(Set(seen).isSubset(of: before.union(inserted.values)))
        XCTAssertEqual(inserted.values.count, 60)

        // Quiet again: a walk sees each of the 90 exactly once, in pages of any size.
        for limit in [1, 7, 500] {
            let all = try walk("?limit=\(limit)").compactMap { $0["id"] as? String }
            XCTAssertEqual(all.count, 90, "limit \(limit)")
            XCTAssertTrue(Set(all) == before.union(inserted.values), "limit \(limit): \(Set(all).symmetricDifference(before.union(inserted.values)).count) differ")
        }
    }

    /// The case that makes ascending `seq` paging skip rows: a row whose insert began first
    /// (lower `seq`) commits after a later one has been listed. Newest first, it is still ahead.
    func testARowCommittedAfterALaterOneIsNotSkipped() async throws {
        let first = try create("first")
        var later = "", cursor: String?
        try await harness.ownerPool.transaction(settings: [("heard.tenant_id", council.id.lowercased)]) { tx in
            try await tx.execute("""
                INSERT INTO feedback (tenant_id, source_system, external_id, channel, respondent_role, age_band, service_area,
                                      stage, kind, given_at, anonymous, consent_to_follow_up, safeguarding_concern, content_hash)
                VALUES (\(council.id), 'mosaic', 'slow', 'survey', 'child', '5_to_7', 'early_help', 'plan', 'general',
                        '2026-11-01T09:00:00Z', false, false, false, 'x')
                """)
            later = try create("later")  // a higher seq, committed at once
            let page = try harness.send("GET", "/v1/feedback?limit=1", key: writer)
            XCTAssertEqual(page.items.compactMap { $0["id"] as? String }, [later])
            cursor = page.json["next_cursor"] as? String
        }
        let rest = try walk("?limit=1&cursor=\(try XCTUnwrap(cursor))")
        XCTAssertEqual(rest.compactMap { $0["external_id"] as? String }, ["slow", "first"], "the slow row is not skipped")
        XCTAssertEqual(rest.last?["id"] as? String, first)
    }

    func testLimitDefaultsTo50AndIsBounded() throws {
        for index in 0..<55 { try create("row-\(index)") }
        let first = try harness.send("GET", "/v1/feedback", key: writer)
        XCTAssertEqual(first.items.count, 50, "the default limit")
        let next = try XCTUnwrap(first.json["next_cursor"] as? String)
        XCTAssertEqual(first.header("Link"), "</v1/feedback?cursor=\(next)>; rel=\"next\"")
        let second = try harness.send("GET", "/v1/feedback?cursor=\(next)", key: writer)
        XCTAssertEqual(second.items.count, 5)
        XCTAssertTrue(second.json["next_cursor"] is NSNull)
        XCTAssertNil(second.header("Link"))
        XCTAssertEqual(try harness.send("GET", "/v1/feedback?limit=1", key: writer).items.count, 1)
        XCTAssertEqual(try harness.send("GET", "/v1/feedback?limit=500", key: writer).items.count, 55)
        XCTAssertTrue(try harness.send("GET", "/v1/feedback?limit=55", key: writer).json["next_cursor"] is NSNull,
                      "no next page when the page ends exactly at the last row")
        for bad in ["0", "501", "-1", "ten", "", "1.5"] {
            try assertBadRequest("?limit=\(bad)", naming: "limit")
        }
    }

    // MARK: Bad parameters

    func testBadParametersAre400NamingThem() throws {
        let cases: [(String, String)] = [
            ("service_area=police", "service_area"), ("channel=fax", "channel"), ("stage=done", "stage"), ("kind=complaint", "kind"),
            ("respondent_role=cat", "respondent_role"), ("from=2026-13-01", "from"), ("from=yesterday", "from"),
            ("to=2026-11-20T00:00:00Z", "to"), ("safeguarding_concern=yes", "safeguarding_concern"), ("safeguarding_concern=", "safeguarding_concern"),
            ("format=xml", "format"), ("measure=no_such_measure", "measure"), ("cursor=not-a-cursor", "cursor"),
            ("colour=red", "colour"), ("team=a&team=b", "team"), ("from=2026-11-20&to=2026-11-19", "to"),
            ("team=\(String(repeating: "t", count: 101))", "team"), ("subject_ref=", "subject_ref"),
        ]
        for (query, field) in cases {
            try assertBadRequest("?\(query)", naming: field)
        }
        let several = try harness.send("GET", "/v1/feedback?kind=x&stage=y&limit=0", key: writer)
        XCTAssertEqual(several.status, 400)
        XCTAssertEqual(Set((several.json["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String }), ["kind", "stage", "limit"])
        XCTAssertEqual(try harness.send("GET", "/v1/feedback?tenant_id=\(UUID().lowercased)", key: writer).status, 400)
    }

    func testScopes() async throws {
        XCTAssertEqual(try harness.send("GET", "/v1/feedback", key: nil).status, 401)
        let writeOnly = try await harness.key(council, scopes: [.feedbackWrite])
        XCTAssertEqual(try harness.send("GET", "/v1/feedback", key: writeOnly).status, 403)
        let reportsOnly = try await harness.key(council, scopes: [.reportsRead, .freeTextRead])
        XCTAssertEqual(try harness.send("GET", "/v1/feedback?format=csv", key: reportsOnly).status, 403)
    }

    // MARK: CSV

    func testCSVRoundTripsAwkwardTextAndDefusesFormulas() throws {
        let comments = [
            "plain": "Good, mostly",
            "quotes": #"She said "I'll be back", and she was"#,
            "newlines": "line one\nline two\r\nline three\rend",
            "welsh": "Mae fy ngweithiwr yn gwrando arna i — diolch! ŵ ŷ â",
            "emoji": "👍🏽 great 🎉, really",
            "formula": "=HYPERLINK(\"http://evil.example\",\"click\")",
            "plus": "+44 7700 900000",
            "minus": "-1 for the waiting room",
            "at": "@SUM(A1:A9)",
            "tab": "\tindented",
            "cr": "\rstarts with CR",
        ]
        var ids: [String: String] = [:]
        for (name, comment) in comments {
            ids[name] = try create("csv-\(name)", ["comment": Self.json(comment)])
        }
        let formulaTeam = try create("=1+2", ["team": Self.json("@team"), "comment": Self.json("x"), "responses": "[]"])

        let viaAccept = try harness.send("GET", "/v1/feedback", key: writer, headers: ["Accept": "text/csv"])
        let viaFormat = try harness.send("GET", "/v1/feedback?format=csv", key: writer)
        for response in [viaAccept, viaFormat] {
            XCTAssertEqual(response.status, 200, response.text)
            XCTAssertEqual(response.header("Content-Type"), "text/csv; charset=utf-8")
            XCTAssertEqual(response.header("Content-Disposition"), "attachment; filename=\"feedback.csv\"")
        }
        XCTAssertEqual(viaAccept.body, viaFormat.body)
        XCTAssertTrue(viaAccept.text.hasSuffix("\r\n"))
        XCTAssertEqual(String(validating: viaAccept.body, as: UTF8.self), viaAccept.text, "UTF-8")

        let table = try XCTUnwrap(CSVParser.parse(viaAccept.text))
        let header = try XCTUnwrap(table.first)
        XCTAssertEqual(header, [
            "id", "source_system", "external_id", "channel", "respondent_role", "age_band", "service_area", "team", "stage", "kind",
            "given_at", "subject_ref", "score_involved_in_decisions", "score_listened_to", "score_listened_to_about_services",
            "score_professionals_keep_promises", "score_service_meets_needs", "score_worker_knows_me", "comment", "anonymous",
            "consent_to_follow_up", "safeguarding_concern", "safeguarding_alert_id", "safeguarding_alert_status", "gender", "ethnicity",
            "disability", "organisation", "complaint_id", "version", "created_at", "updated_at",
        ])
        let rows = table.dropFirst().map { Dictionary(uniqueKeysWithValues: zip(header, $0)) }
        XCTAssertEqual(rows.count, comments.count + 1)
        XCTAssertTrue(table.allSatisfy { $0.count == header.count }, "every row has every column")

        let json = try harness.send("GET", "/v1/feedback", key: writer).items
        for (name, comment) in comments {
            let row = try XCTUnwrap(rows.first { $0["id"] == ids[name] }, name)
            let expected = ["formula", "plus", "minus", "at", "tab", "cr"].contains(name) ? "'" + comment : comment
            XCTAssertEqual(row["comment"], expected, name)
            let item = try XCTUnwrap(json.first { $0["id"] as? String == ids[name] })
            XCTAssertEqual(item["comment"] as? String, comment, "JSON is not defused: \(name)")
            XCTAssertEqual(row["score_listened_to"], "5")
            XCTAssertEqual(row["score_worker_knows_me"], "3")
            XCTAssertEqual(row["score_service_meets_needs"], "", "not scored: empty")
            XCTAssertEqual(row["given_at"], "2026-11-20T10:00:00Z")
            XCTAssertEqual(row["created_at"], item["created_at"] as? String)
            XCTAssertEqual(row["team"], "north")
            XCTAssertEqual(row["safeguarding_concern"], "false")
            XCTAssertEqual(row["anonymous"], "false")
            XCTAssertEqual(row["version"], "1")
            XCTAssertEqual(row["gender"], "")
        }
        let defused = try XCTUnwrap(rows.first { $0["id"] == formulaTeam })
        XCTAssertEqual(defused["external_id"], "'=1+2")
        XCTAssertEqual(defused["team"], "'@team")
        XCTAssertEqual(defused["score_listened_to"], "")
        // The raw bytes: quoted where needed, quotes doubled.
        XCTAssertTrue(viaAccept.text.contains(#","She said ""I'll be back"", and she was","#))
        XCTAssertTrue(viaAccept.text.contains("\"line one\nline two\r\nline three\rend\""))
        XCTAssertTrue(viaAccept.text.contains(",\"'\rstarts with CR\","))
        XCTAssertTrue(viaAccept.text.contains(",'\tindented,"))
    }

    func testCSVPagesWithTheLinkHeaderAndHasOneScoreColumnPerMeasure() throws {
        var created: Set<String> = []
        for index in 0..<5 { created.insert(try create("p-\(index)", ["safeguarding_concern": "true", "kind": #""concern""#])) }
        var target = "/v1/feedback?format=csv&limit=2&kind=concern"
        var seen: [String] = []
        var pages = 0
        while true {
            let page = try harness.send("GET", target, key: writer)
            XCTAssertEqual(page.status, 200, page.text)
            pages += 1
            let table = try XCTUnwrap(CSVParser.parse(page.text))
            XCTAssertEqual(table.first?.first, "id", "every page has the header")
            XCTAssertEqual(table.first?.filter { $0.hasPrefix("score_") }.count, 6, "one column per measure of the tenant")
            let alertColumn = try XCTUnwrap(table.first?.firstIndex(of: "safeguarding_alert_status"))
            XCTAssertTrue(table.dropFirst().allSatisfy { $0[alertColumn] == "open" })
            seen += table.dropFirst().map { $0[0] }
            guard let link = page.header("Link") else { break }
            XCTAssertTrue(link.contains("format=csv") && link.contains("limit=2") && link.contains("kind=concern"), link)
            target = String(link.dropFirst().prefix { $0 != ">" })
        }
        XCTAssertEqual(pages, 3)
        XCTAssertEqual(seen.count, 5)
        XCTAssertEqual(Set(seen), created)

        let empty = try harness.send("GET", "/v1/feedback?format=csv&kind=general", key: writer)
        XCTAssertEqual(empty.status, 200)
        XCTAssertEqual(CSVParser.parse(empty.text)?.count, 1, "just the header")
    }

    func testAcceptNegotiation() throws {
        try create("n")
        let cases: [(String, String)] = [
            ("text/csv", "text/csv; charset=utf-8"), ("text/csv;q=0.9, application/json;q=0.5", "text/csv; charset=utf-8"),
            ("application/json, text/csv;q=0.5", "application/json"), ("*/*", "application/json"),
            ("application/json", "application/json"), ("text/csv;q=0", "application/json"),
        ]
        for (accept, contentType) in cases {
            XCTAssertEqual(try harness.send("GET", "/v1/feedback", key: writer, headers: ["Accept": accept]).header("Content-Type"),
                           contentType, accept)
        }
        XCTAssertEqual(try harness.send("GET", "/v1/feedback?format=json", key: writer, headers: ["Accept": "text/csv"]).header("Content-Type"),
                       "application/json", "format wins over Accept")
    }

    // MARK: Free text

    func testWithoutFreeTextThereIsNoCommentFieldOrColumn() async throws {
        try create("secret", ["comment": Self.json("a private, identifying remark")])
        let reader = try await harness.key(council, scopes: [.feedbackRead])
        let json = try harness.send("GET", "/v1/feedback", key: reader)
        XCTAssertEqual(json.status, 200)
        XCTAssertEqual(json.items.count, 1)
        XCTAssertFalse(json.items[0].keys.contains("comment"), "absent, not empty")
        XCTAssertFalse(json.text.contains("private"))
        let csv = try harness.send("GET", "/v1/feedback?format=csv", key: reader)
        XCTAssertEqual(csv.status, 200)
        let table = try XCTUnwrap(CSVParser.parse(csv.text))
        XCTAssertFalse(table[0].contains("comment"))
        XCTAssertEqual(table[0].count, table[1].count)
        XCTAssertFalse(csv.text.contains("private"))
        XCTAssertTrue(CSVParser.parse(try harness.send("GET", "/v1/feedback?format=csv", key: writer).text)?[0].contains("comment") ?? false)
    }

    // MARK: Isolation and audit

    func testAPartnerKeyListsOnlyItsOrganisationsFeedback() async throws {
        let advocacy = try await harness.organisation("advocacy", in: council)
        let provider = try await harness.organisation("provider", in: council)
        let advocacyKey = try await harness.key(council, scopes: [.feedbackWrite, .feedbackRead], organisation: advocacy)
        let providerKey = try await harness.key(council, scopes: [.feedbackWrite, .feedbackRead], organisation: provider)
        let other = try await harness.tenant("walsall")
        let otherKey = try await harness.key(other, scopes: [.feedbackWrite, .feedbackRead, .freeTextRead])

        let ours = [try create("adv-1", key: advocacyKey), try create("adv-2", key: advocacyKey)]
        let theirs = try create("prov-1", key: providerKey)
        let councils = try create("council-1")
        let elsewhere = try create("walsall-1", key: otherKey)

        XCTAssertEqual(Set(try walk("?limit=1", key: advocacyKey).compactMap { $0["id"] as? String }), Set(ours))
        XCTAssertEqual(Set(try walk("", key: providerKey).compactMap { $0["id"] as? String }), [theirs])
        XCTAssertEqual(Set(try walk("", key: writer).compactMap { $0["id"] as? String }), Set(ours + [theirs, councils]),
                       "the council sees its partners' feedback")
        XCTAssertEqual(Set(try walk("", key: otherKey).compactMap { $0["id"] as? String }), [elsewhere])
        let csv = try harness.send("GET", "/v1/feedback", key: advocacyKey, headers: ["Accept": "text/csv"])
        let exported = try XCTUnwrap(CSVParser.parse(csv.text)).dropFirst().map { $0[0] }
        XCTAssertEqual(Set(exported), Set(ours))
        let organisationColumn = try XCTUnwrap(CSVParser.parse(csv.text)?.first?.firstIndex(of: "organisation"))
        XCTAssertTrue(try XCTUnwrap(CSVParser.parse(csv.text)).dropFirst().allSatisfy { $0[organisationColumn] == "advocacy" })
    }

    func testEveryListAndExportIsAuditedWithTheRowsReturned() async throws {
        for index in 0..<3 { try create("audit-\(index)") }
        let cases: [(query: String, headers: [String: String], action: String, rows: Int)] = [
            ("", [:], "list", 3), ("?limit=2", [:], "list", 2), ("?kind=concern", [:], "list", 0),
            ("?format=csv", [:], "export", 3), ("", ["Accept": "text/csv"], "export", 3), ("?format=csv&limit=1", [:], "export", 1),
        ]
        for (index, testCase) in cases.enumerated() {
            let requestID = "list-audit-\(index)"
            let response = try harness.send("GET", "/v1/feedback\(testCase.query)", key: writer,
                                            headers: testCase.headers.merging(["X-Request-Id": requestID]) { $1 })
            XCTAssertEqual(response.status, 200)
            let rows = try await auditRows(requestID)
            XCTAssertEqual(rows.count, 1, "one audit row per request: \(testCase)")
            XCTAssertEqual(rows.first?.action, testCase.action)
            XCTAssertEqual(rows.first?.resourceType, "feedback")
            XCTAssertEqual(rows.first?.rowsExported, testCase.rows, "\(testCase)")
        }
        _ = try harness.send("GET", "/v1/feedback?kind=nope", key: writer, headers: ["X-Request-Id": "list-audit-bad"])
        let refused = try await auditRows("list-audit-bad")
        XCTAssertTrue(refused.isEmpty, "a 400 lists nothing and records no export")
    }
}

/// Ids gathered from several threads.
final class LockedList: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []

    func append(_ item: String) { lock.withLock { items.append(item) } }
    var values: [String] { lock.withLock { items } }
}

/// A strict RFC 4180 reader for the tests: CRLF between records, quoted fields may hold commas,
/// quotes (doubled), CR and LF; nil for anything malformed (a bare quote in an unquoted field, a
/// bare CR or LF between records, text after a closing quote, an unterminated quote).
enum CSVParser {
    static func parse(_ text: String) -> [[String]]? {
        let scalars = Array(text.unicodeScalars)
        var records: [[String]] = []
        var record: [String] = []
        var field = String.UnicodeScalarView()
        var index = 0
        var quoted = false
        var fieldStart = true
        func endField() {
            record.append(String(field))
            field = String.UnicodeScalarView()
            fieldStart = true
            quoted = false
        }
        while index < scalars.count {
            let scalar = scalars[index]
            if quoted {
                if scalar == "\"" {
                    if index + 1 < scalars.count, scalars[index + 1] == "\"" {
                        field.append("\"")
                        index += 2
                        continue
                    }
                    // The closing quote: a comma or CRLF must follow.
                    index += 1
                    if index == scalars.count { return nil }
                    if scalars[index] == "," { endField(); index += 1; continue }
                    if scalars[index] == "\r", index + 1 < scalars.count, scalars[index + 1] == "\n" {
                        endField(); records.append(record); record = []; index += 2; continue
                    }
                    return nil
                }
                field.append(scalar)
                index += 1
                continue
            }
            switch scalar {
            case "\"":
                guard fieldStart else { return nil }
                quoted = true
                fieldStart = false
                index += 1
            case ",":
                endField()
                index += 1
            case "\r":
                guard index + 1 < scalars.count, scalars[index + 1] == "\n" else { return nil }
                endField()
                records.append(record)
                record = []
                index += 2
            case "\n":
                return nil
            default:
                field.append(scalar)
                fieldStart = false
                index += 1
            }
        }
        // Every record ends in CRLF, so nothing is left over.
        guard record.isEmpty, field.isEmpty, !quoted else { return nil }
        return records
    }
}

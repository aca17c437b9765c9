import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import HeardAPI
import HeardTesting
import XCTest

/// `POST /v1/you-said/publish` and the keyless public feed `GET /v1/public/{slug}/you-said-we-did`.
final class YouSaidPublicFeedTests: YouSaidTestCase {
    let feed = "/v1/public/redcar/you-said-we-did"

    func publish(_ items: [String], title: String = "Autumn round", on day: String = "2026-11-13") throws -> RawResponse {
        try harness.send("POST", "/v1/you-said/publish", key: writer,
                         body: #"{"title":"\#(title)","published_on":"\#(day)","items":[\#(items.map { "\"\($0)\"" }.joined(separator: ","))]}"#)
    }

    func feedItems(accept: String? = nil) throws -> [[String: Any]] {
        let response = try harness.send("GET", feed, key: nil, headers: accept.map { ["Accept": $0] } ?? [:])
        XCTAssertEqual(response.status, 200, response.text)
        return response.items
    }

    func testPublicationIsAllOrNothing() async throws {
        let first = try YouSaidSamples.make(harness, key: writer), second = try YouSaidSamples.make(harness, key: writer)
        let elsewhere = try await harness.tenant("dudley")
        let theirs = try YouSaidSamples.make(harness, key: try await harness.key(elsewhere, scopes: [.involvementWrite]))
        let refused = try publish([first, UUID().lowercased, second, theirs])
        XCTAssertEqual(refused.status, 422, refused.text)
        XCTAssertEqual(YouSaidSamples.errorFields(refused), ["items[1]", "items[3]"])
        XCTAssertEqual(try feedItems().count, 0, "nothing published")
        XCTAssertEqual(try harness.send("GET", "/v1/you-said/rounds", key: writer).items.count, 0)
        let published = try await harness.superuserCount("SELECT count(*) FROM you_said_publications")
        XCTAssertEqual(published, 0)
        XCTAssertEqual(try item(first)["version"] as? Int, 1)

        let reader = try await harness.key(council, scopes: [.involvementWrite, .involvementRead])
        let forbidden = try harness.send("POST", "/v1/you-said/publish", key: reader, body: #"{"title":"T","published_on":"2026-11-13","items":["\#(first)"]}"#)
        XCTAssertEqual(forbidden.status, 403, "publishing is for admin keys")

        let round = try publish([first, second])
        XCTAssertEqual(round.status, 201, round.text)
        XCTAssertEqual(round.json["items"] as? [String], [first, second])
        let roundID = try XCTUnwrap(round.json["id"] as? String)
        XCTAssertEqual(round.header("Location"), "/v1/you-said/rounds/\(roundID)")
        XCTAssertEqual(try harness.send("GET", "/v1/you-said/rounds/\(roundID)", key: writer).json["title"] as? String, "Autumn round")
        XCTAssertEqual(Set(try feedItems().compactMap { $0["id"] as? String }), [first, second])
        XCTAssertNotNil(try item(first)["published_at"] as? String)
    }

    func testTheFeedShowsWhatWasPublishedUntilItIsPublishedAgain() async throws {
        let id = try YouSaidSamples.make(harness, key: writer)
        try change(id, #"{"status":"in_progress","we_did":"We asked the bus company","owner_team":"leaving care","progress_percent":30}"#)
        XCTAssertEqual(try publish([id]).status, 201)
        try change(id, #"{"status":"done","we_did":"Passes now last to the end of September","progress_percent":100}"#)
        XCTAssertEqual(try item(id)["changed_since_published"] as? Bool, true)

        var shown = try XCTUnwrap(try feedItems().first)
        XCTAssertEqual(shown["we_did"] as? String, "We asked the bus company")
        XCTAssertEqual(shown["status"] as? String, "in_progress")
        XCTAssertEqual(shown["progress_percent"] as? Int, 30)
        XCTAssertEqual(shown["owner_team"] as? String, "leaving care")
        XCTAssertEqual((shown["round"] as? [String: Any])?["title"] as? String, "Autumn round")

        XCTAssertEqual(try publish([id], title: "Winter round", on: "2027-01-20").status, 201)
        let items = try feedItems()
        XCTAssertEqual(items.count, 1, "one entry per item: its latest publication")
        shown = try XCTUnwrap(items.first)
        XCTAssertEqual(shown["we_did"] as? String, "Passes now last to the end of September")
        XCTAssertEqual(shown["status"] as? String, "done")
        XCTAssertEqual((shown["round"] as? [String: Any])?["published_on"] as? String, "2027-01-20")
        XCTAssertEqual(try item(id)["changed_since_published"] as? Bool, false)
    }

    /// Every private field filled with a canary: none of them, and none of the ids of what the
    /// item came from or who was told, is anywhere in the feed's bytes, JSON or Atom.
    func testTheFeedLeaksNothingPrivate() async throws {
        let others = try await harness.key(council, scopes: [.feedbackWrite, .complaintsWrite])
        let feedback = try IsolatedResource.create(harness, others, "/v1/feedback", FeedbackSamples.body(overrides: [
            "subject_ref": #""CANARY-SUBJECT""#, "comment": #""CANARY-COMMENT""#, "team": #""CANARY-FEEDBACK-TEAM""#]), "id")
        let complaint = try IsolatedResource.create(harness, others, "/v1/complaints", ComplaintSamples.body(overrides: [
            "subject_ref": #""CANARY-COMPLAINT-SUBJECT""#, "summary": #""CANARY-SUMMARY""#]), "id")
        let group = try IsolatedResource.create(harness, writer, "/v1/groups",
                                                #"{"name":"CANARY-GROUP","kind":"children_in_care_council","service_area":"care_leavers"}"#, "id")
        let participant = try ParticipationSamples.makeParticipant(harness, key: writer, ref: "CANARY-PARTICIPANT")
        let activity = try ParticipationSamples.makeActivity(harness, key: writer)
        let id = try YouSaidSamples.make(harness, key: writer, overrides: [
            "sources": #"{"feedback":["\#(feedback)"],"complaints":["\#(complaint)"],"activities":["\#(activity)"],"groups":["\#(group)"]}"#])
        try change(id, #"{"status":"done","we_did":"Passes last all year","progress_percent":80}"#)
        try change(id, #"{"status":"in_progress","reopen_reason":"CANARY-REOPEN"}"#)
        try change(id, #"{"progress_percent":50,"progress_note":"CANARY-PROGRESS-NOTE"}"#)
        let milestone = try IsolatedResource.create(harness, writer, "/v1/you-said/\(id)/milestones", #"{"title":"CANARY-MILESTONE"}"#, "id")
        let told = try IsolatedResource.create(harness, writer, "/v1/you-said/\(id)/feedback-given", """
            {"on":"2026-11-03","how":"forum","groups":["\(group)"],"participants":["\(participant)"],"note":"CANARY-TOLD-NOTE"}
            """, "id")
        XCTAssertEqual(try publish([id]).status, 201)
        try change(id, #"{"we_did":"CANARY-UNPUBLISHED","said":"CANARY-UNPUBLISHED-SAID"}"#)
        let keyID = try XCTUnwrap(try harness.send("GET", "/v1/you-said/\(id)/timeline", key: writer).items.first?["key_id"] as? String)

        let canaries = ["CANARY", feedback, complaint, group, participant, activity, milestone, told, keyID, "P-77"]
        for accept in ["application/json", "application/atom+xml"] {
            let response = try harness.send("GET", feed, key: nil, headers: ["Accept": accept])
            XCTAssertEqual(response.status, 200)
            XCTAssertTrue(response.text.contains("Passes last all year"), "\(accept): the published answer is there")
            for canary in canaries where response.text.lowercased().contains(canary.lowercased()) {
                XCTFail("\(accept): the public feed holds \(canary)")
            }
        }
    }

    func testTheFeedIsCacheableAnswers304AndIsOpenToAnyOrigin() async throws {
        let id = try YouSaidSamples.make(harness, key: writer)
        XCTAssertEqual(try publish([id]).status, 201)
        try harness.serveOverSockets()
        let first = try harness.send("GET", feed, key: nil, headers: ["Origin": "https://www.redcar-cleveland.gov.uk"])
        XCTAssertEqual(first.status, 200, first.text)
        XCTAssertEqual(first.header("Cache-Control"), "public, max-age=300")
        XCTAssertEqual(first.header("Access-Control-Allow-Origin"), "*")
        XCTAssertEqual(first.header("Content-Type"), "application/json")
        let etag = try XCTUnwrap(first.header("ETag"))
        let again = try harness.send("GET", feed, key: nil, headers: ["If-None-Match": etag])
        XCTAssertEqual(again.status, 304)
        XCTAssertEqual(again.header("ETag"), etag)
        XCTAssertEqual(again.header("Cache-Control"), "public, max-age=300")
        XCTAssertTrue(again.body.isEmpty)
        let atom = try harness.send("GET", feed, key: nil, headers: ["Accept": "application/atom+xml", "If-None-Match": etag])
        XCTAssertEqual(atom.status, 200, "JSON's tag is not Atom's")
        XCTAssertNotEqual(atom.header("ETag"), etag)

        let preflight = try harness.send("OPTIONS", feed, key: nil, headers: [
            "Origin": "https://example.org", "Access-Control-Request-Method": "GET"])
        XCTAssertEqual(preflight.status, 204)
        XCTAssertEqual(preflight.header("Access-Control-Allow-Origin"), "*")
        XCTAssertEqual(preflight.header("Access-Control-Allow-Methods"), "GET, HEAD")

        // A change published again is a new tag.
        try change(id, #"{"we_did":"Something new"}"#)
        XCTAssertEqual(try harness.send("GET", feed, key: nil, headers: ["If-None-Match": etag]).status, 304, "not published yet")
        XCTAssertEqual(try publish([id], title: "Again").status, 201)
        XCTAssertEqual(try harness.send("GET", feed, key: nil, headers: ["If-None-Match": etag]).status, 200)
        // Keyed routes stay closed to other origins.
        let keyed = try harness.send("GET", "/v1/you-said", key: writer, headers: ["Origin": "https://example.org"])
        XCTAssertNil(keyed.header("Access-Control-Allow-Origin"))
    }

    func testTheAtomFeedIsWellFormedAndEscaped() async throws {
        let hostile = #"<script>alert('x')</script> & \"quotes\" ]]> \u0001 bell"#
        let id = try YouSaidSamples.make(harness, key: writer, overrides: ["said": "\"\(hostile)\"", "theme": #""a<b&c""#])
        try change(id, #"{"status":"not_possible","reason_not_possible":"</content><entry>injected</entry>"}"#)
        XCTAssertEqual(try publish([id]).status, 201)
        let atom = try harness.send("GET", feed, key: nil, headers: ["Accept": "application/atom+xml"])
        XCTAssertEqual(atom.status, 200)
        XCTAssertEqual(atom.header("Content-Type"), "application/atom+xml; charset=utf-8")
        XCTAssertFalse(atom.text.contains("<script>"))
        XCTAssertFalse(atom.text.contains("<entry>injected"))

        let parsed = AtomReader(data: Data(atom.body))
        XCTAssertTrue(parsed.wellFormed, "the Atom feed parses as XML: \(atom.text)")
        XCTAssertEqual(parsed.elements.filter { $0 == "entry" }.count, 1)
        XCTAssertTrue(parsed.text.contains("<script>alert('x')</script> & \"quotes\" ]]>"), "the text reads back as written")
        XCTAssertTrue(parsed.text.contains("</content><entry>injected</entry>"))
        XCTAssertTrue(parsed.text.contains("a<b&c"))
    }

    func testAnUnknownCouncilIs404AndEachCouncilsFeedIsItsOwn() async throws {
        let ours = try YouSaidSamples.make(harness, key: writer)
        XCTAssertEqual(try publish([ours]).status, 201)
        let elsewhere = try await harness.tenant("dudley")
        let theirKey = try await harness.key(elsewhere, scopes: [.involvementWrite, .admin])
        let theirs = try YouSaidSamples.make(harness, key: theirKey)
        XCTAssertEqual(try harness.send("POST", "/v1/you-said/publish", key: theirKey,
                                        body: #"{"title":"T","published_on":"2026-11-13","items":["\#(theirs)"]}"#).status, 201)
        XCTAssertEqual(try feedItems().compactMap { $0["id"] as? String }, [ours])
        XCTAssertEqual(try harness.send("GET", "/v1/public/dudley/you-said-we-did", key: nil).items.compactMap { $0["id"] as? String }, [theirs])
        for slug in ["nowhere", "NOT-A-SLUG", "a"] {
            let missing = try harness.send("GET", "/v1/public/\(slug)/you-said-we-did", key: nil)
            XCTAssertEqual(missing.status, 404, slug)
            XCTAssertEqual(missing.header("Content-Type"), "application/problem+json")
        }
        XCTAssertEqual(try harness.send("GET", "\(feed)?tenant_id=x", key: nil).status, 400)
    }

    func testTheFeedIsRateLimitedPerClientAddress() async throws {
        let limited = try await AccessHarness.start(access: .init(ratePerSecond: 0.01, burst: 3))
        _ = try await limited.tenant("redcar")
        for _ in 0..<3 { XCTAssertEqual(try limited.send("GET", feed, key: nil).status, 200) }
        let refused = try limited.send("GET", feed, key: nil)
        XCTAssertEqual(refused.status, 429)
        XCTAssertNotNil(refused.header("Retry-After"))
        await limited.stop()
    }
}

/// Parses an Atom document with Foundation's XML parser: whether it is well-formed, its
/// elements, and its character data.
final class AtomReader: NSObject, XMLParserDelegate {
    var elements: [String] = []
    var text = ""
    var wellFormed = false

    init(data: Data) {
        super.init()
        let parser = XMLParser(data: data)
        parser.delegate = self
        wellFormed = parser.parse()
    }

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        elements.append(elementName)
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        text += string
    }
}

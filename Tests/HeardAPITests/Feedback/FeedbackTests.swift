import Foundation
import HeardAPI
import HeardTesting
import Postgres
import XCTest

enum FeedbackSamples {
    /// A valid feedback body; `overrides` replace or add top-level fields (raw JSON values).
    static func body(externalID: String = "form-1", overrides: [String: String] = [:], removing: [String] = [], reversed: Bool = false) -> String {
        var fields: [String: String] = [
            "source_system": #""mosaic""#, "external_id": "\"\(externalID)\"", "channel": #""cic_review""#,
            "respondent_role": #""young_person""#, "age_band": #""13_to_15""#, "service_area": #""children_looked_after""#,
            "team": #""north""#, "stage": #""review""#, "kind": #""compliment""#, "given_at": #""2026-11-20T10:00:00Z""#,
            "subject_ref": #""P-1234""#, "comment": #""My worker listens to me""#,
            "responses": #"[{"measure":"listened_to","score":5},{"measure":"worker_knows_me","score":3}]"#,
        ]
        for (name, value) in overrides { fields[name] = value }
        for name in removing { fields.removeValue(forKey: name) }
        let ordered = fields.sorted { reversed ? $0.key > $1.key : $0.key < $1.key }
        return "{" + ordered.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}"
    }
}

final class FeedbackTests: XCTestCase {
    var harness: AccessHarness!
    var council: Registry.Tenant!
    var writer: String!

    override func setUp() async throws {
        harness = try await AccessHarness.start()
        council = try await harness.tenant("dudley")
        writer = try await harness.key(council, scopes: [.feedbackWrite, .feedbackRead, .freeTextRead])
    }

    override func tearDown() async throws {
        await harness?.stop()
    }

    func testANewTenantHasDudleysSixPrinciples() throws {
        let measures = try harness.send("GET", "/v1/measures", key: writer)
        XCTAssertEqual(measures.status, 200)
        XCTAssertEqual(Set(measures.items.compactMap { $0["code"] as? String }),
                       ["listened_to", "worker_knows_me", "involved_in_decisions", "professionals_keep_promises",
                        "service_meets_needs", "listened_to_about_services"])
        let listened = try XCTUnwrap(measures.items.first { $0["code"] as? String == "listened_to" })
        XCTAssertEqual(listened["wording"] as? String, "I am listened to")
        XCTAssertEqual((listened["scale"] as? [String: Any])?["agree_from"] as? Int, 4)
    }

    func testCreateThenReadWithScoresAgainstTheMeasuresWording() throws {
        try harness.serveOverSockets()  // the area's end-to-end test
        let created = try harness.send("POST", "/v1/feedback", key: writer, body: FeedbackSamples.body())
        XCTAssertEqual(created.status, 201, created.text)
        let id = try XCTUnwrap(created.json["id"] as? String)
        XCTAssertEqual(created.header("Location"), "/v1/feedback/\(id)")
        XCTAssertEqual(created.header("ETag"), "\"1\"")
        let read = try harness.send("GET", "/v1/feedback/\(id)", key: writer)
        XCTAssertEqual(read.status, 200)
        XCTAssertEqual(read.json["comment"] as? String, "My worker listens to me")
        XCTAssertEqual(read.json["given_at"] as? String, "2026-11-20T10:00:00Z")
        let responses = try XCTUnwrap(read.json["responses"] as? [[String: Any]])
        XCTAssertEqual(responses.count, 2)
        XCTAssertEqual(responses[0]["measure"] as? String, "listened_to")
        XCTAssertEqual(responses[0]["agrees"] as? Bool, true)
        XCTAssertEqual(responses[1]["agrees"] as? Bool, false)
        XCTAssertEqual(responses[1]["wording"] as? String, "My worker knows me and understands my needs")
        XCTAssertTrue(read.json["safeguarding_alert"] is NSNull)
        XCTAssertEqual(try harness.send("GET", "/v1/feedback/\(UUID().lowercased)", key: writer).status, 404)
        XCTAssertEqual(try harness.send("GET", "/v1/feedback/not-an-id", key: writer).status, 404)
    }

    func testTheCommentIsAbsentWithoutTheFreeTextScope() async throws {
        let created = try harness.send("POST", "/v1/feedback", key: writer, body: FeedbackSamples.body())
        let id = try XCTUnwrap(created.json["id"] as? String)
        let reader = try await harness.key(council, scopes: [.feedbackRead])
        let read = try harness.send("GET", "/v1/feedback/\(id)", key: reader)
        XCTAssertEqual(read.status, 200)
        XCTAssertFalse(read.json.keys.contains("comment"), "absent, not empty: \(read.text)")
        XCTAssertFalse(read.text.contains("My worker listens to me"))
        let blindWriter = try await harness.key(council, scopes: [.feedbackWrite])
        let replay = try harness.send("POST", "/v1/feedback", key: blindWriter, body: FeedbackSamples.body())
        XCTAssertEqual(replay.status, 200)
        XCTAssertFalse(replay.json.keys.contains("comment"), "a writer without free_text:read does not read it back either")
    }

    func testARetryWithTheSameContentIsTheSameRecordAndDifferentContentIs409() throws {
        let first = try harness.send("POST", "/v1/feedback", key: writer, body: FeedbackSamples.body())
        XCTAssertEqual(first.status, 201)
        // The same content with its keys in another order is the same content.
        let reordered = FeedbackSamples.body(reversed: true)
        for body in [FeedbackSamples.body(), reordered] {
            let retry = try harness.send("POST", "/v1/feedback", key: writer, body: body)
            XCTAssertEqual(retry.status, 200, retry.text)
            XCTAssertEqual(retry.json["id"] as? String, first.json["id"] as? String)
            XCTAssertEqual(retry.text, first.text, "a retry answers the same record")
        }
        let conflict = try harness.send("POST", "/v1/feedback", key: writer, body: FeedbackSamples.body(overrides: ["kind": #""concern""#]))
        XCTAssertEqual(conflict.status, 409)
        XCTAssertEqual(conflict.json["existing_id"] as? String, first.json["id"] as? String)
        XCTAssertEqual(try harness.send("GET", "/v1/feedback/\(first.json["id"] as? String ?? "")", key: writer).json["kind"] as? String,
                       "compliment", "the record was not changed")
    }

    func testFiftyIdenticalRequestsAtTheSameInstantMakeOneRecord() async throws {
        let body = FeedbackSamples.body(externalID: "burst-1")
        let statuses = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            for _ in 0..<50 {
                group.addTask { [harness, writer] in
                    let response = try harness!.send("POST", "/v1/feedback", key: writer!, body: body)
                    return (response.status, response.json["id"] as? String)
                }
            }
            return try await group.reduce(into: [(Int, String?)]()) { $0.append($1) }
        }
        XCTAssertEqual(statuses.filter { $0.0 == 201 }.count, 1, "\(statuses.map(\.0))")
        XCTAssertEqual(statuses.filter { $0.0 == 200 }.count, 49)
        XCTAssertEqual(Set(statuses.compactMap(\.1)).count, 1, "every answer names the same record")
        let rows = try await harness.ownerPool.transaction(settings: [("heard.tenant_id", council.id.lowercased)]) { tx in
            try await tx.query("SELECT count(*)::int FROM feedback WHERE external_id = 'burst-1'").first?.decode(Int.self, at: 0)
        }
        XCTAssertEqual(rows, 1)
    }

    /// Every field's bad values, each answered 422 naming exactly that field.
    func testCommentLengthIsCountedAsTheDatabaseCountsIt() throws {
        // 👍🏽 is one character to a reader but two code points; PostgreSQL's length() counts code
        // points, so the 8,000 limit does too, and a comment the API accepts is one the table takes.
        let thumbs = "👍🏽"
        let fits = try harness.send("POST", "/v1/feedback", key: writer, body: FeedbackSamples.body(
            externalID: "long-ok", overrides: ["comment": "\"" + String(repeating: thumbs, count: 4000) + "\""]))
        XCTAssertEqual(fits.status, 201, fits.text)
        let tooLong = try harness.send("POST", "/v1/feedback", key: writer, body: FeedbackSamples.body(
            externalID: "long-no", overrides: ["comment": "\"" + String(repeating: thumbs, count: 4001) + "\""]))
        XCTAssertEqual(tooLong.status, 422, tooLong.text)
        XCTAssertEqual((tooLong.json["errors"] as? [[String: Any]])?.first?["field"] as? String, "comment")
    }

    func testValidationTable() async throws {
        let cases: [(field: String, value: String?)] = [
            ("source_system", #""""#), ("source_system", "7"), ("source_system", nil), ("external_id", "\"" + String(repeating: "x", count: 201) + "\""),
            ("channel", #""fax""#), ("channel", nil), ("respondent_role", #""cat""#), ("age_band", #""12""#),
            ("service_area", #""police""#), ("team", "[]"), ("team", #""""#), ("subject_ref", #""   ""#), ("comment", #""""#), ("stage", #""done""#), ("kind", #""complaint""#),
            ("given_at", #""2026-11-20""#), ("given_at", #""yesterday""#), ("given_at", #""2099-01-01T00:00:00Z""#), ("given_at", nil),
            ("subject_ref", "\"" + String(repeating: "p", count: 101) + "\""), ("comment", "\"" + String(repeating: "c", count: 8001) + "\""),
            ("anonymous", #""yes""#), ("consent_to_follow_up", "1"), ("safeguarding_concern", "null,\"x\":1"),
            ("equality", #"{"gender":"robot"}"#), ("equality", #"{"ethnicity":"martian"}"#), ("equality", #"{"shoe_size":9}"#),
            ("equality", #""white""#), ("organisation", #""no-such-partner""#), ("responses", #"{"measure":"listened_to"}"#),
            ("responses", #"[{"measure":"listened_to","score":6}]"#), ("responses", #"[{"measure":"listened_to","score":0}]"#),
            ("responses", #"[{"measure":"unknown","score":3}]"#), ("responses", #"[{"measure":"listened_to","score":3},{"measure":"listened_to","score":4}]"#),
            ("responses", #"[{"measure":"listened_to","score":"5"}]"#), ("responses", #"[{"measure":"listened_to"}]"#),
            ("responses", #"[{"measure":"listened_to","score":3,"note":"x"}]"#), ("tenant_id", #""x""#), ("colour", #""red""#),
        ]
        for (field, value) in cases {
            let body = value.map { FeedbackSamples.body(overrides: [field: $0]) } ?? FeedbackSamples.body(removing: [field])
            let response = try harness.send("POST", "/v1/feedback", key: writer, body: body)
            XCTAssertEqual(response.status, 422, "\(field)=\(value ?? "absent"): \(response.text)")
            let fields = (response.json["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String }
            XCTAssertTrue(fields.allSatisfy { $0 == field || $0.hasPrefix(field + ".") || $0.hasPrefix(field + "[") || $0 == "x" },
                          "\(field)=\(value ?? "absent") blamed \(fields)")
            XCTAssertFalse(fields.isEmpty)
        }
        let anonymousWithConsent = try harness.send("POST", "/v1/feedback", key: writer,
            body: FeedbackSamples.body(overrides: ["anonymous": "true", "consent_to_follow_up": "true"], removing: ["subject_ref"]))
        XCTAssertEqual(anonymousWithConsent.status, 422)
        XCTAssertEqual(try harness.send("POST", "/v1/feedback", key: writer, body: "{\"a\":1,\"a\":2}").status, 400, "duplicate keys")
        XCTAssertEqual(try harness.send("POST", "/v1/feedback", key: writer, body: "[]").status, 422)
        XCTAssertEqual(try harness.send("POST", "/v1/feedback", key: writer, body: "{\"comment\":\"a\\u0000b\"}").status, 400, "NUL")
        let nothing = try harness.send("POST", "/v1/feedback", key: writer, body: "{}")
        XCTAssertEqual(nothing.status, 422)
        XCTAssertGreaterThanOrEqual((nothing.json["errors"] as? [Any])?.count ?? 0, 9, "every missing field at once")
        let rows = try await harness.superuserCount("SELECT count(*) FROM feedback")
        XCTAssertEqual(rows, 0, "nothing half-written")
    }

    func testASafeguardingConcernOpensAnAlertWithTheFeedback() async throws {
        let created = try harness.send("POST", "/v1/feedback", key: writer,
                                       body: FeedbackSamples.body(overrides: ["safeguarding_concern": "true", "kind": #""concern""#]))
        XCTAssertEqual(created.status, 201)
        let alert = try XCTUnwrap(created.json["safeguarding_alert"] as? [String: Any])
        XCTAssertEqual(alert["status"] as? String, "open")
        let superuser = PostgresPool(configuration: harness.database.configuration, size: 1)
        defer { superuser.shutdown() }
        let alerts = try await superuser.query("SELECT feedback_id::text, status FROM safeguarding_alerts")
        XCTAssertEqual(alerts.count, 1)
        XCTAssertEqual(try alerts.first?.decode(String.self, at: 0), created.json["id"] as? String)
    }

    func testAPartnersFeedbackIsAttributedToThePartner() async throws {
        let partner = try await harness.organisation("advocacy", in: council)
        let partnerKey = try await harness.key(council, scopes: [.feedbackWrite, .feedbackRead], organisation: partner)
        let created = try harness.send("POST", "/v1/feedback", key: partnerKey, body: FeedbackSamples.body(externalID: "adv-1"))
        XCTAssertEqual(created.status, 201)
        XCTAssertEqual(created.json["organisation"] as? String, "advocacy")
        _ = try await harness.organisation("provider", in: council)
        let other = try harness.send("POST", "/v1/feedback", key: partnerKey,
                                     body: FeedbackSamples.body(externalID: "adv-2", overrides: ["organisation": #""provider""#]))
        XCTAssertEqual(other.status, 422)
        let tenantWide = try harness.send("GET", "/v1/feedback/\(created.json["id"] as? String ?? "")", key: writer)
        XCTAssertEqual(tenantWide.status, 200, "the council sees its partners' feedback")
    }

    func testTheCreatedAnswerIsTheRecordAReadReturns() throws {
        let body = FeedbackSamples.body(externalID: "same-answer", overrides: [
            "safeguarding_concern": "true", "equality": #"{"gender":"female","ethnicity":"white_british"}"#,
            "given_at": #""2026-11-20T10:00:00.123456+01:00""#,
            "responses": #"[{"measure":"worker_knows_me","score":3},{"measure":"listened_to","score":5}]"#,
        ])
        let created = try harness.send("POST", "/v1/feedback", key: writer, body: body)
        XCTAssertEqual(created.status, 201, created.text)
        let id = try XCTUnwrap(created.json["id"] as? String)
        let read = try harness.send("GET", "/v1/feedback/\(id)", key: writer)
        XCTAssertEqual(read.status, 200)
        XCTAssertEqual(NSDictionary(dictionary: created.json), NSDictionary(dictionary: read.json))
        XCTAssertEqual(created.header("ETag"), read.header("ETag"))
        let retried = try harness.send("POST", "/v1/feedback", key: writer, body: body)
        XCTAssertEqual(retried.status, 200)
        XCTAssertEqual(NSDictionary(dictionary: retried.json), NSDictionary(dictionary: read.json))
    }

    func testFieldsNotGivenAnswerNullNotMissing() throws {
        let body = FeedbackSamples.body(externalID: "sparse", overrides: ["equality": #"{"gender":"female"}"#],
                                        removing: ["team", "subject_ref", "comment"])
        let created = try harness.send("POST", "/v1/feedback", key: writer, body: body)
        XCTAssertEqual(created.status, 201, created.text)
        for answer in [created, try harness.send("GET", "/v1/feedback/\(created.json["id"] as? String ?? "")", key: writer)] {
            for field in ["team", "subject_ref", "comment", "safeguarding_alert", "organisation"] {
                XCTAssertTrue(answer.json[field] is NSNull, "\(field): \(answer.text)")
            }
            let equality = try XCTUnwrap(answer.json["equality"] as? [String: Any], answer.text)
            XCTAssertEqual(equality["gender"] as? String, "female")
            XCTAssertTrue(equality["ethnicity"] is NSNull && equality["disability"] is NSNull, answer.text)
        }
        let bare = try harness.send("POST", "/v1/feedback", key: writer, body: FeedbackSamples.body(externalID: "no-equality"))
        XCTAssertTrue(bare.json["equality"] is NSNull, bare.text)
    }

    // MARK: Batches

    func testABatchMixingValidInvalidDuplicateAndConflictingRecords() async throws {
        let existing = try harness.send("POST", "/v1/feedback", key: writer, body: FeedbackSamples.body(externalID: "old-1"))
        XCTAssertEqual(existing.status, 201)
        let records = [
            FeedbackSamples.body(externalID: "new-1"),
            FeedbackSamples.body(externalID: "bad-1", overrides: ["channel": #""fax""#, "age_band": #""old""#]),
            FeedbackSamples.body(externalID: "old-1"),
            FeedbackSamples.body(externalID: "old-1", overrides: ["kind": #""concern""#]),
            FeedbackSamples.body(externalID: "new-2", overrides: ["safeguarding_concern": "true"]),
            FeedbackSamples.body(externalID: "new-1"),  // the same record twice in one batch
        ]
        let response = try harness.send("POST", "/v1/feedback/batch", key: writer, body: "[" + records.joined(separator: ",") + "]")
        XCTAssertEqual(response.status, 200, response.text)
        let results = try XCTUnwrap(response.json["results"] as? [[String: Any]])
        XCTAssertEqual(results.map { $0["status"] as? String }, ["created", "invalid", "duplicate", "conflict", "created", "duplicate"])
        XCTAssertEqual(results.map { $0["index"] as? Int }, Array(0..<6))
        let badFields = Set(((results[1]["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String })
        XCTAssertEqual(badFields, ["channel", "age_band"])
        XCTAssertEqual(results[2]["id"] as? String, existing.json["id"] as? String)
        XCTAssertEqual(results[3]["id"] as? String, existing.json["id"] as? String)
        XCTAssertEqual(results[5]["id"] as? String, results[0]["id"] as? String)
        XCTAssertEqual(response.json["created"] as? Int, 2)
        XCTAssertEqual(response.json["invalid"] as? Int, 1)
        let stored = try await harness.superuserCount("SELECT count(*) FROM feedback")
        XCTAssertEqual(stored, 3, "old-1, new-1, new-2; nothing from the invalid ones")
        let alerts = try await harness.superuserCount("SELECT count(*) FROM safeguarding_alerts")
        XCTAssertEqual(alerts, 1)
        let audited = try await harness.superuserCount("SELECT count(*) FROM audit_events WHERE action = 'create' AND resource_type = 'feedback'")
        XCTAssertEqual(audited, 3, "one audit row per record created")
    }

    func testAKeyRepeatedWithinABatchWithOtherContentConflictsWithItsFirstRecord() async throws {
        let records = [
            FeedbackSamples.body(externalID: "twice-1"),
            FeedbackSamples.body(externalID: "twice-1", overrides: ["kind": #""concern""#]),
            FeedbackSamples.body(externalID: "twice-1"),
        ]
        let response = try harness.send("POST", "/v1/feedback/batch", key: writer, body: "[" + records.joined(separator: ",") + "]")
        XCTAssertEqual(response.status, 200, response.text)
        let results = try XCTUnwrap(response.json["results"] as? [[String: Any]])
        XCTAssertEqual(results.map { $0["status"] as? String }, ["created", "conflict", "duplicate"])
        XCTAssertEqual(Set(results.compactMap { $0["id"] as? String }).count, 1, "all three name the one record stored")
        let stored = try await harness.superuserCount("SELECT count(*) FROM feedback WHERE kind = 'compliment'")
        XCTAssertEqual(stored, 1)
    }

    func testAFullBatchIsStoredWholeAndItsRetryIsAllDuplicates() async throws {
        // Every seventh record scores nothing, every third of the others one measure, the rest two,
        // with scores that vary by record: each record must keep its own.
        func responseCount(_ n: Int) -> Int { n % 7 == 0 ? 0 : n % 3 == 0 ? 1 : 2 }
        let records = (0..<1000).map { n in
            FeedbackSamples.body(externalID: "night-\(n)", overrides: [
                "responses": [#"[]"#, #"[{"measure":"listened_to","score":\#(1 + n % 5)}]"#,
                              #"[{"measure":"listened_to","score":\#(1 + n % 5)},{"measure":"worker_knows_me","score":\#(1 + (n + 1) % 5)}]"#][responseCount(n)],
                "comment": "\"Comment \(n), with a comma and a \\\"quote\\\" and Siân\"",
                "safeguarding_concern": n % 100 == 0 ? "true" : "false",
                "team": n % 2 == 0 ? "null" : "\"south\"",
            ])
        }
        let ndjson = records.joined(separator: "\n")
        let first = try harness.send("POST", "/v1/feedback/batch", key: writer, body: ndjson, headers: ["Content-Type": "application/x-ndjson"])
        XCTAssertEqual(first.status, 200, first.text)
        XCTAssertEqual(first.json["created"] as? Int, 1000, first.text)
        let stored = try await harness.superuserCount("SELECT count(*) FROM feedback")
        XCTAssertEqual(stored, 1000)
        let responses = try await harness.superuserCount("SELECT sum(cardinality(response_scores)) FROM feedback")
        XCTAssertEqual(responses, (0..<1000).map(responseCount).reduce(0, +), "every record's responses")
        let misplaced = try await harness.superuserCount("""
            SELECT count(*) FROM feedback f CROSS JOIN LATERAL (SELECT substr(f.external_id, 7)::int AS n) AS sent
             WHERE f.response_scores <> CASE WHEN sent.n % 7 = 0 THEN '{}'::int[]
                                             WHEN sent.n % 3 = 0 THEN ARRAY[1 + sent.n % 5]
                                             ELSE ARRAY[1 + sent.n % 5, 1 + (sent.n + 1) % 5] END
            """)
        XCTAssertEqual(misplaced, 0, "each record stored with its own scores")
        let alerts = try await harness.superuserCount("SELECT count(*) FROM safeguarding_alerts")
        XCTAssertEqual(alerts, 10)

        // Each result names its own record: the 437th is the one sent 437th.
        let results = try XCTUnwrap(first.json["results"] as? [[String: Any]])
        let id = try XCTUnwrap(results[437]["id"] as? String)
        let read = try harness.send("GET", "/v1/feedback/\(id)", key: writer)
        XCTAssertEqual(read.json["external_id"] as? String, "night-437")
        XCTAssertEqual(read.json["comment"] as? String, #"Comment 437, with a comma and a "quote" and Siân"#)
        XCTAssertEqual(read.json["team"] as? String, "south")
        let readResponses = try XCTUnwrap(read.json["responses"] as? [[String: Any]])
        XCTAssertEqual(readResponses.map { $0["measure"] as? String }, ["listened_to", "worker_knows_me"])
        XCTAssertEqual(readResponses.map { $0["score"] as? Int }, [1 + 437 % 5, 1 + 438 % 5])

        let retry = try harness.send("POST", "/v1/feedback/batch", key: writer, body: ndjson, headers: ["Content-Type": "application/x-ndjson"])
        XCTAssertEqual(retry.status, 200, retry.text)
        XCTAssertEqual(retry.json["duplicate"] as? Int, 1000, retry.text)
        let retried = try XCTUnwrap(retry.json["results"] as? [[String: Any]])
        XCTAssertEqual(retried.map { $0["id"] as? String }, results.map { $0["id"] as? String })
        let storedAfter = try await harness.superuserCount("SELECT count(*) FROM feedback")
        XCTAssertEqual(storedAfter, 1000)
    }

    func testOverlappingBatchesAtOnceStoreEachRecordOnce() async throws {
        // Two senders post the same 300 records at the same moment, in opposite orders.
        let records = (0..<300).map { FeedbackSamples.body(externalID: "overlap-\($0)") }
        let bodies = ["[" + records.joined(separator: ",") + "]", "[" + records.reversed().joined(separator: ",") + "]"]
        let harness = self.harness!, writer = self.writer!
        let answers = try await withThrowingTaskGroup(of: RawResponse.self) { group in
            for body in bodies { group.addTask { try harness.send("POST", "/v1/feedback/batch", key: writer, body: body) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for answer in answers { XCTAssertEqual(answer.status, 200, answer.text) }
        XCTAssertEqual(answers.map { $0.json["created"] as? Int ?? -1 }.reduce(0, +), 300, "each record created by exactly one of them")
        XCTAssertEqual(answers.map { $0.json["duplicate"] as? Int ?? -1 }.reduce(0, +), 300, "and reported a duplicate by the other")
        let stored = try await harness.superuserCount("SELECT count(*) FROM feedback")
        XCTAssertEqual(stored, 300)
    }

    func testBatchRecordsAreAttributedToTheirOrganisations() async throws {
        let partner = try await harness.organisation("advocacy", in: council)
        let records = [
            FeedbackSamples.body(externalID: "org-1", overrides: ["organisation": #""advocacy""#]),
            FeedbackSamples.body(externalID: "org-2", overrides: ["organisation": #""no-such-partner""#]),
            FeedbackSamples.body(externalID: "org-3"),
        ]
        let response = try harness.send("POST", "/v1/feedback/batch", key: writer, body: "[" + records.joined(separator: ",") + "]")
        XCTAssertEqual(response.status, 200, response.text)
        let results = try XCTUnwrap(response.json["results"] as? [[String: Any]])
        XCTAssertEqual(results.map { $0["status"] as? String }, ["created", "invalid", "created"])
        XCTAssertEqual((results[1]["errors"] as? [[String: Any]])?.first?["field"] as? String, "organisation")
        let attributed = try await harness.superuserCount("SELECT count(*) FROM feedback WHERE organisation_id = \(partner.id)")
        XCTAssertEqual(attributed, 1)

        // A partner's key attributes every record to its own organisation, and sees only those.
        let partnerKey = try await harness.key(council, scopes: [.feedbackWrite, .feedbackRead], organisation: partner)
        let own = try harness.send("POST", "/v1/feedback/batch", key: partnerKey,
                                   body: "[" + FeedbackSamples.body(externalID: "org-4") + "," + FeedbackSamples.body(externalID: "org-3") + "]")
        let ownResults = try XCTUnwrap(own.json["results"] as? [[String: Any]])
        XCTAssertEqual(ownResults.map { $0["status"] as? String }, ["created", "conflict"])
        XCTAssertNil(ownResults[1]["id"], "the council's own record is not the partner's to see, not even its id")
        let partnerRecords = try await harness.superuserCount("SELECT count(*) FROM feedback WHERE organisation_id = \(partner.id)")
        XCTAssertEqual(partnerRecords, 2)
    }

    func testAnNDJSONBatchWithABrokenLine() async throws {
        let lines = [FeedbackSamples.body(externalID: "nd-1"), "{not json", "", FeedbackSamples.body(externalID: "nd-2")]
        let response = try harness.send("POST", "/v1/feedback/batch", key: writer, body: lines.joined(separator: "\r\n"),
                                        headers: ["Content-Type": "application/x-ndjson"])
        XCTAssertEqual(response.status, 200, response.text)
        let results = try XCTUnwrap(response.json["results"] as? [[String: Any]])
        XCTAssertEqual(results.map { $0["status"] as? String }, ["created", "invalid", "created"])
    }

    func testBatchLimits() throws {
        let many = "[" + (0..<1001).map { _ in "{}" }.joined(separator: ",") + "]"
        XCTAssertEqual(try harness.send("POST", "/v1/feedback/batch", key: writer, body: many).status, 422)
        XCTAssertEqual(try harness.send("POST", "/v1/feedback/batch", key: writer, body: "[]").status, 422)
        XCTAssertEqual(try harness.send("POST", "/v1/feedback/batch", key: writer, body: "{}").status, 422)
        let notRecords = try harness.send("POST", "/v1/feedback/batch", key: writer, body: "[" + FeedbackSamples.body(externalID: "x") + ",42]")
        XCTAssertEqual(notRecords.status, 422)
        XCTAssertEqual((notRecords.json["errors"] as? [[String: Any]])?.first?["field"] as? String, "[1]")
        XCTAssertEqual(try harness.send("POST", "/v1/feedback/batch", key: writer, body: "a,b", headers: ["Content-Type": "text/csv"]).status, 415)
    }

    // MARK: Corrections

    func testACorrectionNeedsTheCurrentETagAndKeepsHistory() async throws {
        let created = try harness.send("POST", "/v1/feedback", key: writer, body: FeedbackSamples.body())
        let id = try XCTUnwrap(created.json["id"] as? String)
        let path = "/v1/feedback/\(id)"
        XCTAssertEqual(try harness.send("PATCH", path, key: writer, body: #"{"kind":"concern"}"#).status, 428)
        XCTAssertEqual(try harness.send("PATCH", path, key: writer, body: #"{"kind":"concern"}"#, headers: ["If-Match": "\"9\""]).status, 412)

        let corrected = try harness.send("PATCH", path, key: writer,
                                         body: #"{"kind":"concern","team":null,"responses":[{"measure":"listened_to","score":2}]}"#,
                                         headers: ["If-Match": "\"1\"", "X-Request-Id": "correction-1"])
        XCTAssertEqual(corrected.status, 200, corrected.text)
        XCTAssertEqual(corrected.header("ETag"), "\"2\"")
        XCTAssertEqual(corrected.json["kind"] as? String, "concern")
        XCTAssertTrue(corrected.json["team"] is NSNull)
        XCTAssertEqual((corrected.json["responses"] as? [[String: Any]])?.map { $0["score"] as? Int }, [2])
        XCTAssertEqual(corrected.json["comment"] as? String, "My worker listens to me", "untouched fields stay")

        // The old ETag is now stale: a second writer who read version 1 is stopped.
        let stale = try harness.send("PATCH", path, key: writer, body: #"{"stage":"plan"}"#, headers: ["If-Match": "\"1\""])
        XCTAssertEqual(stale.status, 412)
        XCTAssertEqual(stale.header("ETag"), "\"2\"")

        let superuser = PostgresPool(configuration: harness.database.configuration, size: 1)
        defer { superuser.shutdown() }
        let history = try await superuser.query("SELECT version, key_id, request_id, changes::text FROM feedback_history")
        XCTAssertEqual(history.count, 1)
        XCTAssertEqual(try history.first?.decode(Int.self, column: "version"), 2)
        XCTAssertEqual(try history.first?.decode(UUID.self, column: "key_id"), APIKeySecret(text: writer)?.id)
        XCTAssertEqual(try history.first?.decode(String.self, column: "request_id"), "correction-1")
        let changes = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data((history.first?.decode(String.self, column: "changes") ?? "").utf8)) as? [String: [String: Any]])
        XCTAssertEqual(Set(changes.keys), ["kind", "team", "responses"])
        XCTAssertEqual(changes["kind"]?["from"] as? String, "compliment")
        XCTAssertEqual(changes["kind"]?["to"] as? String, "concern")

        // The original content is no longer what is recorded: its retry is a conflict now.
        XCTAssertEqual(try harness.send("POST", "/v1/feedback", key: writer, body: FeedbackSamples.body()).status, 409)
        // Conditional reads.
        XCTAssertEqual(try harness.send("GET", path, key: writer, headers: ["If-None-Match": "\"2\""]).status, 304)
        XCTAssertEqual(try harness.send("GET", path, key: writer, headers: ["If-None-Match": "\"1\""]).status, 200)
    }

    func testACorrectionIsValidatedWholeAndChangesNothingWhenRefused() async throws {
        let created = try harness.send("POST", "/v1/feedback", key: writer, body: FeedbackSamples.body())
        let path = "/v1/feedback/\(created.json["id"] as? String ?? "")"
        let identity = try harness.send("PATCH", path, key: writer, body: #"{"external_id":"other","organisation":"x"}"#, headers: ["If-Match": "\"1\""])
        XCTAssertEqual(identity.status, 422)
        XCTAssertEqual(Set((identity.json["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String }), ["external_id", "organisation"])
        let invalid = try harness.send("PATCH", path, key: writer, body: #"{"kind":"rant","responses":[{"measure":"listened_to","score":7}]}"#,
                                       headers: ["If-Match": "\"1\""])
        XCTAssertEqual(invalid.status, 422)
        let anonymousWithRef = try harness.send("PATCH", path, key: writer, body: #"{"anonymous":true}"#, headers: ["If-Match": "\"1\""])
        XCTAssertEqual(anonymousWithRef.status, 422, "the corrected whole must be valid: anonymous with a subject_ref is not")
        let read = try harness.send("GET", path, key: writer)
        XCTAssertEqual(read.header("ETag"), "\"1\"")
        XCTAssertEqual(read.json["kind"] as? String, "compliment")
        let unchanged = try harness.send("PATCH", path, key: writer, body: #"{"kind":"compliment"}"#, headers: ["If-Match": "\"1\""])
        XCTAssertEqual(unchanged.header("ETag"), "\"1\"", "a correction that changes nothing makes no new version")
    }

    func testRaisingAConcernInACorrectionOpensAnAlertAndOtherTenantsCannotCorrect() async throws {
        let created = try harness.send("POST", "/v1/feedback", key: writer, body: FeedbackSamples.body())
        let path = "/v1/feedback/\(created.json["id"] as? String ?? "")"
        let other = try await harness.tenant("elsewhere")
        let stranger = try await harness.key(other, scopes: [.feedbackWrite, .feedbackRead])
        XCTAssertEqual(try harness.send("PATCH", path, key: stranger, body: #"{"kind":"concern"}"#, headers: ["If-Match": "\"1\""]).status, 404)
        let raised = try harness.send("PATCH", path, key: writer, body: #"{"safeguarding_concern":true}"#, headers: ["If-Match": "\"1\""])
        XCTAssertEqual(raised.status, 200)
        XCTAssertEqual((raised.json["safeguarding_alert"] as? [String: Any])?["status"] as? String, "open")
    }

    // MARK: Idempotency-Key

    func testIdempotencyKeyReplaysRefusesAnotherBodyAndWaitsForTheFirst() async throws {
        let body = FeedbackSamples.body(externalID: "idem-1")
        let first = try harness.send("POST", "/v1/feedback", key: writer, body: body, headers: ["Idempotency-Key": "nightly-2026-11-22-0001"])
        XCTAssertEqual(first.status, 201)
        let replay = try harness.send("POST", "/v1/feedback", key: writer, body: body, headers: ["Idempotency-Key": "nightly-2026-11-22-0001"])
        XCTAssertEqual(replay.status, 201, "the first answer, status included")
        XCTAssertEqual(replay.text, first.text)
        XCTAssertEqual(replay.header("Location"), first.header("Location"))
        XCTAssertEqual(replay.header("Idempotent-Replayed"), "true")
        let other = try harness.send("POST", "/v1/feedback", key: writer, body: FeedbackSamples.body(externalID: "idem-2"),
                                     headers: ["Idempotency-Key": "nightly-2026-11-22-0001"])
        XCTAssertEqual(other.status, 422, "the same key with another body")

        // Keys are per API key: another key may use the same text.
        let colleague = try await harness.key(council, scopes: [.feedbackWrite])
        let theirs = try harness.send("POST", "/v1/feedback", key: colleague, body: FeedbackSamples.body(externalID: "idem-3"),
                                      headers: ["Idempotency-Key": "nightly-2026-11-22-0001"])
        XCTAssertEqual(theirs.status, 201)

        // A request still in flight with that key: 409; abandoned over a minute ago: taken over.
        let superuser = PostgresPool(configuration: harness.database.configuration, size: 1)
        defer { superuser.shutdown() }
        let keyID = try XCTUnwrap(APIKeySecret(text: writer)).id
        let pendingBody = FeedbackSamples.body(externalID: "idem-4")
        let hash = SHA256.hexDigest(Array(pendingBody.utf8))
        try await superuser.execute("""
            INSERT INTO idempotency_keys (tenant_id, key_id, route, idempotency_key, request_hash)
            VALUES (\(council.id), \(keyID), 'POST /v1/feedback', 'in-flight', \(hash))
            """)
        let busy = try harness.send("POST", "/v1/feedback", key: writer, body: pendingBody, headers: ["Idempotency-Key": "in-flight"])
        XCTAssertEqual(busy.status, 409)
        XCTAssertEqual(busy.header("Retry-After"), "1")
        try await superuser.execute("UPDATE idempotency_keys SET created_at = now() - interval '2 minutes' WHERE idempotency_key = 'in-flight'")
        XCTAssertEqual(try harness.send("POST", "/v1/feedback", key: writer, body: pendingBody, headers: ["Idempotency-Key": "in-flight"]).status, 201)

        // An answer that was a refusal is replayed too; a malformed key is refused.
        let invalidBody = FeedbackSamples.body(overrides: ["channel": #""fax""#])
        XCTAssertEqual(try harness.send("POST", "/v1/feedback", key: writer, body: invalidBody, headers: ["Idempotency-Key": "bad-1"]).status, 422)
        XCTAssertEqual(try harness.send("POST", "/v1/feedback", key: writer, body: invalidBody, headers: ["Idempotency-Key": "bad-1"]).header("Idempotent-Replayed"), "true")
        XCTAssertEqual(try harness.send("POST", "/v1/feedback", key: writer, body: body, headers: ["Idempotency-Key": "has space"]).status, 400)
    }
}

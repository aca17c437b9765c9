import Foundation
import HeardAPI
import HeardTesting
import XCTest

enum ParticipationSamples {
    /// A participant body; `overrides` replace or add top-level fields (raw JSON values).
    static func participant(ref: String = "P-001", ageBand: String = "13_to_15", overrides: [String: String] = [:]) -> String {
        var fields: [String: String] = [
            "ref": "\"\(ref)\"", "age_band": "\"\(ageBand)\"", "notes": #""Prefers afternoon sessions""#,
            "equality": #"{"gender":"female","ethnicity":"white_british","disability":"no"}"#,
        ]
        for (name, value) in overrides { fields[name] = value }
        return "{" + fields.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "}"
    }

    static func consent(givenBy: String = "self", givenOn: String = "2026-01-10", purposes: String = #"["involvement"]"#) -> String {
        #"{"given_by":"\#(givenBy)","given_on":"\#(givenOn)","purposes":\#(purposes)}"#
    }

    /// The id of what `response` created, or an error saying what could not be done.
    static func createdID(_ response: RawResponse, _ what: String) throws -> String {
        guard response.status == 201, let id = response.json["id"] as? String else {
            throw IsolationFailure(description: "could not \(what): \(response.status) \(response.text)")
        }
        return id
    }

    /// Creates a participant and returns its id.
    static func makeParticipant(_ harness: AccessHarness, key: String, ref: String = UUID().lowercased, ageBand: String = "13_to_15",
                                overrides: [String: String] = [:]) throws -> String {
        let response = try harness.send("POST", "/v1/participants", key: key, body: participant(ref: ref, ageBand: ageBand, overrides: overrides))
        return try createdID(response, "create a participant")
    }

    /// Gives `participant` consent and returns the consent's id.
    static func giveConsent(_ harness: AccessHarness, key: String, to participant: String, givenBy: String = "self",
                            givenOn: String = "2026-01-10", purposes: String = #"["involvement"]"#) throws -> String {
        let response = try harness.send("POST", "/v1/participants/\(participant)/consents", key: key,
                                        body: consent(givenBy: givenBy, givenOn: givenOn, purposes: purposes))
        return try createdID(response, "give consent")
    }
}

extension IsolatedResource {
    static let participant = IsolatedResource(
        name: "participant", scopes: [.involvementWrite, .involvementRead],
        create: { harness, key in try ParticipationSamples.makeParticipant(harness, key: key) },
        itemPath: { "/v1/participants/\($0)" }, reads: ["/groups", "/consents", "/training", "/rewards"], listPath: "/v1/participants",
        changes: [("PATCH", "", #"{"active":false}"#), ("POST", "/consents", ParticipationSamples.consent())],
        deletable: false, csv: true,
        routes: ["POST /v1/participants", "GET /v1/participants/{id}", "GET /v1/participants", "PATCH /v1/participants/{id}", "POST /v1/participants/{id}/consents", "GET /v1/participants/{id}/groups", "GET /v1/participants/{id}/consents", "GET /v1/participants/{id}/training", "GET /v1/participants/{id}/rewards"])
}

final class ParticipantsTests: XCTestCase {
    var harness: AccessHarness!
    var council: Registry.Tenant!
    var writer: String!

    override func setUp() async throws {
        harness = try await AccessHarness.start()
        council = try await harness.tenant("dudley")
        writer = try await harness.key(council, scopes: [.involvementWrite, .involvementRead, .freeTextRead])
    }

    override func tearDown() async throws {
        await harness?.stop()
    }

    func testTheRefIsTheNaturalKeyWithinTheTenant() async throws {
        let body = ParticipationSamples.participant(ref: "MOSAIC-17")
        let first = try harness.send("POST", "/v1/participants", key: writer, body: body)
        XCTAssertEqual(first.status, 201, first.text)
        let id = try XCTUnwrap(first.json["id"] as? String)
        XCTAssertEqual(first.header("Location"), "/v1/participants/\(id)")
        XCTAssertEqual(first.json["active"] as? Bool, true)
        let retry = try harness.send("POST", "/v1/participants", key: writer, body: body)
        XCTAssertEqual(retry.status, 200)
        XCTAssertEqual(retry.json["id"] as? String, id)
        let conflict = try harness.send("POST", "/v1/participants", key: writer,
                                        body: ParticipationSamples.participant(ref: "MOSAIC-17", ageBand: "16_to_17"))
        XCTAssertEqual(conflict.status, 409)
        XCTAssertEqual(conflict.json["existing_id"] as? String, id)
        XCTAssertEqual(try harness.send("GET", "/v1/participants/\(id)", key: writer).json["age_band"] as? String, "13_to_15")
        // Another council may use the same reference for its own participant.
        let other = try await harness.key(try await harness.tenant("redcar"), scopes: [.involvementWrite])
        XCTAssertEqual(try harness.send("POST", "/v1/participants", key: other, body: body).status, 201)
    }

    func testAParticipantIsValidatedWholeAndHasNoNameField() throws {
        let response = try harness.send("POST", "/v1/participants", key: writer,
                                        body: #"{"ref":"","age_band":"teen","name":"Alex","equality":{"gender":"x"}}"#)
        XCTAssertEqual(response.status, 422)
        let fields = Set(((response.json["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String })
        XCTAssertEqual(fields, ["ref", "age_band", "name", "equality.gender"])
    }

    func testNotesNeedTheFreeTextScopeOnEveryPath() async throws {
        let id = try ParticipationSamples.makeParticipant(harness, key: writer, ref: "NOTES-1")
        XCTAssertEqual(try harness.send("GET", "/v1/participants/\(id)", key: writer).json["notes"] as? String, "Prefers afternoon sessions")
        let blind = try await harness.key(council, scopes: [.involvementWrite, .involvementRead])
        let read = try harness.send("GET", "/v1/participants/\(id)", key: blind)
        XCTAssertEqual(read.status, 200)
        XCTAssertFalse(read.json.keys.contains("notes"))
        let list = try harness.send("GET", "/v1/participants", key: blind)
        XCTAssertFalse(list.text.contains("afternoon"))
        XCTAssertFalse(list.items.first?.keys.contains("notes") ?? true)
        let csv = try harness.send("GET", "/v1/participants?format=csv", key: blind)
        XCTAssertEqual(csv.status, 200)
        XCTAssertFalse(csv.text.contains("afternoon"))
        XCTAssertFalse(csv.text.split(separator: "\r\n").first?.contains("notes") ?? true)
        XCTAssertTrue(try harness.send("GET", "/v1/participants?format=csv", key: writer).text.contains("Prefers afternoon sessions"))
        let retry = try harness.send("POST", "/v1/participants", key: blind, body: ParticipationSamples.participant(ref: "NOTES-1"))
        XCTAssertEqual(retry.status, 200)
        XCTAssertFalse(retry.text.contains("afternoon"))
        let patched = try harness.send("PATCH", "/v1/participants/\(id)", key: blind, body: #"{"active":false}"#, headers: ["If-Match": "\"1\""])
        XCTAssertEqual(patched.status, 200, patched.text)
        XCTAssertFalse(patched.text.contains("afternoon"))
    }

    func testACorrectionNeedsIfMatchAndIsKeptInHistoryWithoutTheNotes() async throws {
        let id = try ParticipationSamples.makeParticipant(harness, key: writer, ref: "FIX-1")
        XCTAssertEqual(try harness.send("PATCH", "/v1/participants/\(id)", key: writer, body: #"{"active":false}"#).status, 428)
        let refused = try harness.send("PATCH", "/v1/participants/\(id)", key: writer, body: #"{"ref":"FIX-2"}"#, headers: ["If-Match": "\"1\""])
        XCTAssertEqual(refused.status, 422)
        let patched = try harness.send("PATCH", "/v1/participants/\(id)", key: writer,
                                       body: #"{"active":false,"notes":"Moved to Sandwell","age_band":"16_to_17"}"#, headers: ["If-Match": "\"1\""])
        XCTAssertEqual(patched.status, 200, patched.text)
        XCTAssertEqual(patched.header("ETag"), "\"2\"")
        XCTAssertEqual(patched.json["active"] as? Bool, false)
        XCTAssertEqual(patched.json["notes"] as? String, "Moved to Sandwell")
        XCTAssertEqual(try harness.send("PATCH", "/v1/participants/\(id)", key: writer, body: #"{"active":true}"#,
                                        headers: ["If-Match": "\"1\""]).status, 412)
        let history = try await harness.superuserCount("""
            SELECT count(*) FROM participant_history WHERE participant_id = \(UUID(uuidString: id)!)
               AND changes->'active'->>'to' = 'false' AND changes->'notes' = '{"changed": true}'::jsonb
               AND changes::text NOT LIKE '%Sandwell%'
            """)
        XCTAssertEqual(history, 1)
    }

    func testTheListFiltersByAgeBandActiveAndConsentOnADay() throws {
        let young = try ParticipationSamples.makeParticipant(harness, key: writer, ref: "L-1", ageBand: "8_to_12")
        let teen = try ParticipationSamples.makeParticipant(harness, key: writer, ref: "L-2", ageBand: "16_to_17")
        let inactive = try ParticipationSamples.makeParticipant(harness, key: writer, ref: "L-3", overrides: ["active": "false"])
        let consent = try ParticipationSamples.giveConsent(harness, key: writer, to: teen, givenOn: "2026-01-10",
                                                           purposes: #"["involvement","recruitment_panels"]"#)
        func ids(_ query: String) throws -> Set<String> {
            let page = try harness.send("GET", "/v1/participants?\(query)", key: writer)
            XCTAssertEqual(page.status, 200, "\(query): \(page.text)")
            return Set(page.items.compactMap { $0["id"] as? String })
        }
        XCTAssertEqual(try ids("age_band=8_to_12"), [young])
        XCTAssertEqual(try ids("active=false"), [inactive])
        XCTAssertEqual(try ids("consent_for=recruitment_panels&as_of=2026-01-10"), [teen])
        XCTAssertEqual(try ids("consent_for=recruitment_panels&as_of=2026-01-09"), [])
        XCTAssertEqual(try ids("consent_for=photos_and_media&as_of=2026-02-01"), [])
        let withdrawn = try harness.send("POST", "/v1/participants/\(teen)/consents/\(consent)/withdraw", key: writer, body: #"{"on":"2026-03-01"}"#)
        XCTAssertEqual(withdrawn.status, 200, withdrawn.text)
        XCTAssertEqual(try ids("consent_for=involvement&as_of=2026-02-28"), [teen], "in force the day before its withdrawal")
        XCTAssertEqual(try ids("consent_for=involvement&as_of=2026-03-01"), [], "not in force on the day it is withdrawn")
        XCTAssertEqual(try harness.send("GET", "/v1/participants?as_of=2026-13-01&consent_for=involvement", key: writer).status, 400)
        XCTAssertEqual(try harness.send("GET", "/v1/participants?consent_for=cake", key: writer).status, 400)

        let csv = try harness.send("GET", "/v1/participants?age_band=8_to_12", key: writer, headers: ["Accept": "text/csv"])
        XCTAssertEqual(csv.status, 200)
        let lines = csv.text.split(separator: "\r\n")
        XCTAssertEqual(lines.first, "id,ref,age_band,gender,ethnicity,disability,notes,active,organisation,version,created_at,updated_at")
        XCTAssertEqual(lines.count, 2)
        XCTAssertTrue(lines[1].hasPrefix("\(young),L-1,8_to_12,female,white_british,no,"))
    }
}

final class ConsentTests: XCTestCase {
    var harness: AccessHarness!
    var writer: String!

    override func setUp() async throws {
        harness = try await AccessHarness.start()
        writer = try await harness.key(try await harness.tenant("dudley"), scopes: [.involvementWrite, .involvementRead])
    }

    override func tearDown() async throws {
        await harness?.stop()
    }

    func testAChildUnder13OrOfUnknownAgeCannotConsentForThemselves() throws {
        let expectations: [(String, Bool)] = [
            ("under_5", false), ("5_to_7", false), ("8_to_12", false), ("unknown", false),
            ("13_to_15", true), ("16_to_17", true), ("18_to_25", true), ("adult", true),
        ]
        for (band, mayConsentForSelf) in expectations {
            let participant = try ParticipationSamples.makeParticipant(harness, key: writer, ageBand: band)
            let own = try harness.send("POST", "/v1/participants/\(participant)/consents", key: writer, body: ParticipationSamples.consent(givenBy: "self"))
            XCTAssertEqual(own.status, mayConsentForSelf ? 201 : 422, "\(band): \(own.text)")
            if !mayConsentForSelf {
                let errors = own.json["errors"] as? [[String: Any]] ?? []
                XCTAssertEqual(errors.first?["field"] as? String, "given_by", band)
                XCTAssertTrue((errors.first?["message"] as? String ?? "").contains("under 13"), band)
            }
            for adult in ["parent_carer", "person_with_parental_responsibility"] {
                let given = try harness.send("POST", "/v1/participants/\(participant)/consents", key: writer, body: ParticipationSamples.consent(givenBy: adult))
                XCTAssertEqual(given.status, 201, "\(band), \(adult): \(given.text)")
            }
        }
    }

    func testWithdrawalIsADatedChangeKeptInHistory() async throws {
        let participant = try ParticipationSamples.makeParticipant(harness, key: writer)
        let id = try ParticipationSamples.giveConsent(harness, key: writer, to: participant, givenOn: "2026-02-01",
                                                      purposes: #"["involvement","photos_and_media"]"#)
        let path = "/v1/participants/\(participant)/consents/\(id)"
        let read = try harness.send("GET", path, key: writer)
        XCTAssertEqual(read.json["status"] as? String, "given")
        XCTAssertEqual(read.json["allowed_actions"] as? [String], ["withdraw"])
        XCTAssertEqual(read.json["purposes"] as? [String], ["involvement", "photos_and_media"])
        XCTAssertEqual(try harness.send("POST", path + "/withdraw", key: writer, body: #"{"on":"2026-01-31"}"#).status, 422,
                       "withdrawn before it was given")
        XCTAssertEqual(try harness.send("POST", path + "/withdraw", key: writer, body: #"{"on":"2026-03-01"}"#, headers: ["If-Match": "\"7\""]).status, 412)
        let withdrawn = try harness.send("POST", path + "/withdraw", key: writer, body: #"{"on":"2026-03-01"}"#)
        XCTAssertEqual(withdrawn.status, 200, withdrawn.text)
        XCTAssertEqual(withdrawn.json["status"] as? String, "withdrawn")
        XCTAssertEqual(withdrawn.json["withdrawn_on"] as? String, "2026-03-01")
        XCTAssertEqual(withdrawn.json["allowed_actions"] as? [String], [])
        XCTAssertEqual(try harness.send("POST", path + "/withdraw", key: writer, body: #"{"on":"2026-04-01"}"#).status, 409)
        // Kept: listed still, and its history holds the day.
        let list = try harness.send("GET", "/v1/participants/\(participant)/consents", key: writer)
        XCTAssertEqual(list.items.count, 1)
        XCTAssertEqual(list.items.first?["withdrawn_on"] as? String, "2026-03-01")
        let history = try await harness.superuserCount("""
            SELECT count(*) FROM lifecycle_history WHERE resource_type = 'consent' AND resource_id = \(UUID(uuidString: id)!)
               AND action = 'withdraw' AND details->>'on' = '2026-03-01'
            """)
        XCTAssertEqual(history, 1)
        XCTAssertEqual(try harness.send("GET", "/v1/participants/\(UUID().lowercased)/consents", key: writer).status, 404)
        XCTAssertEqual(try harness.send("GET", "/v1/participants/\(UUID().lowercased)/consents/\(id)", key: writer).status, 404)
    }
}

extension IsolatedResource {
    /// A consent, read at its path below its participant.
    static let consent = IsolatedResource(
        name: "consent", scopes: [.involvementWrite, .involvementRead],
        create: { harness, key in
            let participant = try ParticipationSamples.makeParticipant(harness, key: key)
            return "\(participant)/consents/\(try ParticipationSamples.giveConsent(harness, key: key, to: participant))"
        },
        itemPath: { "/v1/participants/\($0)" }, listPath: nil,
        changes: [("POST", "/withdraw", #"{"on":"2026-03-01"}"#)], deletable: false, csv: false,
        routes: ["GET /v1/participants/{id}/consents/{consent_id}", "POST /v1/participants/{id}/consents/{consent_id}/withdraw"])
}

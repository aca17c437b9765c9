import Foundation
@testable import HeardAPI
import HeardTesting
import Postgres
import XCTest

/// A read by id and its audit row are one statement, sent as one unit: one round trip to
/// PostgreSQL once the key is known, and no answer unless the audit row is stored.
final class ReadInOneRoundTripTests: CouncilTestCase {
    private var key: String!

    override func setUp() async throws {
        try await super.setUp()
        key = try await harness.key(council, scopes: [.feedbackWrite, .feedbackRead, .involvementWrite, .involvementRead,
                                                      .complaintsWrite, .complaintsRead, .freeTextRead])
    }

    /// Round trips `harness` made to PostgreSQL for `GET path`, the key known already.
    private func roundTrips(_ path: String, audited action: String = "read", requestID: String = "one-read-\(UUID().lowercased)") async throws -> Int {
        try await harness.app.access.keys.waitUntilListening()
        XCTAssertEqual(try harness.send("GET", path, key: key).status, 200, "the key is known from here on")
        let before = harness.app.pool.roundTripCount
        let read = try harness.send("GET", path, key: key, headers: ["X-Request-Id": requestID])
        XCTAssertEqual(read.status, 200, read.text)
        let audited = try await harness.auditRows(requestID: requestID)
        XCTAssertEqual(audited.map(\.action), [action], "the read is audited")
        return harness.app.pool.roundTripCount - before
    }

    func testAFeedbackRecordIsReadAndAuditedInOneRoundTrip() async throws {
        let created = try harness.send("POST", "/v1/feedback", key: key, body: FeedbackSamples.body())
        let id = try XCTUnwrap(created.json["id"] as? String, created.text)
        let trips = try await roundTrips("/v1/feedback/\(id)")
        XCTAssertEqual(trips, 1)
    }

    /// A feedback record's responses are answered with the wording of the measure version each
    /// was given against, which the instance reads once: the first read of a version it has not
    /// seen costs a second round trip (the catalogue, no record data), later reads none.
    func testAFeedbackRecordsMeasureVersionsAreReadOnceAndThenKnown() async throws {
        let created = try harness.send("POST", "/v1/feedback", key: key, body: FeedbackSamples.body())
        let id = try XCTUnwrap(created.json["id"] as? String, created.text)
        try await harness.app.access.keys.waitUntilListening()
        XCTAssertEqual(try harness.send("GET", "/v1/measures", key: key).status, 200, "the key is known from here on")
        var trips: [Int] = []
        var answers: [String] = []
        for _ in 0..<2 {
            let before = harness.app.pool.roundTripCount
            let read = try harness.send("GET", "/v1/feedback/\(id)", key: key)
            XCTAssertEqual(read.status, 200, read.text)
            trips.append(harness.app.pool.roundTripCount - before)
            answers.append(try XCTUnwrap(String(data: JSONSerialization.data(withJSONObject: read.json["responses"] ?? [], options: [.sortedKeys]),
                                                encoding: .utf8)))
        }
        XCTAssertEqual(trips, [2, 1])
        XCTAssertEqual(answers[0], answers[1], "the same responses either way")
        XCTAssertEqual((created.json["responses"] as? [[String: Any]])?.compactMap { $0["wording"] as? String },
                       (try harness.send("GET", "/v1/feedback/\(id)", key: key).json["responses"] as? [[String: Any]])?.compactMap { $0["wording"] as? String })
    }

    /// Reads done together (`Table.readAll`) work for a table read alone as for one with joins,
    /// each found record audited under its own request, one not found neither answered nor audited.
    func testReadsTogetherReadARecordOfASingleTable() async throws {
        let created = try harness.send("POST", "/v1/feedback", key: key,
                                       body: FeedbackSamples.body(overrides: ["safeguarding_concern": "true", "kind": #""concern""#]))
        let alert = try XCTUnwrap(UUID(uuidString: (created.json["safeguarding_alert"] as? [String: Any])?["id"] as? String ?? ""), created.text)
        let principal = Principal(keyID: try XCTUnwrap(APIKeySecret(text: key)).id, tenantID: council.id, organisationID: nil,
                                  scopes: [.feedbackRead])
        let run = UUID().lowercased
        let wanted = [ReadsTogether<FeedbackRecord.AlertSummary>.Wanted(id: alert, requestID: "\(run)-a"),
                      .init(id: UUID(), requestID: "\(run)-b"), .init(id: alert, requestID: "\(run)-c")]
        let records = try await harness.app.pool.transaction(settings: principal.databaseSettings) { base in
            try await FeedbackRecord.AlertSummary.table.readAll(wanted, on: TenantTransaction(base: base, principal: principal, requestID: run),
                                                               includeFreeText: false, audited: .safeguardingAlert)
        }
        XCTAssertEqual(records.map { $0?.id }, [alert, nil, alert])
        XCTAssertEqual(records.map { $0?.status }, ["open", nil, "open"])
        for (suffix, expected) in [("a", [alert.lowercased]), ("b", []), ("c", [alert.lowercased])] {
            let audited = try await harness.auditRows(requestID: "\(run)-\(suffix)")
            XCTAssertEqual(audited.map(\.action), expected.map { _ in "read" })
            XCTAssertEqual(audited.compactMap(\.resourceID), expected)
        }
    }

    func testARecordOfTheKitIsReadAndAuditedInOneRoundTrip() async throws {
        let id = try ParticipationSamples.makeParticipant(harness, key: key)
        let trips = try await roundTrips("/v1/participants/\(id)")
        XCTAssertEqual(trips, 1)
    }

    /// A complaint is read with the council's calendar (its days left and whether it is overdue)
    /// and its history, in the same unit as the record and its audit row.
    func testAComplaintWithItsCalendarAndHistoryIsReadAndAuditedInOneRoundTrip() async throws {
        let created = try harness.send("POST", "/v1/complaints", key: key, body: ComplaintSamples.body())
        let id = try XCTUnwrap(created.json["id"] as? String, created.text)
        let acknowledged = try harness.send("POST", "/v1/complaints/\(id)/transitions", key: key,
                                            body: #"{"action":"acknowledge","on":"2025-03-04"}"#, headers: ["If-Match": "\"1\""])
        XCTAssertEqual(acknowledged.status, 200, acknowledged.text)
        let trips = try await roundTrips("/v1/complaints/\(id)")
        XCTAssertEqual(trips, 1)
        let read = try harness.send("GET", "/v1/complaints/\(id)?as_of=2025-03-05", key: key)
        XCTAssertEqual((read.json["history"] as? [[String: Any]])?.compactMap { $0["action"] as? String }, ["receive", "acknowledge"])
        XCTAssertEqual(read.json["working_days_left"] as? Int, 8, "5 March to 17 March, as the calendar counts")
    }

    func testASafeguardingAlertWithItsCalendarIsReadAndAuditedInOneRoundTrip() async throws {
        let created = try harness.send("POST", "/v1/feedback", key: key,
                                       body: FeedbackSamples.body(overrides: ["safeguarding_concern": "true", "kind": #""concern""#]))
        let alert = try XCTUnwrap((created.json["safeguarding_alert"] as? [String: Any])?["id"] as? String, created.text)
        let trips = try await roundTrips("/v1/safeguarding-alerts/\(alert)")
        XCTAssertEqual(trips, 1)
    }

    /// A vacancy is read with the council's calendar and its panel's members, questions and
    /// score totals (the youth ranking), in the same unit as the record and its audit row.
    func testAVacancyWithItsPanelAndRankingIsReadAndAuditedInOneRoundTrip() async throws {
        let vacancy = try RecruitmentSamples.makeVacancy(harness, key: key)
        let member = try RecruitmentSamples.makeMember(harness, key: key)
        XCTAssertEqual(try RecruitmentSamples.putPanel(harness, key: key, vacancy, RecruitmentSamples.panel(members: [(member, nil)])).status, 200)
        try RecruitmentSamples.addCandidates(harness, key: key, vacancy, ["A", "B"])
        let scored = try harness.send("PUT", "/v1/vacancies/\(vacancy)/youth-panel/scores", key: key,
                                      body: RecruitmentSamples.flatScores([("A", 3), ("B", 5)], members: [member]))
        XCTAssertEqual(scored.status, 200, scored.text)
        let trips = try await roundTrips("/v1/vacancies/\(vacancy)")
        XCTAssertEqual(trips, 1)
        let read = try harness.send("GET", "/v1/vacancies/\(vacancy)", key: key)
        XCTAssertEqual(((read.json["youth_panel"] as? [String: Any])?["members"] as? [[String: Any]])?.count, 1)
        XCTAssertEqual(((read.json["youth_panel"] as? [String: Any])?["questions"] as? [[String: Any]])?.count, 2)
        XCTAssertEqual((read.json["youth_ranking"] as? [[String: Any]])?.compactMap { $0["candidate"] as? String }, ["B", "A"])
    }

    /// A commissioning project is read with its involvement per stage (with each activity's
    /// rung), its tender's young commissioners and its history, in the same unit as the record
    /// and its audit row; a monitoring visit with its visitors and recommendations.
    func testACommissioningProjectAndAVisitAreReadAndAuditedInOneRoundTrip() async throws {
        let person = try CommissioningSamples.youngPerson(harness, key: key)
        let activity = try ParticipationSamples.createdID(harness.send("POST", "/v1/activities", key: key, body: """
            {"kind":"commissioning","topic":"short_breaks","service_area":"children_with_disabilities","held_on":"2026-02-01","harts_rung":6}
            """), "make an activity")
        XCTAssertEqual(try ParticipationSamples.join(harness, key: key, activity, [person]).status, 201)
        let project = try CommissioningSamples.awardedProject(harness, key: key, person: person)
        let linked = try harness.send("POST", "/v1/commissioning-projects/\(project)/involvement", key: key,
                                      body: #"{"activity_id":"\#(activity)","stage":"needs_analysis","hours":[{"participant_id":"\#(person)","hours":2}]}"#)
        XCTAssertEqual(linked.status, 201, linked.text)
        let projectTrips = try await roundTrips("/v1/commissioning-projects/\(project)")
        XCTAssertEqual(projectTrips, 1)
        let read = try harness.send("GET", "/v1/commissioning-projects/\(project)", key: key)
        let stages = try XCTUnwrap(read.json["involvement"] as? [[String: Any]], read.text)
        XCTAssertEqual(stages[0]["highest_rung"] as? Int, 6, "the activity's rung, read in the same statement")
        XCTAssertEqual(stages[0]["participants"] as? Int, 1)
        let tender = try XCTUnwrap(read.json["tender"] as? [String: Any], read.text)
        XCTAssertEqual((tender["young_commissioners"] as? [[String: Any]])?.compactMap { $0["participant_id"] as? String }, [person])
        XCTAssertEqual((read.json["history"] as? [[String: Any]])?.compactMap { $0["to_state"] as? String },
                       ["needs_analysis", "specification", "tender_evaluation", "award"])

        let made = try CommissioningSamples.makeVisit(harness, key: key, project: project, visitors: [person],
                                                      recommendations: [("Open on Saturdays", "high"), ("Text before visits", "low")])
        let visit = try XCTUnwrap(made.json["id"] as? String, made.text)
        let visitTrips = try await roundTrips("/v1/visits/\(visit)")
        XCTAssertEqual(visitTrips, 1)
        let visitRead = try harness.send("GET", "/v1/visits/\(visit)?as_of=2026-11-11", key: key)
        XCTAssertEqual(visitRead.json["visitors"] as? [String], [person])
        XCTAssertEqual((visitRead.json["recommendations"] as? [[String: Any]])?.compactMap { $0["text"] as? String },
                       ["Open on Saturdays", "Text before visits"])
        XCTAssertEqual(visitRead.json["revisit_overdue"] as? Bool, true, "due 10 November, as of the 11th")
    }

    /// A record kept below another (a consent below its participant, a learning action below
    /// its complaint) is read in one statement that names the parent too: below another
    /// parent it is not found, and no read is audited.
    func testARecordBelowAParentIsReadInOneRoundTripAndNotFoundBelowAnother() async throws {
        let participant = try ParticipationSamples.makeParticipant(harness, key: key)
        let consent = try ParticipationSamples.giveConsent(harness, key: key, to: participant)
        let consentTrips = try await roundTrips("/v1/participants/\(participant)/consents/\(consent)")
        XCTAssertEqual(consentTrips, 1)

        let complaint = try XCTUnwrap(try harness.send("POST", "/v1/complaints", key: key, body: ComplaintSamples.body()).json["id"] as? String)
        let added = try harness.send("POST", "/v1/complaints/\(complaint)/learning-actions", key: key,
                                     body: #"{"action":"Tell young people when their worker changes","owner_team":"north"}"#)
        let action = try XCTUnwrap(added.json["id"] as? String, added.text)
        let actionTrips = try await roundTrips("/v1/complaints/\(complaint)/learning-actions/\(action)")
        XCTAssertEqual(actionTrips, 1)

        let other = try ParticipationSamples.makeParticipant(harness, key: key)
        let otherComplaint = try XCTUnwrap(try harness.send("POST", "/v1/complaints", key: key,
                                                            body: ComplaintSamples.body(externalID: "case-2")).json["id"] as? String)
        for (path, record) in [("/v1/participants/\(other)/consents/\(consent)", consent),
                               ("/v1/complaints/\(otherComplaint)/learning-actions/\(action)", action)] {
            let read = try harness.send("GET", path, key: key, headers: ["X-Request-Id": "below-another"])
            XCTAssertEqual(read.status, 404, path)
            XCTAssertFalse(read.text.contains(record), "nothing of the record is answered")
            let audited = try await harness.auditRows(requestID: "below-another")
            XCTAssertFalse(audited.contains { $0.action == "read" && $0.outcome == "success" }, "\(path): \(audited)")
        }
    }

    func testAPageOfAListIsReadAndAuditedInOneRoundTrip() async throws {
        for _ in 0..<3 { _ = try ParticipationSamples.makeParticipant(harness, key: key) }
        let trips = try await roundTrips("/v1/participants?limit=2", audited: "list", requestID: "one-read")
        XCTAssertEqual(trips, 1)
        let superuser = PostgresPool(configuration: harness.database.configuration, size: 1)
        defer { superuser.shutdown() }
        let exported = try await superuser.query("SELECT rows_exported FROM audit_events WHERE request_id = 'one-read'")
        XCTAssertEqual(try exported.first?.decode(Int.self, column: "rows_exported"), 2, "the audit row counts the records answered")
    }

    /// The audit row travels in the read's own statement: when it cannot be stored, the
    /// record is not answered.
    func testARecordWhoseAuditRowFailsIsNotAnswered() async throws {
        let created = try harness.send("POST", "/v1/feedback", key: key, body: FeedbackSamples.body())
        let id = try XCTUnwrap(created.json["id"] as? String, created.text)
        let superuser = PostgresPool(configuration: harness.database.configuration, size: 1)
        defer { superuser.shutdown() }
        try await superuser.execute("""
            CREATE FUNCTION refuse_read_audits() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.action = 'read' THEN RAISE EXCEPTION 'audit trail unavailable'; END IF;
                RETURN NEW;
            END $$
            """)
        try await superuser.execute("CREATE TRIGGER refuse_read_audits BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse_read_audits()")
        let read = try harness.send("GET", "/v1/feedback/\(id)", key: key)
        XCTAssertEqual(read.status, 500)
        XCTAssertFalse(read.text.contains(id), "nothing of the record is answered")
    }
}

import Foundation
import HeardAPI
import HeardTesting
import XCTest

extension ParticipationSamples {
    static func makeGroup(_ harness: AccessHarness, key: String, kind: String = "youth_council") throws -> String {
        let response = try harness.send("POST", "/v1/groups", key: key,
                                        body: #"{"name":"Dudley Youth Council","kind":"\#(kind)","service_area":"education"}"#)
        return try createdID(response, "create a group")
    }

    /// Records a course for `participant` and returns the record's id.
    static func train(_ harness: AccessHarness, key: String, _ participant: String, course: String = "recruitment_panel",
                      completedOn: String = "2026-01-10", expiresOn: String? = "2027-01-09") throws -> String {
        let expiry = expiresOn.map { #","expires_on":"\#($0)""# } ?? ""
        let response = try harness.send("POST", "/v1/participants/\(participant)/training", key: key,
                                        body: #"{"course":"\#(course)","completed_on":"\#(completedOn)"\#(expiry)}"#)
        return try createdID(response, "record training")
    }
}

extension IsolatedResource {
    static let group = IsolatedResource(
        name: "group", scopes: [.involvementWrite, .involvementRead],
        create: { harness, key in try ParticipationSamples.makeGroup(harness, key: key) },
        itemPath: { "/v1/groups/\($0)" }, reads: ["/members"], listPath: "/v1/groups",
        changes: [("POST", "/members", #"{"participant_id":"00000000-0000-4000-8000-000000000000","joined_on":"2026-01-01"}"#)],
        deletable: false, csv: false,
        routes: ["POST /v1/groups", "GET /v1/groups/{id}", "GET /v1/groups", "POST /v1/groups/{id}/members", "GET /v1/groups/{id}/members"])

    static let membership = IsolatedResource(
        name: "group_membership", scopes: [.involvementWrite, .involvementRead],
        create: { harness, key in
            let group = try ParticipationSamples.makeGroup(harness, key: key)
            let participant = try ParticipationSamples.makeParticipant(harness, key: key)
            let response = try harness.send("POST", "/v1/groups/\(group)/members", key: key,
                                            body: #"{"participant_id":"\#(participant)","joined_on":"2026-01-01"}"#)
            let id = try ParticipationSamples.createdID(response, "add a member")
            return "\(group)/members/\(id)"
        },
        itemPath: { "/v1/groups/\($0)" }, listPath: nil,
        changes: [("POST", "/leave", #"{"on":"2026-06-01"}"#)], deletable: false, csv: false,
        routes: ["GET /v1/groups/{id}/members/{membership_id}", "POST /v1/groups/{id}/members/{membership_id}/leave"])

    static let training = IsolatedResource(
        name: "training_record", scopes: [.involvementWrite, .involvementRead],
        create: { harness, key in
            let participant = try ParticipationSamples.makeParticipant(harness, key: key)
            return "\(participant)/training/\(try ParticipationSamples.train(harness, key: key, participant))"
        },
        itemPath: { "/v1/participants/\($0)" }, listPath: nil, changes: [], deletable: false, csv: false,
        routes: ["POST /v1/participants/{id}/training", "GET /v1/participants/{id}/training/{training_id}"])

    static let reward = IsolatedResource(
        name: "reward", scopes: [.involvementWrite, .involvementRead],
        create: { harness, key in
            let participant = try ParticipationSamples.makeParticipant(harness, key: key)
            let response = try harness.send("POST", "/v1/participants/\(participant)/rewards", key: key,
                                            body: #"{"kind":"voucher","value_pence":2000,"given_on":"2026-02-01"}"#)
            let id = try ParticipationSamples.createdID(response, "record a reward")
            return "\(participant)/rewards/\(id)"
        },
        itemPath: { "/v1/participants/\($0)" }, listPath: nil, changes: [], deletable: false, csv: false,
        routes: ["POST /v1/participants/{id}/rewards", "GET /v1/participants/{id}/rewards/{reward_id}"])
}

final class GroupsTrainingRewardsTests: XCTestCase {
    var harness: AccessHarness!
    var writer: String!

    override func setUp() async throws {
        harness = try await AccessHarness.start()
        writer = try await harness.key(try await harness.tenant("dudley"), scopes: [.involvementWrite, .involvementRead])
    }

    override func tearDown() async throws {
        await harness?.stop()
    }

    private func ids(_ query: String) throws -> Set<String> {
        let page = try harness.send("GET", "/v1/participants?\(query)", key: writer)
        XCTAssertEqual(page.status, 200, "\(query): \(page.text)")
        return Set(page.items.compactMap { $0["id"] as? String })
    }

    func testTrainingIsCurrentFromCompletionToItsExpiryDayIncluded() throws {
        let trained = try ParticipationSamples.makeParticipant(harness, key: writer)
        let lapsed = try ParticipationSamples.makeParticipant(harness, key: writer)
        let forever = try ParticipationSamples.makeParticipant(harness, key: writer)
        _ = try ParticipationSamples.train(harness, key: writer, trained, completedOn: "2026-01-10", expiresOn: "2027-01-09")
        _ = try ParticipationSamples.train(harness, key: writer, lapsed, completedOn: "2024-01-10", expiresOn: "2025-01-09")
        _ = try ParticipationSamples.train(harness, key: writer, forever, course: "young_commissioner", completedOn: "2020-05-01", expiresOn: nil)
        XCTAssertEqual(try ids("trained_for=recruitment_panel&as_of=2026-01-09"), [], "not before completion")
        XCTAssertEqual(try ids("trained_for=recruitment_panel&as_of=2026-01-10"), [trained])
        XCTAssertEqual(try ids("trained_for=recruitment_panel&as_of=2027-01-09"), [trained], "the expiry day itself is current")
        XCTAssertEqual(try ids("trained_for=recruitment_panel&as_of=2027-01-10"), [], "expired the day after")
        XCTAssertEqual(try ids("trained_for=recruitment_panel&as_of=2025-01-09"), [lapsed])
        XCTAssertEqual(try ids("trained_for=young_commissioner&as_of=2040-01-01"), [forever], "no expiry: current for good")
        let backwards = try harness.send("POST", "/v1/participants/\(trained)/training", key: writer,
                                         body: #"{"course":"safeguarding","completed_on":"2026-03-01","expires_on":"2026-02-28"}"#)
        XCTAssertEqual(backwards.status, 422)
        XCTAssertEqual((backwards.json["errors"] as? [[String: Any]])?.first?["field"] as? String, "expires_on")
        let list = try harness.send("GET", "/v1/participants/\(trained)/training?course=recruitment_panel", key: writer)
        XCTAssertEqual(list.items.count, 1)
        XCTAssertEqual(list.items.first?["expires_on"] as? String, "2027-01-09")
    }

    func testMembersJoinOnceAndLeaveOnADay() throws {
        let group = try ParticipationSamples.makeGroup(harness, key: writer, kind: "children_in_care_council")
        let participant = try ParticipationSamples.makeParticipant(harness, key: writer)
        let body = #"{"participant_id":"\#(participant)","joined_on":"2026-02-01"}"#
        let joined = try harness.send("POST", "/v1/groups/\(group)/members", key: writer, body: body)
        XCTAssertEqual(joined.status, 201, joined.text)
        let membership = try XCTUnwrap(joined.json["id"] as? String)
        XCTAssertEqual(joined.json["allowed_actions"] as? [String], ["leave"])
        let again = try harness.send("POST", "/v1/groups/\(group)/members", key: writer, body: body)
        XCTAssertEqual(again.status, 409)
        XCTAssertEqual(again.json["type"] as? String, "urn:heard:problem:already-a-member")
        XCTAssertEqual(again.json["existing_id"] as? String, membership)
        let stranger = try harness.send("POST", "/v1/groups/\(group)/members", key: writer,
                                        body: #"{"participant_id":"\#(UUID().lowercased)","joined_on":"2026-02-01"}"#)
        XCTAssertEqual(stranger.status, 422)
        XCTAssertEqual((stranger.json["errors"] as? [[String: Any]])?.first?["field"] as? String, "participant_id")

        XCTAssertEqual(try ids("group=\(group)&as_of=2026-01-31"), [])
        XCTAssertEqual(try ids("group=\(group)&as_of=2026-02-01"), [participant])
        let path = "/v1/groups/\(group)/members/\(membership)"
        XCTAssertEqual(try harness.send("POST", path + "/leave", key: writer, body: #"{"on":"2026-01-15"}"#).status, 422)
        let left = try harness.send("POST", path + "/leave", key: writer, body: #"{"on":"2026-07-01"}"#)
        XCTAssertEqual(left.status, 200, left.text)
        XCTAssertEqual(left.json["left_on"] as? String, "2026-07-01")
        XCTAssertEqual(try harness.send("POST", path + "/leave", key: writer, body: #"{"on":"2026-08-01"}"#).status, 409)
        XCTAssertEqual(try ids("group=\(group)&as_of=2026-06-30"), [participant])
        XCTAssertEqual(try ids("group=\(group)&as_of=2026-07-01"), [], "no longer a member on the day they left")
        // Rejoining after leaving is a new membership; both are listed, on the group and on the participant.
        XCTAssertEqual(try harness.send("POST", "/v1/groups/\(group)/members", key: writer,
                                        body: #"{"participant_id":"\#(participant)","joined_on":"2026-09-01"}"#).status, 201)
        XCTAssertEqual(try harness.send("GET", "/v1/groups/\(group)/members", key: writer).items.count, 2)
        XCTAssertEqual(try harness.send("GET", "/v1/groups/\(group)/members?status=member", key: writer).items.count, 1)
        let memberships = try harness.send("GET", "/v1/participants/\(participant)/groups", key: writer)
        XCTAssertEqual(memberships.items.compactMap { $0["group_id"] as? String }, [group, group])
        XCTAssertEqual(try harness.send("GET", "/v1/groups?kind=children_in_care_council", key: writer).items.count, 1)
        XCTAssertEqual(try harness.send("GET", "/v1/groups?kind=youth_council", key: writer).items.count, 0)
    }

    func testRewardsAreRecordedWithTheirValue() throws {
        let participant = try ParticipationSamples.makeParticipant(harness, key: writer)
        let given = try harness.send("POST", "/v1/participants/\(participant)/rewards", key: writer,
                                     body: #"{"kind":"voucher","value_pence":1500,"given_on":"2026-03-02"}"#)
        XCTAssertEqual(given.status, 201, given.text)
        XCTAssertEqual(given.json["value_pence"] as? Int, 1500)
        XCTAssertTrue(given.json["activity_id"] is NSNull)
        let id = try XCTUnwrap(given.json["id"] as? String)
        XCTAssertEqual(given.header("Location"), "/v1/participants/\(participant)/rewards/\(id)")
        XCTAssertEqual(try harness.send("GET", "/v1/participants/\(participant)/rewards/\(id)", key: writer).status, 200)
        let wrong = try harness.send("POST", "/v1/participants/\(participant)/rewards", key: writer,
                                     body: #"{"kind":"cake","value_pence":-1,"given_on":"2026-03-02","activity_id":"\#(UUID().lowercased)"}"#)
        XCTAssertEqual(wrong.status, 422)
        XCTAssertEqual(Set((wrong.json["errors"] as? [[String: Any]] ?? []).compactMap { $0["field"] as? String }),
                       ["kind", "value_pence", "activity_id"])
        XCTAssertEqual(try harness.send("GET", "/v1/participants/\(participant)/rewards?from=2026-03-02&to=2026-03-02", key: writer).items.count, 1)
        XCTAssertEqual(try harness.send("GET", "/v1/participants/\(participant)/rewards?from=2026-03-03", key: writer).items.count, 0)
        XCTAssertEqual(try harness.send("POST", "/v1/participants/\(UUID().lowercased)/rewards", key: writer,
                                        body: #"{"kind":"voucher","given_on":"2026-03-02"}"#).status, 404)
    }
}

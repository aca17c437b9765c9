import Foundation
import HeardAPI
import HeardTesting
import XCTest

/// One line per resource type: how to make one, where it lives, what can be done to it. The
/// isolation test proves, for each, that another tenant's key and a key of another partner
/// organisation in the same tenant get 404 on read, update and delete, and never see it in a
/// list (or CSV export). Every new area adds its resources here.
struct IsolatedResource: Sendable {
    var name: String
    /// What a key needs to create, read, list, change and delete it.
    var scopes: [Scope]
    /// Makes one record with `key` and returns its id.
    var create: @Sendable (AccessHarness, String) async throws -> String
    var itemPath: @Sendable (String) -> String
    /// Where it is listed, once it is.
    var listPath: String?
    /// Changes to try: method, path below the item, body.
    var changes: [(method: String, suffix: String, body: String?)]
    var deletable: Bool
    var csv: Bool

    static let all: [IsolatedResource] = [.apiKey, .feedback, .safeguardingAlert, .participant, .consent, .group, .membership, .training, .reward, .activity]

    static let apiKey = IsolatedResource(
        name: "api_key", scopes: [.admin],
        create: { harness, key in
            let response = try harness.send("POST", "/v1/admin/keys", key: key, body: #"{"name":"isolated","scopes":["feedback:read"]}"#)
            guard response.status == 201, let id = response.json["id"] as? String else {
                throw IsolationFailure(description: "could not create an api_key: \(response.status) \(response.text)")
            }
            return id
        },
        itemPath: { "/v1/admin/keys/\($0)" }, listPath: "/v1/admin/keys",
        changes: [("POST", "/revoke", nil)], deletable: false, csv: false)
}

extension IsolatedResource {
    static let feedback = IsolatedResource(
        name: "feedback", scopes: [.feedbackWrite, .feedbackRead],
        create: { harness, key in
            let response = try harness.send("POST", "/v1/feedback", key: key, body: FeedbackSamples.body(externalID: UUID().lowercased))
            guard response.status == 201, let id = response.json["id"] as? String else {
                throw IsolationFailure(description: "could not create feedback: \(response.status) \(response.text)")
            }
            return id
        },
        itemPath: { "/v1/feedback/\($0)" }, listPath: "/v1/feedback", changes: [], deletable: false, csv: true)
}

extension IsolatedResource {
    static let safeguardingAlert = IsolatedResource(
        name: "safeguarding_alert", scopes: [.feedbackWrite, .feedbackRead],
        create: { harness, key in
            let response = try harness.send("POST", "/v1/feedback", key: key,
                                            body: FeedbackSamples.body(externalID: UUID().lowercased, overrides: ["safeguarding_concern": "true"]))
            guard response.status == 201, let id = (response.json["safeguarding_alert"] as? [String: Any])?["id"] as? String else {
                throw IsolationFailure(description: "could not raise a safeguarding alert: \(response.status) \(response.text)")
            }
            return id
        },
        itemPath: { "/v1/safeguarding-alerts/\($0)" }, listPath: "/v1/safeguarding-alerts",
        changes: [("POST", "/acknowledge", #"{"acknowledged_by":"Duty manager","action_taken":"Referred"}"#)],
        deletable: false, csv: false)
}

struct IsolationFailure: Error, CustomStringConvertible {
    let description: String
}

final class IsolationTests: XCTestCase {
    func testEveryResourceIsInvisibleToOtherTenantsAndOtherOrganisations() async throws {
        let harness = try await AccessHarness.start()
        let councilA = try await harness.tenant("council-a"), councilB = try await harness.tenant("council-b")
        let partnerX = try await harness.organisation("partner-x", in: councilA)
        let partnerY = try await harness.organisation("partner-y", in: councilA)

        for resource in IsolatedResource.all {
            let owner = try await harness.key(councilA, scopes: resource.scopes, organisation: partnerX)
            let strangers = [
                ("another tenant", try await harness.key(councilB, scopes: resource.scopes)),
                ("another organisation", try await harness.key(councilA, scopes: resource.scopes, organisation: partnerY)),
            ]
            let id = try await resource.create(harness, owner)
            XCTAssertEqual(try harness.send("GET", resource.itemPath(id), key: owner).status, 200, "\(resource.name): its owner reads it")
            if let listPath = resource.listPath {
                XCTAssertTrue(try listed(id, harness, listPath, owner), "\(resource.name): its owner lists it")
            }

            for (who, key) in strangers {
                let read = try harness.send("GET", resource.itemPath(id), key: key)
                XCTAssertEqual(read.status, 404, "\(resource.name): \(who) reads it")
                XCTAssertEqual(read.header("Content-Type"), "application/problem+json")
                for change in resource.changes {
                    // With `If-Match: *`, so a change that needs it is judged on the record, not refused with 428.
                    XCTAssertEqual(try harness.send(change.method, resource.itemPath(id) + change.suffix, key: key, body: change.body,
                                                    headers: ["If-Match": "*"]).status, 404,
                                   "\(resource.name): \(who) tries \(change.method) \(change.suffix)")
                }
                if resource.deletable {
                    XCTAssertEqual(try harness.send("DELETE", resource.itemPath(id), key: key).status, 404, "\(resource.name): \(who) deletes it")
                }
                if let listPath = resource.listPath {
                    XCTAssertFalse(try listed(id, harness, listPath, key), "\(resource.name): \(who) lists it")
                    if resource.csv {
                        let csv = try harness.send("GET", listPath, key: key, headers: ["Accept": "text/csv"])
                        XCTAssertFalse(csv.text.contains(id), "\(resource.name): \(who) exports it")
                    }
                }
            }
            // Nothing the strangers tried changed it.
            let after = try harness.send("GET", resource.itemPath(id), key: owner)
            XCTAssertEqual(after.status, 200)
            if resource.name == "api_key" { XCTAssertTrue(after.json["revoked_at"] is NSNull, "a stranger revoked the key") }
        }
        await harness.stop()
    }

    func testAuditTrailsAreSeparate() async throws {
        let harness = try await AccessHarness.start()
        let councilA = try await harness.tenant("council-a"), councilB = try await harness.tenant("council-b")
        let keyA = try await harness.key(councilA, scopes: [.admin, .auditRead])
        let keyB = try await harness.key(councilB, scopes: [.admin, .auditRead])
        let marked = try harness.send("GET", "/v1/admin/keys", key: keyA, headers: ["X-Request-Id": "council-a-secret-request"])
        XCTAssertEqual(marked.status, 200)
        let seenByA = try harness.send("GET", "/v1/audit", key: keyA).items.compactMap { $0["request_id"] as? String }
        let seenByB = try harness.send("GET", "/v1/audit", key: keyB).items.compactMap { $0["request_id"] as? String }
        XCTAssertTrue(seenByA.contains("council-a-secret-request"))
        XCTAssertFalse(seenByB.contains("council-a-secret-request"))
        await harness.stop()
    }

    private func listed(_ id: String, _ harness: AccessHarness, _ path: String, _ key: String) throws -> Bool {
        var target = "\(path)?limit=500"
        while true {
            let page = try harness.send("GET", target, key: key)
            guard page.status == 200 else { return false }
            if page.items.contains(where: { $0["id"] as? String == id }) { return true }
            guard let next = page.json["next_cursor"] as? String else { return false }
            target = "\(path)?limit=500&cursor=\(next)"
        }
    }
}

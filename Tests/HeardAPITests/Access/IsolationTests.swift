import Foundation
import HeardAPI
import HeardTesting
import XCTest

/// One entry per tenant resource: how to make one, where it lives, what can be done to it. The
/// isolation test proves, for each, that another tenant's key (and, for a resource a partner
/// organisation owns, a key of another organisation in the same tenant) gets 404 on its read
/// and every write, changes nothing, and never sees it in a list (or CSV export).
/// `testEveryTenantRouteHasAnEntry` fails for a `/v1` route that no entry claims: every new
/// area adds its resources here, with all their routes.
struct IsolatedResource: Sendable {
    typealias Make = @Sendable (AccessHarness, String) async throws -> String

    var name: String
    /// What a key needs to create, read, list, change and delete it.
    var scopes: [Scope]
    /// Whether a partner organisation's key owns what it makes (else records are the tenant's,
    /// shared by its organisations, and made by council-wide keys).
    var organisationScoped = true
    /// Makes one record with `key` and returns its id (as `itemPath` takes it).
    var create: Make
    /// Other ways to make one; each record made is tried like `create`'s.
    var alsoCreate: [Make] = []
    /// Where one is, and whether it is read there.
    var itemPath: (@Sendable (String) -> String)?
    var readable = true
    /// Reads below the item (e.g. `/members`), each 404 for a stranger.
    var reads: [String] = []
    /// Where it is listed, once it is, and the field of a listed item that holds its id.
    var listPath: String?
    var listedID = "id"
    /// Writes to try on it: method, path below the item, body (sent with `If-Match: *`, so a
    /// change that needs it is judged on the record, not refused with 428).
    var changes: [(method: String, suffix: String, body: String?)]
    var deletable: Bool
    var csv: Bool
    /// Every route (`METHOD /template`) the entry exercises: making, reading, listing,
    /// changing and deleting it.
    var routes: [String]

    static let all: [IsolatedResource] = [.apiKey, .feedback, .safeguardingAlert, .measure, .closureDay, .auditEvent,
                                          .participant, .consent, .group, .membership, .training, .reward, .activity, .complaint,
                                          .learningAction, .complaintCategory,
                                          .youSaidItem, .youSaidMilestone, .youSaidRound, .commissioningProject, .commissioningVisit, .vacancy]

    /// Tenant-wide routes that serve no record with an id, and where their isolation is tested.
    static let notRecords: [String: String] = [
        "GET /v1/admin/settings": "IsolationTests.testSettingsAreEachTenantsOwn",
        "PATCH /v1/admin/settings": "IsolationTests.testSettingsAreEachTenantsOwn",
        "GET /v1/reports/participation": "counts over the caller's tenant's records, which the entries above prove it alone sees",
        "GET /v1/reports/complaints": "counts over the caller's tenant's records (ComplaintReportTests: another council's report counts 0)",
        "GET /v1/calendar/working-days": "ComplaintsTests.testTheCalendarIsSharedWithAnyKey: each key's tenant's closure days",
        "GET /v1/complaint-procedures": "ComplaintsTests.testProceduresAreDataAndOnlyTheCorporateOneChanges",
        "PATCH /v1/complaint-procedures/{procedure}": "ComplaintsTests.testProceduresAreDataAndOnlyTheCorporateOneChanges",
        "GET /v1/events": "EventFeedTests.testAnotherTenantsEventsAreNeverSeen and testAPartnersKeySeesOnlyItsOrganisationsEvents",
        "GET /v1/reports/commissioning": "counts over the caller's tenant's records (CommissioningVisitTests.testTheFiguresAgainstAFixture: another council's report counts 0)",
        "GET /v1/reports/recruitment": "counts over the caller's tenant's records (RecruitmentReportTests: another council's report counts 0)",
    ]

    /// POSTs `body` to `path` with `key` and returns `field` of the answer (a path into objects).
    static func create(_ harness: AccessHarness, _ key: String, _ path: String, _ body: String, _ field: String...) throws -> String {
        let response = try harness.send("POST", path, key: key, body: body)
        var value: Any? = response.json
        for name in field { value = (value as? [String: Any])?[name] }
        guard (200...201).contains(response.status), let id = value as? String else {
            throw IsolationFailure(description: "POST \(path) made nothing: \(response.status) \(response.text)")
        }
        return id
    }

    static let apiKey = IsolatedResource(
        name: "api_key", scopes: [.admin],
        create: { try create($0, $1, "/v1/admin/keys", #"{"name":"isolated","scopes":["admin"]}"#, "id") },
        itemPath: { "/v1/admin/keys/\($0)" }, listPath: "/v1/admin/keys",
        changes: [("POST", "/revoke", nil)], deletable: false, csv: false,
        routes: ["POST /v1/admin/keys", "GET /v1/admin/keys/{id}", "GET /v1/admin/keys", "POST /v1/admin/keys/{id}/revoke"])
}

extension IsolatedResource {
    static let feedback = IsolatedResource(
        name: "feedback", scopes: [.feedbackWrite, .feedbackRead],
        create: { try create($0, $1, "/v1/feedback", FeedbackSamples.body(externalID: UUID().lowercased), "id") },
        alsoCreate: [{ harness, key in
            let response = try harness.send("POST", "/v1/feedback/batch", key: key, body: "[\(FeedbackSamples.body(externalID: UUID().lowercased))]")
            guard let id = (response.json["results"] as? [[String: Any]])?.first?["id"] as? String else {
                throw IsolationFailure(description: "POST /v1/feedback/batch made nothing: \(response.status) \(response.text)")
            }
            return id
        }],
        itemPath: { "/v1/feedback/\($0)" }, listPath: "/v1/feedback",
        changes: [("PATCH", "", #"{"team":"stranger"}"#)], deletable: false, csv: true,
        routes: ["POST /v1/feedback", "POST /v1/feedback/batch", "GET /v1/feedback/{id}", "GET /v1/feedback", "PATCH /v1/feedback/{id}"])
}

extension IsolatedResource {
    static let safeguardingAlert = IsolatedResource(
        name: "safeguarding_alert", scopes: [.feedbackWrite, .feedbackRead],
        create: {
            try create($0, $1, "/v1/feedback", FeedbackSamples.body(externalID: UUID().lowercased, overrides: ["safeguarding_concern": "true"]),
                       "safeguarding_alert", "id")
        },
        itemPath: { "/v1/safeguarding-alerts/\($0)" }, listPath: "/v1/safeguarding-alerts",
        changes: [("POST", "/acknowledge", #"{"acknowledged_by":"Duty manager","action_taken":"Referred"}"#)], deletable: false, csv: false,
        routes: ["GET /v1/safeguarding-alerts/{id}", "GET /v1/safeguarding-alerts", "POST /v1/safeguarding-alerts/{id}/acknowledge"])
}

extension IsolatedResource {
    static let measure = IsolatedResource(
        name: "measure", scopes: [.admin], organisationScoped: false,
        create: {
            try create($0, $1, "/v1/measures", """
                {"code":"isolated_\(UUID().uuidString.prefix(8).lowercased())","group":"other","wording":"Isolated",
                 "scale":{"min":1,"max":2,"agree_from":2}}
                """, "id")
        },
        itemPath: { "/v1/measures/\($0)" }, listPath: "/v1/measures",
        changes: [("PATCH", "", #"{"wording":"Changed by a stranger"}"#)], deletable: false, csv: false,
        routes: ["POST /v1/measures", "GET /v1/measures/{id}", "GET /v1/measures", "PATCH /v1/measures/{id}"])
}

extension IsolatedResource {
    /// A closure day's id is its date; it is listed, and deleted, never read alone.
    static let closureDay = IsolatedResource(
        name: "closure_day", scopes: [.admin], organisationScoped: false,
        create: { try create($0, $1, "/v1/admin/closure-days", #"{"day":"2031-01-02","reason":"Isolated"}"#, "day") },
        itemPath: { "/v1/admin/closure-days/\($0)" }, readable: false, listPath: "/v1/admin/closure-days", listedID: "day",
        changes: [], deletable: true, csv: false,
        routes: ["POST /v1/admin/closure-days", "GET /v1/admin/closure-days", "DELETE /v1/admin/closure-days/{day}"])
}

extension IsolatedResource {
    /// An audit event is made by any audited request; its id here is the request's.
    static let auditEvent = IsolatedResource(
        name: "audit_event", scopes: [.admin, .auditRead],
        create: { harness, key in
            let requestID = "isolated-\(UUID().lowercased)"
            let response = try harness.send("GET", "/v1/admin/keys", key: key, headers: ["X-Request-Id": requestID])
            guard response.status == 200 else { throw IsolationFailure(description: "GET /v1/admin/keys: \(response.status)") }
            return requestID
        },
        listPath: "/v1/audit", listedID: "request_id", changes: [], deletable: false, csv: false,
        routes: ["GET /v1/audit"])
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
            let owner = try await harness.key(councilA, scopes: resource.scopes, organisation: resource.organisationScoped ? partnerX : nil)
            var strangers = [("another tenant", try await harness.key(councilB, scopes: resource.scopes))]
            if resource.organisationScoped {
                strangers.append(("another organisation", try await harness.key(councilA, scopes: resource.scopes, organisation: partnerY)))
            }
            for make in [resource.create] + resource.alsoCreate {
                let id = try await make(harness, owner)
                let what = "\(resource.name) \(id)"
                let before = try resource.itemPath.flatMap { resource.readable ? try harness.send("GET", $0(id), key: owner) : nil }
                if let before { XCTAssertEqual(before.status, 200, "\(what): its owner reads it") }
                if let list = resource.listPath {
                    XCTAssertTrue(try listed(id, resource, harness, list, owner), "\(what): its owner lists it")
                }

                for (who, key) in strangers {
                    if let path = resource.itemPath?(id) {
                        for suffix in (resource.readable ? [""] : []) + resource.reads {
                            let read = try harness.send("GET", path + suffix, key: key)
                            XCTAssertEqual(read.status, 404, "\(what): \(who) reads \(suffix)")
                            XCTAssertEqual(read.header("Content-Type"), "application/problem+json")
                        }
                        for change in resource.changes {
                            let response = try harness.send(change.method, path + change.suffix, key: key, body: change.body, headers: ["If-Match": "*"])
                            XCTAssertEqual(response.status, 404, "\(what): \(who) tries \(change.method) \(change.suffix): \(response.text)")
                        }
                        if resource.deletable {
                            XCTAssertEqual(try harness.send("DELETE", path, key: key).status, 404, "\(what): \(who) deletes it")
                        }
                    }
                    if let list = resource.listPath {
                        XCTAssertFalse(try listed(id, resource, harness, list, key), "\(what): \(who) lists it")
                        if resource.csv {
                            let csv = try harness.send("GET", list, key: key, headers: ["Accept": "text/csv"])
                            XCTAssertFalse(csv.text.contains(id), "\(what): \(who) exports it")
                        }
                    }
                }
                // Nothing the strangers tried changed it.
                if let before, let path = resource.itemPath?(id) {
                    let after = try harness.send("GET", path, key: owner)
                    XCTAssertEqual(after.status, 200)
                    XCTAssertEqual(after.text, before.text, "\(what): a stranger changed it")
                }
                if let list = resource.listPath {
                    XCTAssertTrue(try listed(id, resource, harness, list, owner), "\(what): its owner still lists it")
                }
            }
        }
        await harness.stop()
    }

    func testSettingsAreEachTenantsOwn() async throws {
        let harness = try await AccessHarness.start()
        let keyA = try await harness.key(try await harness.tenant("council-a"), scopes: [.admin])
        let keyB = try await harness.key(try await harness.tenant("council-b"), scopes: [.admin])
        let changed = try harness.send("PATCH", "/v1/admin/settings", key: keyA, body: #"{"fatigue_topic_days":91}"#, headers: ["If-Match": "*"])
        XCTAssertEqual(changed.status, 200, changed.text)
        XCTAssertEqual(try harness.send("GET", "/v1/admin/settings", key: keyB).json["fatigue_topic_days"] as? Int, 90, "another tenant's change")
        let other = try harness.send("PATCH", "/v1/admin/settings", key: keyB, body: #"{"fatigue_topic_days":30}"#, headers: ["If-Match": "*"])
        XCTAssertEqual(other.status, 200, other.text)
        XCTAssertEqual(try harness.send("GET", "/v1/admin/settings", key: keyA).json["fatigue_topic_days"] as? Int, 91, "another tenant's change")
        await harness.stop()
    }

    /// Every route under `/v1` that needs a key serves a tenant's resource: an entry above must
    /// exercise it.
    func testEveryTenantRouteHasAnEntry() throws {
        let routes = try OpenAPIRoutesTests.routes()
            .filter { $0.template.hasPrefix("/v1/") && $0.metadata[AccessControl.requiredScopeKey] != nil }
            .map { "\($0.method) \($0.template)" }
        XCTAssertFalse(routes.isEmpty)
        let claimed = IsolatedResource.all.reduce(into: Set<String>()) { $0.formUnion($1.routes) }
        for route in routes where !claimed.contains(route) && IsolatedResource.notRecords[route] == nil {
            XCTFail("\(route) is not exercised by any IsolatedResource: add it to its resource's entry (or a new one)")
        }
        for route in claimed.union(IsolatedResource.notRecords.keys).subtracting(routes) {
            XCTFail("an IsolatedResource names \(route), which is not a route")
        }
    }

    private func listed(_ id: String, _ resource: IsolatedResource, _ harness: AccessHarness, _ path: String, _ key: String) throws -> Bool {
        var target = path
        while true {
            let page = try harness.send("GET", target, key: key)
            guard page.status == 200 else { return false }
            if page.items.contains(where: { $0[resource.listedID] as? String == id }) { return true }
            guard let next = page.json["next_cursor"] as? String else { return false }
            target = "\(path)?cursor=\(next)"
        }
    }
}

extension IsolatedResource {
    static let complaint = IsolatedResource(
        name: "complaint", scopes: [.complaintsWrite, .complaintsRead],
        create: { try create($0, $1, "/v1/complaints", ComplaintSamples.body(externalID: UUID().lowercased), "id") },
        itemPath: { "/v1/complaints/\($0)" }, reads: ["/learning-actions"], listPath: "/v1/complaints",
        changes: [("POST", "/transitions", #"{"action":"withdraw"}"#), ("POST", "/learning-actions", #"{"action":"A stranger's"}"#)],
        deletable: false, csv: true,
        routes: ["POST /v1/complaints", "GET /v1/complaints/{id}", "GET /v1/complaints", "POST /v1/complaints/{id}/transitions",
                 "GET /v1/complaints/{id}/learning-actions"])
}

extension IsolatedResource {
    /// Its id here is "<complaint id>/<learning action id>": it lives under its complaint.
    static let learningAction = IsolatedResource(
        name: "learning_action", scopes: [.complaintsWrite, .complaintsRead],
        create: { harness, key in
            let complaintID = try create(harness, key, "/v1/complaints", ComplaintSamples.body(externalID: UUID().lowercased), "id")
            return "\(complaintID)/" + (try create(harness, key, "/v1/complaints/\(complaintID)/learning-actions", #"{"action":"Lesson"}"#, "id"))
        },
        itemPath: { path in
            let parts = path.split(separator: "/")
            return "/v1/complaints/\(parts.first ?? "")/learning-actions/\(parts.last ?? "")"
        },
        changes: [("PATCH", "", #"{"status":"done"}"#)], deletable: false, csv: false,
        routes: ["POST /v1/complaints/{id}/learning-actions", "GET /v1/complaints/{id}/learning-actions/{action_id}",
                 "PATCH /v1/complaints/{id}/learning-actions/{action_id}"])
}

extension IsolatedResource {
    /// A council's own complaint category: made by a council-wide admin key, read by every key of the tenant.
    static let complaintCategory = IsolatedResource(
        name: "complaint_category", scopes: [.admin], organisationScoped: false,
        create: {
            try create($0, $1, "/v1/complaint-categories", #"{"code":"isolated_\#(UUID().uuidString.prefix(8).lowercased())","label":"Isolated"}"#, "code")
        },
        itemPath: { "/v1/complaint-categories/\($0)" }, listPath: "/v1/complaint-categories", listedID: "code",
        changes: [("PATCH", "", #"{"label":"Changed by a stranger"}"#)], deletable: false, csv: false,
        routes: ["POST /v1/complaint-categories", "GET /v1/complaint-categories/{code}", "GET /v1/complaint-categories",
                 "PATCH /v1/complaint-categories/{code}"])
}

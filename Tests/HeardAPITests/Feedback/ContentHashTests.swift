import Foundation
@testable import HeardAPI
import XCTest

/// The content hash decides whether a retry is the same record (200) or a conflict (409). It is
/// stored with every record, so its canonical form must never change: a record stored by an
/// earlier release must still match its retry. These digests were computed by the first
/// release's canonical form (the minimal one also by Python's hashlib from the documented
/// form: each part as its UTF-8 length, ':', its bytes) and must stay as they are.
final class ContentHashTests: XCTestCase {
    let measures = [
        Measure(id: UUID(uuidString: "11111111-1111-4111-8111-111111111111")!, code: "listened_to", group: .principle,
                wording: "I am listened to", version: 1, scale: .init(min: 1, max: 5, agreeFrom: 4, labels: []), active: true),
        Measure(id: UUID(uuidString: "22222222-2222-4222-8222-222222222222")!, code: "worker_knows_me", group: .principle,
                wording: "My worker knows me", version: 3, scale: .init(min: 1, max: 5, agreeFrom: 4, labels: []), active: true),
    ]

    func hash(_ json: String) throws -> String {
        try NewFeedback.parse(Array(json.utf8), measures: measures, now: Date(timeIntervalSince1970: 1_800_000_000)).contentHash
    }

    func testTheCanonicalFormIsStable() throws {
        let full = #"""
            {"source_system":"mosaic","external_id":"cic-2291","channel":"cic_review","respondent_role":"young_person",
             "age_band":"13_to_15","service_area":"children_looked_after","team":"north","stage":"review","kind":"compliment",
             "given_at":"2026-11-20T10:00:00.25+01:00","subject_ref":"P-1234","comment":"Siân: \"she listens\"\n",
             "responses":[{"measure":"worker_knows_me","score":3},{"measure":"listened_to","score":5}],
             "consent_to_follow_up":true,"safeguarding_concern":false,"organisation":"barnardos",
             "equality":{"gender":"female","ethnicity":"white_british","disability":"no"}}
            """#
        let minimal = #"""
            {"source_system":"s","external_id":"e","channel":"survey","respondent_role":"child","age_band":"8_to_12",
             "service_area":"early_help","stage":"plan","kind":"general","given_at":"2026-01-01T00:00:00Z","anonymous":true}
            """#
        XCTAssertEqual(try hash(full), "a2554031468f15b9d4c3b685f06c46355be0631e36d91948218dd4b67fdbbd42")
        XCTAssertEqual(try hash(minimal), "8ffddbf67c40cafd45151eef2bab703a019a3a1b5c8ed23f1fd7bf3ddf25921d")
        // Key order and the instant's spelling are not content.
        XCTAssertEqual(try hash(minimal.replacingOccurrences(of: "2026-01-01T00:00:00Z", with: "2026-01-01T01:00:00.000+01:00")), try hash(minimal))
    }
}

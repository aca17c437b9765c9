import Foundation
import HTTPServer
import Postgres

/// One piece of feedback as a council system sends it, validated.
struct NewFeedback: Sendable {
    struct Response: Sendable {
        var measure: Measure
        var score: Int
    }

    /// Optional equality data, as feedback and participants carry it.
    struct Equality: Sendable {
        var gender: Gender?
        var ethnicity: Ethnicity?
        var disability: Disability?

        /// The `equality` object of `fields`, if sent.
        static func read(_ fields: inout FieldReader) -> Equality? {
            guard var nested = fields.object("equality") else { return nil }
            let equality = Equality(gender: nested.vocabulary("gender", Gender.self, required: false),
                                    ethnicity: nested.vocabulary("ethnicity", Ethnicity.self, required: false),
                                    disability: nested.vocabulary("disability", Disability.self, required: false))
            fields.absorb(nested)
            return equality
        }

        /// Nil when no field is given.
        var nonEmpty: Equality? { gender == nil && ethnicity == nil && disability == nil ? nil : self }
    }

    var sourceSystem: String
    var externalID: String
    var channel: Channel
    var respondentRole: RespondentRole
    var ageBand: AgeBand
    var serviceArea: ServiceArea
    var team: String?
    var stage: JourneyStage
    var kind: FeedbackKind
    var givenAt: Date
    var subjectRef: String?
    var responses: [Response]
    var comment: String?
    var anonymous: Bool
    var consentToFollowUp: Bool
    var safeguardingConcern: Bool
    var equality: Equality?
    /// The partner organisation's slug, as sent.
    var organisation: String?
    /// The closed complaint whose procedure this feedback is about (`ComplaintLink` checks it).
    var complaintID: UUID?
    /// SHA-256 of the content in a canonical form (see `canonicalHash`), worked out once.
    private(set) var contentHash = ""

    static let maxResponses = 100
    static let maxCommentLength = 8000
    /// Clocks differ: a `given_at` up to this far ahead of ours is not "in the future".
    static let clockSkew: TimeInterval = 300

    /// Reads and validates `body` against the tenant's `measures`; 400/422 naming every field
    /// at fault at once.
    static func parse(_ body: [UInt8], measures: [Measure], now: Date = Date()) throws(HTTPError) -> NewFeedback {
        var fields = try FieldReader(body: body)
        return try parse(&fields, measures: measures, now: now)
    }

    static func parse(_ fields: inout FieldReader, measures: [Measure], now: Date = Date()) throws(HTTPError) -> NewFeedback {
        let sourceSystem = fields.string("source_system", maxLength: 100)
        let externalID = fields.string("external_id", maxLength: 200)
        let channel = fields.vocabulary("channel", Channel.self)
        let role = fields.vocabulary("respondent_role", RespondentRole.self)
        let ageBand = fields.vocabulary("age_band", AgeBand.self)
        let serviceArea = fields.vocabulary("service_area", ServiceArea.self)
        let team = fields.optionalString("team", maxLength: 100)
        let stage = fields.vocabulary("stage", JourneyStage.self)
        let kind = fields.vocabulary("kind", FeedbackKind.self)
        let givenAt = fields.instant("given_at")
        if let givenAt, givenAt > now.addingTimeInterval(clockSkew) { fields.reject("given_at", "must not be in the future") }
        let subjectRef = fields.optionalString("subject_ref", maxLength: 100)
        let comment = fields.optionalString("comment", maxLength: maxCommentLength)
        let anonymous = fields.bool("anonymous", required: false) ?? false
        let consent = fields.bool("consent_to_follow_up", required: false) ?? false
        let safeguarding = fields.bool("safeguarding_concern", required: false) ?? false
        let organisation = fields.optionalString("organisation", maxLength: 63)
        let complaintID = fields.uuid("complaint_id", required: false)
        if anonymous && consent { fields.reject("consent_to_follow_up", "cannot be true when the feedback is anonymous") }
        if anonymous && subjectRef != nil { fields.reject("subject_ref", "must be absent when the feedback is anonymous") }

        let equality = Equality.read(&fields)

        var responses: [Response] = []
        var seen = Set<String>()
        for var item in fields.objects("responses", maxCount: maxResponses) ?? [] {
            let code = item.string("measure", maxLength: 63)
            let score = item.integer("score", in: Int.min...Int.max)
            if let code {
                if let measure = measures.first(where: { $0.code == code }) {  // a tenant has tens of measures at most
                    if !measure.active {
                        item.reject("measure", "\(code) is no longer in use")
                    } else if !seen.insert(code).inserted {
                        item.reject("measure", "\(code) is scored more than once")
                    } else if let score {
                        if measure.scale.contains(score) {
                            responses.append(Response(measure: measure, score: score))
                        } else {
                            item.reject("score", "must be from \(measure.scale.min) to \(measure.scale.max) for \(code)")
                        }
                    }
                } else {
                    item.reject("measure", "is not a measure of this tenant (see GET /v1/measures)")
                }
            }
            fields.absorb(item)
        }
        try fields.finish()
        guard let sourceSystem, let externalID, let channel, let role, let ageBand, let serviceArea, let stage, let kind,
              let givenAt else {
            throw HTTPError.validation([FieldError(field: "(body)", message: "is incomplete")])  // unreachable: finish() threw
        }
        var feedback = NewFeedback(
            sourceSystem: sourceSystem, externalID: externalID, channel: channel, respondentRole: role, ageBand: ageBand,
            serviceArea: serviceArea, team: team, stage: stage, kind: kind, givenAt: givenAt, subjectRef: subjectRef,
            responses: responses, comment: comment, anonymous: anonymous, consentToFollowUp: consent,
            safeguardingConcern: safeguarding, equality: equality, organisation: organisation, complaintID: complaintID)
        feedback.contentHash = feedback.canonicalHash()
        return feedback
    }

    /// Whether a record stored under the same natural key, with `stored` content hash and
    /// `storedComment`, has this content. Without `free_text:read` the comment is left out of
    /// the comparison (taken as the stored one), so the answer to a retry never tells a key
    /// that cannot read comments whether a guessed comment is the stored one.
    func matches(storedHash stored: String, storedComment: String?, includeFreeText: Bool) -> Bool {
        if includeFreeText || comment == storedComment { return stored == contentHash }
        var withStoredComment = self
        withStoredComment.comment = storedComment
        return stored == withStoredComment.canonicalHash()
    }

    /// SHA-256 of the content in a canonical form (`ContentHash`; responses by measure, the
    /// instant to the microsecond).
    private func canonicalHash() -> String {
        var canonical = ContentHash(capacity: 256 + (comment?.utf8.count ?? 0))
        for part in [sourceSystem, externalID, channel.rawValue, respondentRole.rawValue, ageBand.rawValue, serviceArea.rawValue, team,
                     stage.rawValue, kind.rawValue, String(Int64((givenAt.timeIntervalSince1970 * 1_000_000).rounded())),
                     subjectRef, comment, String(anonymous), String(consentToFollowUp), String(safeguardingConcern),
                     equality?.gender?.rawValue, equality?.ethnicity?.rawValue, equality?.disability?.rawValue, organisation] {
            canonical.add(part)
        }
        for response in responses.sorted(by: { $0.measure.code < $1.measure.code }) {
            canonical.add(response.measure.code + "=" + String(response.score))
        }
        // Only when given, so the hashes of feedback stored before it existed stay as they were
        // (a response part never has this shape: its score is a number).
        if let complaintID { canonical.add("complaint_id=" + complaintID.lowercased) }
        return canonical.hexDigest
    }
}

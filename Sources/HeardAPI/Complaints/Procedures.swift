import Foundation
import HTTPServer
import Postgres

/// A complaints procedure as data (DOMAIN.md §2): each stage's timescales in working days.
/// Every tenant has the two procedures; the statutory one is fixed by regulation, the corporate
/// one starts as the Ombudsman's Complaint Handling Code and the tenant may change it.
struct ComplaintProcedure: Encodable, Sendable {
    /// One stage's timescales. Counting follows `WorkingDayCalendar`: the day a clock starts is
    /// day 0, and a limit of N is met on the Nth working day after it.
    struct Stage: Codable, Sendable, Equatable {
        var stage: Int
        /// Working days from the start of the stage to acknowledge it; nil where the procedure sets none.
        var acknowledgeWithin: Int?
        /// Working days to respond, counted from `responseClock`.
        var respondWithin: Int
        var responseClock: ResponseClock
        /// The most the response allowance may be extended to, in total; nil: it cannot be extended.
        var extendableTo: Int?
        /// Whether the clock may be suspended (until an advocate is appointed).
        var suspendable: Bool
        /// Working days after this stage's response within which the next stage may be asked for;
        /// nil: no window (or no next stage).
        var escalateWithin: Int?
        /// Stage 3: working days from the request to the panel, and from the panel to its report.
        var panelWithin: Int?
        var panelReportWithin: Int?

        enum CodingKeys: String, CodingKey {
            case stage, acknowledgeWithin = "acknowledge_within", respondWithin = "respond_within", responseClock = "response_clock"
            case extendableTo = "extendable_to", suspendable, escalateWithin = "escalate_within", panelWithin = "panel_within"
            case panelReportWithin = "panel_report_within"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(stage, forKey: .stage)
            try container.encode(acknowledgeWithin, forKey: .acknowledgeWithin)
            try container.encode(respondWithin, forKey: .respondWithin)
            try container.encode(responseClock, forKey: .responseClock)
            try container.encode(extendableTo, forKey: .extendableTo)
            try container.encode(suspendable, forKey: .suspendable)
            try container.encode(escalateWithin, forKey: .escalateWithin)
            try container.encode(panelWithin, forKey: .panelWithin)
            try container.encode(panelReportWithin, forKey: .panelReportWithin)
        }
    }

    /// The day a stage's response clock starts.
    enum ResponseClock: String, Codable, Sendable, CaseIterable {
        /// The day the stage began: the complaint's receipt, or the request to escalate.
        case stageStart = "stage_start"
        case acknowledgement
        /// Statutory stage 2: the day the complaint statement is agreed.
        case statementAgreed = "statement_agreed"
        /// Statutory stage 3: the day of the review panel's report.
        case panelReport = "panel_report"
    }

    var procedure: ComplaintProcedureCode
    var name: String
    /// Whether a tenant may change it (`PATCH /v1/complaint-procedures/corporate`).
    var editable: Bool
    /// 1 for the procedure as shipped; each change of a tenant's makes the next.
    var version: Int
    /// Complaints received on or after this day follow this version; nil for the one shipped.
    var effectiveFrom: CalendarDate?
    var stages: [Stage]

    enum CodingKeys: String, CodingKey {
        case procedure, name, editable, version, effectiveFrom = "effective_from", stages
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(procedure.rawValue, forKey: .procedure)
        try container.encode(name, forKey: .name)
        try container.encode(editable, forKey: .editable)
        try container.encode(version, forKey: .version)
        try container.encode(effectiveFrom?.description, forKey: .effectiveFrom)
        try container.encode(stages, forKey: .stages)
    }

    func stage(_ number: Int) -> Stage? { stages.first { $0.stage == number } }

    /// The Children Act 1989 Representations Procedure (England) Regulations 2006.
    static let statutory = ComplaintProcedure(
        procedure: .statutoryChildrenAct, name: "Children Act 1989 representations procedure", editable: false, version: 1,
        effectiveFrom: nil, stages: [
            Stage(stage: 1, acknowledgeWithin: nil, respondWithin: 10, responseClock: .stageStart, extendableTo: 20, suspendable: true,
                  escalateWithin: 20),
            Stage(stage: 2, acknowledgeWithin: nil, respondWithin: 25, responseClock: .statementAgreed, extendableTo: 65,
                  suspendable: false, escalateWithin: 20),
            Stage(stage: 3, acknowledgeWithin: nil, respondWithin: 15, responseClock: .panelReport, extendableTo: nil, suspendable: false,
                  escalateWithin: nil, panelWithin: 30, panelReportWithin: 5),
        ])

    /// The Local Government and Social Care Ombudsman's Complaint Handling Code (from 1 April 2026).
    static let corporateDefault = ComplaintProcedure(
        procedure: .corporate, name: "Corporate complaints procedure", editable: true, version: 1, effectiveFrom: nil, stages: [
            Stage(stage: 1, acknowledgeWithin: 5, respondWithin: 10, responseClock: .acknowledgement, extendableTo: 20, suspendable: false,
                  escalateWithin: nil),
            Stage(stage: 2, acknowledgeWithin: 5, respondWithin: 20, responseClock: .acknowledgement, extendableTo: 40, suspendable: false,
                  escalateWithin: nil),
        ])

    /// The largest number of working days any timescale may be set to.
    static let maxWorkingDays = 260
}

enum ComplaintProcedures {
    /// The tenant's procedures as they apply to a complaint received on `day` (today's, for the
    /// list): the statutory one, and the latest version of the corporate one in effect that day.
    static func all(on tx: TenantTransaction, receivedOn day: CalendarDate? = nil) async throws -> [ComplaintProcedure] {
        [ComplaintProcedure.statutory, try await corporate(on: tx, receivedOn: day)]
    }

    static func procedure(_ code: ComplaintProcedureCode, on tx: TenantTransaction, receivedOn day: CalendarDate?) async throws -> ComplaintProcedure {
        switch code {
        case .statutoryChildrenAct: ComplaintProcedure.statutory
        case .corporate: try await corporate(on: tx, receivedOn: day)
        }
    }

    /// The corporate procedure in effect on `day` (nil: the latest version, whenever it takes effect).
    static func corporate(on tx: TenantTransaction, receivedOn day: CalendarDate?) async throws -> ComplaintProcedure {
        guard let row = try await tx.query("""
            SELECT version, stages::text AS stages, effective_from FROM complaint_procedure_versions
             WHERE tenant_id = \(tx.principal.tenantID) AND procedure = 'corporate'
               AND (\(day)::date IS NULL OR effective_from <= \(day)::date)
             ORDER BY version DESC LIMIT 1
            """).first else { return ComplaintProcedure.corporateDefault }
        var procedure = ComplaintProcedure.corporateDefault
        procedure.version = try row.decode(Int.self, column: "version")
        procedure.effectiveFrom = try row.decode(CalendarDate.self, column: "effective_from")
        procedure.stages = try decodeStages(try row.decode(String.self, column: "stages"))
        return procedure
    }

    static func decodeStages(_ json: String) throws -> [ComplaintProcedure.Stage] {
        try JSONDecoder().decode([ComplaintProcedure.Stage].self, from: Data(json.utf8))
    }

    static func encodeStages(_ stages: [ComplaintProcedure.Stage]) -> String {
        String(decoding: JSON.encode(stages), as: UTF8.self)
    }
}

/// `/v1/complaint-procedures`: the tenant's procedures, and changes to its corporate one.
struct ComplaintProcedureRoutes {
    let access: AccessControl

    func add(to router: inout RouterBuilder) {
        router.get("/v1/complaint-procedures", access.secure(anyOf: [.complaintsRead, .complaintsWrite, .admin], resource: .complaintProcedure) { request, context in
            try QueryReader(request.query, allowed: [], paged: false).finish()
            let procedures = try await context.transaction { tx in try await ComplaintProcedures.all(on: tx) }
            return Page(items: procedures, nextCursor: nil).response(for: request)
        })
        router.patch("/v1/complaint-procedures/{procedure}", access.secure(.admin, resource: .complaintProcedure) { request, context in
            let code = request.parameter("procedure")
            guard let procedure = ComplaintProcedureCode(rawValue: code) else {
                throw HTTPError(.notFound, detail: "There is no complaints procedure \(code.prefix(40)).")
            }
            guard procedure == .corporate else {
                throw HTTPError(.procedureFixed, detail: "The statutory children's procedure is fixed by regulation; only the corporate procedure can be changed.")
            }
            try context.principal.requireCouncilWide(toChange: "the council's complaints procedure")
            let stages = try Self.readStages(request.body)
            let ifMatch = IfMatch(request)
            let effectiveFrom = WorkingDayCalendar.localDay(of: context.now).adding(days: 1)
            let changed = try await context.transaction { tx -> ComplaintProcedure in
                let current = try await ComplaintProcedures.corporate(on: tx, receivedOn: nil)
                try ifMatch?.check(current: ETag.of(version: current.version))
                let inserted = try await tx.execute("""
                    INSERT INTO complaint_procedure_versions (tenant_id, procedure, version, stages, effective_from, key_id)
                    VALUES (\(tx.principal.tenantID), 'corporate', \(current.version + 1), \(ComplaintProcedures.encodeStages(stages))::jsonb,
                            \(effectiveFrom), \(tx.principal.keyID))
                    ON CONFLICT (tenant_id, procedure, version) DO NOTHING
                    """)
                guard inserted == 1 else { throw IfMatch.changedMeanwhile }
                tx.audit(.update, .complaintProcedure, id: "corporate")
                var changed = current
                changed.version += 1
                changed.effectiveFrom = effectiveFrom
                changed.stages = stages
                return changed
            }
            return .json(changed, headers: ["ETag": ETag.of(version: changed.version)])
        })
    }

    /// The corporate procedure's new timescales: `{"stages": [{stage 1}, {stage 2}]}`, each
    /// with `acknowledge_within`, `respond_within` and `extendable_to` (at least `respond_within`).
    static func readStages(_ body: [UInt8]) throws(HTTPError) -> [ComplaintProcedure.Stage] {
        var fields = try FieldReader(body: body)
        let range = 1...ComplaintProcedure.maxWorkingDays
        var stages: [ComplaintProcedure.Stage] = []
        let items = fields.objects("stages", maxCount: 2)
        if items == nil { fields.reject("stages", "is required") }
        if let items, items.count != 2 { fields.reject("stages", "must list stage 1 and stage 2") }
        for (index, var item) in (items ?? []).enumerated() {
            let number = item.integer("stage", in: 1...2)
            if let number, number != index + 1 { item.reject("stage", "must be \(index + 1): stages are listed in order") }
            let acknowledge = item.integer("acknowledge_within", in: range)
            let respond = item.integer("respond_within", in: range)
            let extendable = item.integer("extendable_to", in: range)
            if let respond, let extendable, extendable < respond { item.reject("extendable_to", "must not be less than respond_within") }
            if let acknowledge, let respond, let extendable, let base = ComplaintProcedure.corporateDefault.stage(index + 1) {
                var stage = base
                stage.acknowledgeWithin = acknowledge
                stage.respondWithin = respond
                stage.extendableTo = extendable
                stages.append(stage)
            }
            fields.absorb(item)
        }
        try fields.finish()
        return stages
    }
}

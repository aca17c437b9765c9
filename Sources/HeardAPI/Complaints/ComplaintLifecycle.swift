import Foundation
import HTTPServer
import Postgres

/// Where a complaint is in its current stage.
enum ComplaintStatus: String, CaseIterable, Sendable {
    /// The stage has begun; not yet acknowledged.
    case received
    case acknowledged
    /// The clock is stopped (statutory stage 1: until an advocate is appointed).
    case suspended
    /// Statutory stage 2: the complaint statement is agreed and the investigation runs.
    case investigating
    /// Stage 3: the review panel has met; its report is awaited.
    case panelConvened = "panel_convened"
    /// Stage 3: the panel has reported; the council's response is awaited.
    case panelReported = "panel_reported"
    /// The stage has its response (at stage 3, the council's final response).
    case responded
    case withdrawn
    case closed
}

enum ComplaintAction: String, CaseIterable, Sendable {
    case acknowledge, suspend, resume, extend
    case agreeStatement = "agree_statement"
    case respond, escalate
    case convenePanel = "convene_panel"
    case reportPanel = "report_panel"
    case finalResponse = "final_response"
    case withdraw, close
}

/// Why a clock is suspended.
enum SuspensionReason: String, CaseIterable, Sendable {
    case awaitingAdvocate = "awaiting_advocate", other
}

/// What a response found.
enum ComplaintOutcome: String, CaseIterable, Sendable {
    case upheld, partlyUpheld = "partly_upheld", notUpheld = "not_upheld"
}

/// The procedure, one explicit state machine (DOMAIN.md §2): state x action -> state, with what
/// each action carries. Which of a state's actions a complaint may take also depends on its
/// stage's timescales (`ComplaintLifecycle.allows`): a stage whose clock cannot be suspended
/// offers no `suspend`, statutory stage 2 is answered only once its statement is agreed, stage 3
/// is a panel, and only a stage with a next one can be escalated.
enum ComplaintLifecycle {
    typealias Machine = Lifecycle<ComplaintStatus, ComplaintAction>
    typealias Transition = Machine.Transition

    /// The states in which a stage is open: its response is awaited.
    static let open: [ComplaintStatus] = [.received, .acknowledged, .investigating]

    static let machine: Machine = {
        var transitions: [Transition] = [.init(.received, .acknowledge, .acknowledged)]
        for state in [ComplaintStatus.received, .acknowledged] {
            transitions.append(.init(state, .suspend, .suspended, fields: [.vocabulary("reason", SuspensionReason.self, stored: false)],
                                     clock: .suspends))
        }
        transitions.append(.init(.suspended, .resume, .acknowledged, clock: .resumes))
        for state in open + [.suspended] {
            transitions.append(.init(state, .extend, state, fields: [
                .integer("working_days", 1...ComplaintProcedure.maxWorkingDays, stored: false),
                .text("reason", 2000, freeText: true, stored: false),
            ], clock: .extends))
        }
        for state in [ComplaintStatus.received, .acknowledged] {
            transitions.append(.init(state, .agreeStatement, .investigating, clock: .starts))
        }
        for state in open {
            // `outcome`, or `elements` (ResponseElements) from which it follows: one of the two.
            transitions.append(.init(state, .respond, .responded,
                                     fields: [.vocabulary("outcome", ComplaintOutcome.self, required: false, stored: false)], clock: .stops))
        }
        transitions.append(.init(.responded, .escalate, .received, fields: [.text("late_reason", 2000, freeText: true, required: false, stored: false)],
                                 clock: .starts))
        for state in [ComplaintStatus.received, .acknowledged] {
            transitions.append(.init(state, .convenePanel, .panelConvened))
        }
        transitions.append(.init(.panelConvened, .reportPanel, .panelReported, clock: .starts))
        transitions.append(.init(.panelReported, .finalResponse, .responded,
                                 fields: [.vocabulary("outcome", ComplaintOutcome.self, required: false, stored: false)], clock: .stops))
        for state in open + [.suspended, .panelConvened, .panelReported] {
            transitions.append(.init(state, .withdraw, .withdrawn, clock: .stops))
        }
        for state in [ComplaintStatus.responded, .withdrawn] {
            transitions.append(.init(state, .close, .closed, clock: .stops))
        }
        return Machine(resource: .complaint, table: "complaints", dated: true, notes: true, transitions)
    }()

    static func clockRuns(in state: ComplaintStatus) -> Bool { machine.clockRuns(in: state) }

    /// Whether `complaint`, at its stage of its procedure, may take `transition`.
    static func allows(_ transition: Transition, for complaint: Complaint) -> Bool {
        guard let stage = complaint.currentStage else { return false }
        switch transition.action {
        case .suspend, .resume: return stage.suspendable
        case .extend: return (stage.extendableTo ?? 0) > complaint.allowance
        case .agreeStatement: return stage.responseClock == .statementAgreed
        case .respond:
            switch stage.responseClock {
            case .stageStart, .acknowledgement: return true
            case .statementAgreed: return complaint.state == .investigating
            case .panelReport: return false
            }
        case .escalate: return complaint.timescaleStages.contains { $0.stage == complaint.stage + 1 }
        case .convenePanel: return stage.panelWithin != nil
        case .acknowledge, .reportPanel, .finalResponse, .withdraw, .close: return true
        }
    }

    static func allowedActions(for complaint: Complaint) -> [ComplaintAction] {
        machine.allowedActions(in: complaint.state) { allows($0, for: complaint) }
    }
}

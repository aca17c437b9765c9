import Foundation
import HTTPServer
import Synchronization

/// Refusals by access control: counted (`heard_auth_refusals_total{reason}`) and logged once a
/// window in aggregate. For those that belong to no tenant (no key, a malformed or unknown key,
/// an address over its limit of failed attempts) that is all, instead of an audit row each, so
/// a flood of made-up keys costs no database work. A known key over its rate limit is counted
/// here and also audited in its tenant's trail, like its other refusals (revoked, expired, a
/// missing scope).
final class RefusalTally: Sendable {
    enum Reason: String, CaseIterable, Sendable {
        case missingKey = "missing_key"
        case malformedKey = "malformed_key"
        case unknownKey = "unknown_key"
        case addressLimited = "address_limited"
        case rateLimited = "rate_limited"
    }

    private struct Window {
        var started: UInt64
        var counts: [Reason: Int] = [:]
        /// Distinct client addresses seen in the window, up to `maxAddresses` (never logged).
        var addresses: Set<String> = []
    }

    private static let maxAddresses = 10_000
    private let totals = Mutex<[Reason: Int]>([:])
    private let window: Mutex<Window>
    private let windowNanoseconds: UInt64
    private let log: RequestLog?

    init(log: RequestLog?, windowSeconds: Double = 60, now: UInt64 = DispatchTime.now().uptimeNanoseconds) {
        self.log = log
        self.windowNanoseconds = UInt64(windowSeconds * 1e9)
        self.window = Mutex(Window(started: now))
    }

    func total(_ reason: Reason) -> Int { totals.withLock { $0[reason, default: 0] } }

    /// Counts one refusal. The first refusal after a window has ended logs that window's counts.
    func record(_ reason: Reason, address: String?, now: UInt64 = DispatchTime.now().uptimeNanoseconds) {
        totals.withLock { $0[reason, default: 0] += 1 }
        let finished = window.withLock { window -> Window? in
            var finished: Window?
            if now &- window.started >= windowNanoseconds {
                finished = window
                window = Window(started: now)
            }
            window.counts[reason, default: 0] += 1
            if let address, window.addresses.count < Self.maxAddresses { window.addresses.insert(address) }
            return finished
        }
        if let finished, !finished.counts.isEmpty {
            var fields = ["window_seconds": String(Int((Double(now &- finished.started) / 1e9).rounded())),
                          "addresses": String(finished.addresses.count)]
            for reason in Reason.allCases { fields[reason.rawValue] = String(finished.counts[reason, default: 0]) }
            log?.event("refusals without a known key", level: .warn, fields: fields)
        }
    }

    /// `heard_auth_refusals_total{reason}` on `metrics`.
    func register(on metrics: Metrics) {
        metrics.register(counter: "heard_auth_refusals_total", help: "Requests refused by access control without an audit row of their own (and 429s of known keys), by reason.", label: "reason") { [self] in
            Reason.allCases.map { ($0.rawValue, Double(total($0))) }
        }
    }
}

import Foundation
import Synchronization

/// A token bucket per API key: `burst` requests at once, refilled at `ratePerSecond`.
/// Per process: behind a load balancer each instance allows this much.
final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: UInt64
    }

    private let ratePerSecond: Double
    private let burst: Double
    private let buckets = Mutex<[UUID: Bucket]>([:])

    init(ratePerSecond: Double, burst: Double) {
        self.ratePerSecond = max(0.001, ratePerSecond)
        self.burst = max(1, burst)
    }

    /// Nil when the request may go ahead; else the whole seconds to wait before a token is there.
    func admit(_ key: UUID, now: UInt64 = DispatchTime.now().uptimeNanoseconds) -> Int? {
        buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: burst, updated: now)
            let elapsed = Double(now &- bucket.updated) / 1e9
            bucket.tokens = min(burst, bucket.tokens + elapsed * ratePerSecond)
            bucket.updated = now
            defer { buckets[key] = bucket }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return nil
            }
            return max(1, Int(((1 - bucket.tokens) / ratePerSecond).rounded(.up)))
        }
    }
}

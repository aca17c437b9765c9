import Foundation
import Synchronization

/// A token bucket per key (an API key, a client address): `burst` requests at once, refilled at
/// `ratePerSecond`. Per process: behind a load balancer each instance allows this much. Buckets
/// that have filled up again are forgotten once there are many, so keys a client makes up
/// (addresses) cannot grow it without bound.
final class RateLimiter<Key: Hashable & Sendable>: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: UInt64
    }

    private let ratePerSecond: Double
    private let burst: Double
    private let buckets = Mutex<[Key: Bucket]>([:])
    /// Past this many buckets, full ones are dropped (a full bucket is the same as none).
    static var pruneAbove: Int { 10_000 }

    init(ratePerSecond: Double, burst: Double) {
        self.ratePerSecond = max(0.001, ratePerSecond)
        self.burst = max(1, burst)
    }

    /// Takes a token: nil when the request may go ahead; else the whole seconds to wait before a
    /// token is there.
    func admit(_ key: Key, now: UInt64 = DispatchTime.now().uptimeNanoseconds) -> Int? {
        update(key, now: now, take: true)
    }

    /// Like `admit`, without taking the token: whether a request would be admitted now.
    func wait(for key: Key, now: UInt64 = DispatchTime.now().uptimeNanoseconds) -> Int? {
        update(key, now: now, take: false)
    }

    private func update(_ key: Key, now: UInt64, take: Bool) -> Int? {
        buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: burst, updated: now)
            let elapsed = Double(now &- bucket.updated) / 1e9
            bucket.tokens = min(burst, bucket.tokens + elapsed * ratePerSecond)
            bucket.updated = now
            if bucket.tokens >= 1 {
                if take {
                    bucket.tokens -= 1
                    buckets[key] = bucket
                    if buckets.count > Self.pruneAbove { prune(&buckets, now: now) }
                }
                return nil
            }
            buckets[key] = bucket
            return max(1, Int(((1 - bucket.tokens) / ratePerSecond).rounded(.up)))
        }
    }

    private func prune(_ buckets: inout [Key: Bucket], now: UInt64) {
        buckets = buckets.filter { _, bucket in
            bucket.tokens + Double(now &- bucket.updated) / 1e9 * ratePerSecond < burst
        }
    }

    var count: Int { buckets.withLock { $0.count } }
}

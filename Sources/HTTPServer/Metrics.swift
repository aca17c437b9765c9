import Foundation
import Synchronization

/// Prometheus text-format metrics: requests and a latency histogram by method, route template
/// and status class; open connections, in-flight requests; and gauges others register (pool use).
public final class Metrics: Sendable {
    static let bucketBounds: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    private struct Key: Hashable {
        var method: String
        var route: String
        /// The status code's first digit (`statusLabel` is what the label shows).
        var statusClass: Int

        var statusLabel: String { "\(statusClass)xx" }
    }

    private struct Series {
        var count = 0
        var sum = 0.0
        var buckets = [Int](repeating: 0, count: Metrics.bucketBounds.count)

        mutating func record(_ seconds: Double, bucket: Int?) {
            count += 1
            sum += seconds
            if let bucket { buckets[bucket] += 1 }
        }
    }

    private struct Gauge {
        var name: String
        var help: String
        var read: @Sendable () -> Double
    }

    /// A counter with one label, read at every scrape: (label value, count) pairs.
    private struct LabelledCounter {
        var name: String
        var help: String
        var label: String
        var read: @Sendable () -> [(String, Double)]
    }

    /// The request series, kept in shards: each event loop records into its own (`observe`'s
    /// `shard`), so loops never wait on one another's lock (with more loops than cores, a
    /// shared lock held by a thread the kernel had just switched out made the others spin: eight
    /// loops on two cores answered a fifth of what four did). A scrape adds the shards up.
    private final class Shard: Sendable {
        let series = Mutex<[Key: Series]>([:])
    }

    private static let shardCount = 16
    private let shards = (0..<Metrics.shardCount).map { _ in Shard() }
    private let gauges = Mutex<[Gauge]>([])
    private let counters = Mutex<[LabelledCounter]>([])
    private let inFlight = Counter()

    public init() {
        register(gauge: "heard_http_in_flight_requests", help: "Requests being handled now.") { [inFlight] in
            Double(inFlight.value)
        }
    }

    /// Adds a gauge read at every scrape.
    public func register(gauge name: String, help: String, read: @escaping @Sendable () -> Double) {
        gauges.withLock { $0.append(Gauge(name: name, help: help, read: read)) }
    }

    /// Adds a counter with one label, read at every scrape; `read` gives each label value and
    /// its count (from a closed set: never a value a client chose).
    public func register(counter name: String, help: String, label: String, read: @escaping @Sendable () -> [(String, Double)]) {
        counters.withLock { $0.append(LabelledCounter(name: name, help: help, label: label, read: read)) }
    }

    func requestStarted() { inFlight.add(1) }
    func requestFinished() { inFlight.add(-1) }

    /// The methods that get a label of their own; any other is `other`, so what a client sends
    /// can never add a series.
    static let labelledMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    /// The method as metrics and logs show it: one of `labelledMethods`, else `other`.
    static func methodLabel(_ method: String) -> String {
        labelledMethods.contains(method) ? method : "other"
    }

    /// `method` must already be a `methodLabel`; `route` a route template or `unmatched`.
    /// `shard`: the caller's event loop, so that loops record apart.
    func observe(method: String, route: String, status: HTTPStatus, seconds: Double, shard: Int = 0) {
        let key = Key(method: method, route: route, statusClass: status.code / 100)
        let bucket = Self.bucketBounds.firstIndex { seconds <= $0 }
        shards[shard % Self.shardCount].series.withLock { all in
            all[key, default: Series()].record(seconds, bucket: bucket)
        }
    }

    /// Every shard's series, added up.
    private func allSeries() -> [Key: Series] {
        var total: [Key: Series] = [:]
        for shard in shards {
            for (key, series) in shard.series.withLock({ $0 }) {
                var sum = total[key, default: Series()]
                sum.count += series.count
                sum.sum += series.sum
                for index in sum.buckets.indices { sum.buckets[index] += series.buckets[index] }
                total[key] = sum
            }
        }
        return total
    }

    /// The exposition text (version 0.0.4).
    public func render() -> String {
        let snapshot = allSeries().sorted { ($0.key.route, $0.key.method, $0.key.statusLabel) < ($1.key.route, $1.key.method, $1.key.statusLabel) }
        var text = "# HELP heard_http_requests_total Requests answered, by method, route template and status class.\n"
        text += "# TYPE heard_http_requests_total counter\n"
        for (key, series) in snapshot {
            text += "heard_http_requests_total{\(labels(key))} \(series.count)\n"
        }
        text += "# HELP heard_http_request_duration_seconds Time from a complete request to its response.\n"
        text += "# TYPE heard_http_request_duration_seconds histogram\n"
        for (key, series) in snapshot {
            var cumulative = 0
            for (index, bound) in Self.bucketBounds.enumerated() {
                cumulative += series.buckets[index]
                text += "heard_http_request_duration_seconds_bucket{\(labels(key)),le=\"\(bound)\"} \(cumulative)\n"
            }
            text += "heard_http_request_duration_seconds_bucket{\(labels(key)),le=\"+Inf\"} \(series.count)\n"
            text += "heard_http_request_duration_seconds_sum{\(labels(key))} \(series.sum)\n"
            text += "heard_http_request_duration_seconds_count{\(labels(key))} \(series.count)\n"
        }
        for counter in counters.withLock({ $0 }) {
            text += "# HELP \(counter.name) \(counter.help)\n# TYPE \(counter.name) counter\n"
            for (value, count) in counter.read() {
                text += "\(counter.name){\(counter.label)=\"\(escape(value))\"} \(count)\n"
            }
        }
        for gauge in gauges.withLock({ $0 }) {
            text += "# HELP \(gauge.name) \(gauge.help)\n# TYPE \(gauge.name) gauge\n\(gauge.name) \(gauge.read())\n"
        }
        return text
    }

    private func labels(_ key: Key) -> String {
        "method=\"\(escape(key.method))\",route=\"\(escape(key.route))\",status_class=\"\(key.statusLabel)\""
    }

    private func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}

/// A shared integer (in-flight requests, open connections) that closures can hold on to.
final class Counter: Sendable {
    private let atomic = Atomic<Int>(0)
    var value: Int { atomic.load(ordering: .relaxed) }
    func add(_ delta: Int) { atomic.add(delta, ordering: .relaxed) }
    /// Adds one and returns the new value.
    func increment() -> Int { atomic.add(1, ordering: .relaxed).newValue }
}

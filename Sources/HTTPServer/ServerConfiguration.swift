import Foundation

/// Everything about how the server listens and what it tolerates. Durations are in seconds.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// 0 picks a free port (see `Server.port` after `start()`).
    public var port = 8080
    /// Event-loop queues; each connection is pinned to one. Twice the cores, from 2 to 4: on
    /// two cores, four loops answered `GET /healthz` a third faster than two, database requests
    /// alike (README, "The data path").
    public var loopCount = max(2, min(4, 2 * ProcessInfo.processInfo.activeProcessorCount))
    /// The most loops that serve well: twice the cores (at least 2). Beyond, the threads that
    /// share a lock (the log's buffer, the clock's cache) are switched out holding it, and the
    /// others spin: eight loops on two cores answered a sixth of what four did. `heard serve`
    /// holds `EVENT_LOOPS` to it.
    public static let maxLoopCount = max(2, 2 * ProcessInfo.processInfo.activeProcessorCount)
    /// Request line + headers larger than this get 431.
    public var maxHeadBytes = 16 * 1024
    /// A body larger than this gets 413, without being read.
    public var maxBodyBytes = 1024 * 1024
    /// More open connections than this are answered 503 and closed at once.
    public var maxConnections = 1024
    /// More open connections than this from one client address are answered 503 and closed,
    /// so one client cannot hold every connection.
    public var maxConnectionsPerAddress = 128
    /// A keep-alive connection with no request in progress is closed after this long.
    public var idleTimeout: Double = 60
    /// A client that has not finished sending its headers after this long gets 408 (slowloris).
    public var headerTimeout: Double = 10
    /// A client whose body stops arriving for this long gets 408.
    public var bodyTimeout: Double = 30
    /// Once the head is in, a body arriving slower than this on average (after `bodyRateGrace`)
    /// gets 408: a request that trickles a byte at a time is cut off.
    public var minBodyBytesPerSecond = 1024
    public var bodyRateGrace: Double = 5
    /// A client that reads none of our response for this long is disconnected.
    public var writeTimeout: Double = 30
    /// On shutdown, in-flight requests get this long to finish.
    public var shutdownTimeout: Double = 10
    /// How often the per-loop timer looks for timed-out connections.
    public var sweepInterval: Double = 1

    public init() {}

    var parserLimits: HTTPParser.Limits {
        HTTPParser.Limits(maxHeadBytes: maxHeadBytes, maxHeaderCount: 100, maxBodyBytes: maxBodyBytes)
    }
}

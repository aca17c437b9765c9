import Foundation
import HTTPServer
import HeardTesting
import Synchronization
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Timeouts, limits, CORS, logging and graceful shutdown: each with its own server settings.
final class LifecycleTests: XCTestCase {
    func testSlowHeadersGet408() async throws {
        let server = try TestServer.start(configure: { $0.headerTimeout = 0.3 }, routes: standardRoutes)
        let client = try server.client()
        client.send("GET /hello HTTP/1.1\r\nHost: x\r\n")  // ... and never the blank line
        let response = client.readResponse()
        XCTAssertEqual(response?.status, 408)
        XCTAssertEqual(response?.header("Connection"), "close")
        XCTAssertTrue(client.isClosedByServer())
        await server.stop()
    }

    func testAStalledBodyGets408() async throws {
        let server = try TestServer.start(configure: { $0.bodyTimeout = 0.3 }, routes: standardRoutes)
        let client = try server.client()
        client.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        XCTAssertEqual(client.readResponse()?.status, 408)
        await server.stop()
    }

    func testAnIdleKeepAliveConnectionIsClosed() async throws {
        let server = try TestServer.start(configure: { $0.idleTimeout = 0.3 }, routes: standardRoutes)
        let client = try server.client()
        client.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.status, 200)
        XCTAssertTrue(client.isClosedByServer(), "idle connection should be closed by the server")
        await server.stop()
    }

    func testConnectionsBeyondTheCapAre503() async throws {
        let server = try TestServer.start(configure: { $0.maxConnections = 2 }, routes: standardRoutes)
        let first = try server.client(), second = try server.client()
        first.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        second.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(first.readResponse()?.status, 200)
        XCTAssertEqual(second.readResponse()?.status, 200)
        let third = try server.client()
        let refused = third.readResponse()
        XCTAssertEqual(refused?.status, 503)
        XCTAssertEqual(refused?.header("Retry-After"), "1")
        // The two admitted connections still work.
        first.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(first.readResponse()?.status, 200)
        await server.stop()
    }

    func testConnectionsBeyondTheCapForOneAddressAre503() async throws {
        let server = try TestServer.start(configure: { $0.maxConnectionsPerAddress = 2 }, routes: standardRoutes)
        var first: RawClient? = try server.client()
        let second = try server.client()
        first?.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        second.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(first?.readResponse()?.status, 200)
        XCTAssertEqual(second.readResponse()?.status, 200)
        let refused = try server.client().readResponse()
        XCTAssertEqual(refused?.status, 503)
        XCTAssertEqual(refused?.header("Retry-After"), "1")
        // A closed connection frees its place for the same address.
        first = nil
        var admitted = false
        for _ in 0..<50 where !admitted {
            let next = try server.client()
            next.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            admitted = next.readResponse()?.status == 200
            if !admitted { try await Task.sleep(nanoseconds: 20_000_000) }
        }
        XCTAssertTrue(admitted)
        await server.stop()
    }

    func testABodyThatTricklesIsCutOff() async throws {
        let server = try TestServer.start(configure: {
            $0.minBodyBytesPerSecond = 1000
            $0.bodyRateGrace = 0.5
            $0.sweepInterval = 0.1
        }, routes: standardRoutes)
        let client = try server.client()
        client.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        let started = Date()
        // Ten bytes every 50 ms for two seconds: never idle long enough for the body timeout
        // (30 s), but 200 B/s.
        for _ in 0..<40 {
            client.send(Array(repeating: UInt8(ascii: "x"), count: 10))
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        let response = client.readResponse()
        XCTAssertEqual(response?.status, 408)
        XCTAssertLessThan(Date().timeIntervalSince(started), 4, "cut off by the data rate, not by the 30 s body timeout")
        await server.stop()
    }

    func testUnknownMethodsShareOneMetricLabel() async throws {
        let (server, log) = try Self.startWithMetrics()
        let client = try RawClient(port: server.port)
        for index in 0..<50 {
            client.send("MADEUP\(index) /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            _ = client.readResponse()
        }
        client.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        let text = try XCTUnwrap(client.readResponse()).text
        XCTAssertFalse(text.contains("MADEUP"), text)
        XCTAssertTrue(text.contains("heard_http_requests_total{method=\"other\","), text)
        XCTAssertEqual(text.split(separator: "\n").filter { $0.hasPrefix("heard_http_requests_total{") }.count, 1, text)
        XCTAssertFalse(log.text().contains("MADEUP"), "the request log uses the same closed set")
        await server.shutdown()
    }

    func testCORSOnlyForConfiguredOrigins() async throws {
        let server = try TestServer.start(cors: CORSPolicy(allowedOrigins: ["https://portal.example.org"]), routes: standardRoutes)
        let preflight = try roundTrip(server.port, "OPTIONS /items/1 HTTP/1.1\r\nHost: x\r\nOrigin: https://portal.example.org\r\nAccess-Control-Request-Method: DELETE\r\n\r\n")
        XCTAssertEqual(preflight.status, 204)
        XCTAssertEqual(preflight.header("Access-Control-Allow-Origin"), "https://portal.example.org")
        XCTAssertEqual(preflight.header("Access-Control-Allow-Methods"), "DELETE, GET, HEAD, OPTIONS")
        XCTAssertTrue(preflight.header("Access-Control-Allow-Headers")?.contains("Authorization") ?? false)

        let simple = try roundTrip(server.port, "GET /hello HTTP/1.1\r\nHost: x\r\nOrigin: https://portal.example.org\r\n\r\n")
        XCTAssertEqual(simple.header("Access-Control-Allow-Origin"), "https://portal.example.org")
        XCTAssertEqual(simple.header("Vary"), "Origin")

        let stranger = try roundTrip(server.port, "OPTIONS /items/1 HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\nAccess-Control-Request-Method: DELETE\r\n\r\n")
        XCTAssertNil(stranger.header("Access-Control-Allow-Origin"))
        let strangerGet = try roundTrip(server.port, "GET /hello HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n\r\n")
        XCTAssertNil(strangerGet.header("Access-Control-Allow-Origin"))
        await server.stop()
    }

    func testTheLogHasOneLinePerRequestAndNeverABodyOrAHeaderValue() async throws {
        let server = try TestServer.start(routes: standardRoutes)
        let secret = "canary-4f2a9b-secret"
        _ = try roundTrip(server.port, "POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(secret)\r\nContent-Length: \(secret.utf8.count)\r\n\r\n\(secret)")
        _ = try roundTrip(server.port, "GET /items/42?q=\(secret) HTTP/1.1\r\nHost: x\r\nX-Request-Id: trace-1\r\n\r\n")
        let log = server.log.text()
        XCTAssertFalse(log.contains(secret), "the log leaked a secret: \(log)")
        let lines = log.split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        let second = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: Any])
        XCTAssertEqual(second["request_id"] as? String, "trace-1")
        XCTAssertEqual(second["method"] as? String, "GET")
        XCTAssertEqual(second["route"] as? String, "/items/{id}")
        XCTAssertEqual(second["status"] as? Int, 200)
        XCTAssertNotNil(second["duration_ms"] as? Double)
        XCTAssertNotNil(second["time"] as? String)
        await server.stop()
    }

    func testALogOutputThatNobodyReadsNeverStallsServing() async throws {
        // stdout piped to a collector that has stopped reading: the pipe fills after 64 KiB.
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        var builder = RouterBuilder()
        standardRoutes(&builder)
        var configuration = ServerConfiguration()
        configuration.port = 0
        let server = Server(configuration: configuration, responder: builder.build(), log: RequestLog(fd: fds[1], level: .info))
        try server.start()
        let client = try RawClient(port: server.port)
        for index in 0..<2000 {
            client.send("GET /items/\(index) HTTP/1.1\r\nHost: x\r\n\r\n")
            XCTAssertEqual(client.readResponse()?.status, 200, "request \(index) was not answered")
        }
        Glibc.close(fds[0])  // unblock the log queue's pending write so shutdown can flush
        await server.shutdown()
    }

    /// A server with `/items/{id}` and `/metrics`, logging to a captured log.
    private static func startWithMetrics(loops: Int? = nil) throws -> (Server, CapturedLog) {
        let metrics = Metrics()
        var builder = RouterBuilder()
        builder.get("/items/{id}") { _ in .text("ok") }
        builder.get("/slow") { _ in
            try await Task.sleep(nanoseconds: 300_000_000)
            return .text("slow done")
        }
        builder.get("/metrics") { _ in .text(metrics.render(), contentType: "text/plain; version=0.0.4") }
        var configuration = ServerConfiguration()
        configuration.port = 0
        if let loops { configuration.loopCount = loops }
        let log = try CapturedLog()
        let server = Server(configuration: configuration, responder: builder.build(), metrics: metrics, log: log.requestLog)
        try server.start()
        return (server, log)
    }

    func testMetricsExposition() async throws {
        let (server, _) = try Self.startWithMetrics()
        // One keep-alive connection, so exactly one is open when /metrics is scraped.
        let client = try RawClient(port: server.port)
        for path in ["/items/1", "/items/2", "/missing", "/metrics"] {
            client.send("GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n")
            if path != "/metrics" { _ = client.readResponse() }
        }
        let text = try XCTUnwrap(client.readResponse()).text
        XCTAssertTrue(text.contains("heard_http_requests_total{method=\"GET\",route=\"/items/{id}\",status_class=\"2xx\"} 2"), text)
        XCTAssertTrue(text.contains("heard_http_requests_total{method=\"GET\",route=\"unmatched\",status_class=\"4xx\"} 1"), text)
        XCTAssertTrue(text.contains("heard_http_request_duration_seconds_bucket{method=\"GET\",route=\"/items/{id}\",status_class=\"2xx\",le=\"+Inf\"} 2"), text)
        XCTAssertTrue(text.contains("# TYPE heard_http_request_duration_seconds histogram"))
        XCTAssertTrue(text.contains("heard_http_open_connections 1"), text)
        XCTAssertTrue(text.contains("heard_http_in_flight_requests 1"), text)
        await server.shutdown()
    }

    /// Requests on different event loops are counted apart (no lock shared between loops) and
    /// scraped as one series: the counts, sums and buckets of every loop added up.
    func testMetricsOfEveryLoopAreAddedUp() async throws {
        let (server, _) = try Self.startWithMetrics(loops: 3)
        // Four connections, spread over the three loops: one request each.
        for index in 0..<4 {
            let client = try RawClient(port: server.port)
            client.send("GET /items/\(index) HTTP/1.1\r\nHost: x\r\n\r\n")
            XCTAssertEqual(client.readResponse()?.status, 200)
        }
        let scraper = try RawClient(port: server.port)
        scraper.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        let text = try XCTUnwrap(scraper.readResponse()).text
        XCTAssertTrue(text.contains("heard_http_requests_total{method=\"GET\",route=\"/items/{id}\",status_class=\"2xx\"} 4"), text)
        XCTAssertTrue(text.contains("heard_http_request_duration_seconds_count{method=\"GET\",route=\"/items/{id}\",status_class=\"2xx\"} 4"), text)
        XCTAssertTrue(text.contains("heard_http_request_duration_seconds_bucket{method=\"GET\",route=\"/items/{id}\",status_class=\"2xx\",le=\"+Inf\"} 4"), text)
        await server.shutdown()
    }

    /// A client that resets its connection while its request is being answered is closed at
    /// once (the poller reports the reset whatever the connection waits for): nothing is left
    /// open, and the server goes on serving.
    func testAConnectionResetWhileItsRequestIsAnsweredIsClosed() async throws {
        let (server, _) = try Self.startWithMetrics()
        var resetting: RawClient? = try RawClient(port: server.port)
        resetting?.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        usleep(50_000)
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        if let fd = resetting?.fd { setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size)) }
        resetting = nil  // closed with SO_LINGER 0: a reset
        usleep(400_000)  // past the slow handler's answer
        let client = try RawClient(port: server.port)
        var text = ""
        for _ in 0..<50 {  // a loaded machine may take a moment
            client.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            text = try XCTUnwrap(client.readResponse()).text
            if text.contains("heard_http_open_connections 1.0\n") { break }
            usleep(100_000)
        }
        XCTAssertTrue(text.contains("heard_http_open_connections 1.0\n"), "only the scraping connection: \(text)")
        await server.shutdown()
    }

    func testGracefulShutdownFinishesTheRequestInFlight() async throws {
        let server = try TestServer.start(routes: standardRoutes)
        let busy = try server.client()
        let idle = try server.client()
        idle.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(idle.readResponse()?.status, 200)
        busy.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        usleep(50_000)
        let shutdown = Task { await server.stop() }
        let response = busy.readResponse()
        XCTAssertEqual(response?.status, 200)
        XCTAssertEqual(response?.text, "slow done")
        XCTAssertEqual(response?.header("Connection"), "close")
        XCTAssertTrue(idle.isClosedByServer())
        await shutdown.value
        // No longer accepting.
        XCTAssertThrowsError(try RawClient(port: server.port))
    }
}

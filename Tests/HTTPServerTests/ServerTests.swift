import Foundation
import HTTPServer
import HeardTesting
import Synchronization
import XCTest
#if canImport(Glibc)
import Glibc
#endif

struct Failure: Error {}

/// The routes most tests use: an echo, a path parameter, a thrower and a slow handler.
func standardRoutes(_ router: inout RouterBuilder) {
    router.get("/hello") { _ in .text("hello") }
    router.post("/echo") { request in
        Response(status: .ok, headers: ["Content-Type": "application/octet-stream"], body: request.body)
    }
    router.get("/items/{id}") { request in
        .json(["id": request.parameter("id"), "q": request.query["q"] ?? ""])
    }
    router.get("/items/special") { _ in .text("special") }
    router.delete("/items/{id}") { _ in Response(status: .noContent) }
    router.get("/boom") { _ in throw Failure() }
    router.get("/teapot") { _ in throw HTTPError(ProblemType("already-there", .conflict, title: "Already there"), detail: "It is already there.") }
    router.get("/slow") { _ in
        try await Task.sleep(nanoseconds: 300_000_000)
        return .text("slow done")
    }
    router.get("/big") { request in
        let size = Int(request.query["bytes"] ?? "") ?? 0
        return Response(body: [UInt8](repeating: UInt8(ascii: "x"), count: size))
    }
}

final class ServerTests: XCTestCase {
    var server: TestServer!

    override func setUp() async throws {
        server = try TestServer.start(routes: standardRoutes)
    }

    override func tearDown() async throws {
        await server.stop()
    }

    func testSimpleGetCarriesServerHeaders() throws {
        let response = try roundTrip(server.port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.text, "hello")
        XCTAssertEqual(response.header("Content-Length"), "5")
        XCTAssertNotNil(response.header("Date"))
        XCTAssertEqual(response.header("X-Request-Id")?.count, 32)
        XCTAssertEqual(response.header("Cache-Control"), "no-store")
        XCTAssertEqual(response.header("X-Content-Type-Options"), "nosniff")
        XCTAssertEqual(response.header("X-Frame-Options"), "DENY")
    }

    func testSaneRequestIdIsEchoedAndAnInsaneOneIsReplaced() throws {
        let echoed = try roundTrip(server.port, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Request-Id: mosaic-batch-42.7\r\n\r\n")
        XCTAssertEqual(echoed.header("X-Request-Id"), "mosaic-batch-42.7")
        let replaced = try roundTrip(server.port, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Request-Id: <script>alert(1)</script>\r\n\r\n")
        XCTAssertNotEqual(replaced.header("X-Request-Id"), "<script>alert(1)</script>")
        XCTAssertEqual(replaced.header("X-Request-Id")?.count, 32)
    }

    func testKeepAliveReusesTheConnection() throws {
        let client = try server.client()
        for index in 0..<5 {
            client.send("GET /items/\(index) HTTP/1.1\r\nHost: x\r\n\r\n")
            let response = try XCTUnwrap(client.readResponse())
            XCTAssertEqual(response.status, 200)
            XCTAssertEqual(response.json["id"] as? String, String(index))
            XCTAssertNil(response.header("Connection"))
        }
    }

    func testPipelinedRequestsInOneWriteAreAnsweredInOrder() throws {
        let client = try server.client()
        var batch = ""
        for index in 0..<20 { batch += "GET /items/\(index) HTTP/1.1\r\nHost: x\r\n\r\n" }
        batch += "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nlast"
        client.send(batch)
        for index in 0..<20 {
            let response = try XCTUnwrap(client.readResponse())
            XCTAssertEqual(response.json["id"] as? String, String(index))
        }
        XCTAssertEqual(client.readResponse()?.text, "last")
    }

    func testAThousandPipelinedRequestsAreAllAnsweredInOrder() throws {
        // Handlers that finish without suspending are answered inline; a long pipeline must
        // neither grow the stack nor lose or reorder a response.
        let client = try server.client()
        let count = 1000
        var batch = ""
        for index in 0..<count { batch += "GET /items/\(index) HTTP/1.1\r\nHost: x\r\n\r\n" }
        client.send(batch)
        for index in 0..<count {
            let response = try XCTUnwrap(client.readResponse(), "response \(index) missing")
            XCTAssertEqual(response.json["id"] as? String, String(index))
        }
    }

    func testAClientThatHalfClosesStillGetsItsAnswer() throws {
        let client = try server.client()
        client.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        shutdown(client.fd, Int32(SHUT_WR))
        let response = client.readResponse()
        XCTAssertEqual(response?.text, "slow done")
        XCTAssertEqual(response?.header("Connection"), "close")
        XCTAssertTrue(client.isClosedByServer())
    }

    func testARequestFedOneByteAtATimeIsParsed() throws {
        let client = try server.client()
        let raw = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: yes\r\n\r\n"
        for byte in raw.utf8 {
            client.send([byte])
            usleep(200)
        }
        let response = try XCTUnwrap(client.readResponse())
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.text, "hello, world")
    }

    func testContentLengthBodyIsEchoedAndIdenticalRepeatsAreAccepted() throws {
        let response = try roundTrip(server.port, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.text, "abc")
    }

    func testHTTP10ClosesByDefaultAndKeepsAliveWhenAsked() throws {
        let client = try server.client()
        client.send("GET /hello HTTP/1.0\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.header("Connection"), "close")
        XCTAssertTrue(client.isClosedByServer())

        let alive = try server.client()
        alive.send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        XCTAssertEqual(alive.readResponse()?.header("Connection"), "keep-alive")
        alive.send("GET /hello HTTP/1.0\r\n\r\n")
        XCTAssertEqual(alive.readResponse()?.text, "hello")
    }

    func testConnectionCloseIsHonoured() throws {
        let client = try server.client()
        client.send("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.header("Connection"), "close")
        XCTAssertTrue(client.isClosedByServer())
    }

    func testExpectContinueGetsAnInterimAnswerBeforeTheBody() throws {
        let client = try server.client()
        client.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.status, 100)
        client.send("12345")
        XCTAssertEqual(client.readResponse()?.text, "12345")
    }

    func testAnUnknownExpectationIs417() throws {
        XCTAssertEqual(try roundTrip(server.port, "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: magic\r\nContent-Length: 0\r\n\r\n").status, 417)
    }

    // MARK: Routing

    func testUnknownPathIs404ProblemJSON() throws {
        let response = try roundTrip(server.port, "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(response.status, 404)
        XCTAssertEqual(response.header("Content-Type"), "application/problem+json")
        XCTAssertEqual(response.json["status"] as? Int, 404)
        XCTAssertEqual(response.json["title"] as? String, "Not Found")
        XCTAssertNotNil(response.json["detail"] as? String)
        XCTAssertEqual(response.json["type"] as? String, "about:blank")
        // Paths of more segments than any route, fewer, or as many as a route but not its own.
        for path in ["/items/3/more", "/items/3/more/and/more/and/more", "/items/caf%C3%A9/x/y/z", "/", "/items/3/", "/hello/"] {
            XCTAssertEqual(try roundTrip(server.port, "GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n").status, 404, path)
        }
    }

    func testWrongMethodIs405WithAllow() throws {
        let response = try roundTrip(server.port, "PUT /items/3 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        XCTAssertEqual(response.status, 405)
        XCTAssertEqual(response.header("Allow"), "DELETE, GET, HEAD, OPTIONS")
    }

    func testLiteralSegmentsWinOverParameters() throws {
        XCTAssertEqual(try roundTrip(server.port, "GET /items/special HTTP/1.1\r\nHost: x\r\n\r\n").text, "special")
    }

    func testPathParametersAndQueryArePercentDecoded() throws {
        let response = try roundTrip(server.port, "GET /items/caf%C3%A9%2F1?q=a+b%26c HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(response.json["id"] as? String, "café/1")
        XCTAssertEqual(response.json["q"] as? String, "a b&c")
    }

    func testBadPercentEncodingIs400() throws {
        XCTAssertEqual(try roundTrip(server.port, "GET /items/%ZZ HTTP/1.1\r\nHost: x\r\n\r\n").status, 400)
        XCTAssertEqual(try roundTrip(server.port, "GET /items/1?q=%E2%28 HTTP/1.1\r\nHost: x\r\n\r\n").status, 400)
    }

    func testHeadAnswersLikeGetWithoutABody() throws {
        let client = try server.client()
        client.send("HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        let response = try XCTUnwrap(client.readResponse(forHead: true))
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.header("Content-Length"), "5")
        // No body followed: the next response on the connection starts cleanly.
        client.send("GET /items/7 HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.json["id"] as? String, "7")
    }

    func testOptionsListsTheMethods() throws {
        let response = try roundTrip(server.port, "OPTIONS /items/1 HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(response.status, 204)
        XCTAssertEqual(response.header("Allow"), "DELETE, GET, HEAD, OPTIONS")
        XCTAssertNil(response.header("Access-Control-Allow-Origin"))
    }

    func testAThrowingHandlerGets500AndOthersStillSucceed() throws {
        let keepAlive = try server.client()
        keepAlive.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(keepAlive.readResponse()?.status, 200)

        let failed = try roundTrip(server.port, "GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(failed.status, 500)
        XCTAssertEqual(failed.header("Content-Type"), "application/problem+json")
        XCTAssertFalse(failed.text.contains("Failure"), "no internals in the body")

        keepAlive.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(keepAlive.readResponse()?.status, 200)
        XCTAssertEqual(try roundTrip(server.port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").status, 200)
    }

    func testAThrownHTTPErrorIsRenderedAsProblem() throws {
        let response = try roundTrip(server.port, "GET /teapot HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(response.status, 409)
        XCTAssertEqual(response.json["type"] as? String, "urn:heard:problem:already-there")
        XCTAssertEqual(response.json["detail"] as? String, "It is already there.")
    }

    func testAResponseLargerThanTheSocketBufferIsFinished() throws {
        let size = 16 * 1024 * 1024
        let client = try server.client()
        client.send("GET /big?bytes=\(size) HTTP/1.1\r\nHost: x\r\n\r\n")
        usleep(300_000)  // let the server fill the socket buffer and wait for writability
        let response = try XCTUnwrap(client.readResponse())
        XCTAssertEqual(response.body.count, size)
        client.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.text, "hello")
    }

    func testTheLogNamesTheRouteTemplateNotThePath() async throws {
        _ = try roundTrip(server.port, "GET /items/1 HTTP/1.1\r\nHost: x\r\n\r\n")
        _ = try roundTrip(server.port, "GET /items/2 HTTP/1.1\r\nHost: x\r\n\r\n")
        _ = try roundTrip(server.port, "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
        let log = server.log.text()
        XCTAssertTrue(log.contains("\"route\":\"/items/{id}\""), log)
        XCTAssertTrue(log.contains("\"route\":\"unmatched\""), log)
    }
}

import Foundation
import HTTPServer
import HeardTesting
import XCTest

/// Every framing doubt RFC 9112 names is answered 400 and the connection closed: a request
/// smuggled past us is impossible because nothing ambiguous is ever read as a request.
final class RejectionTests: XCTestCase {
    var server: TestServer!

    override func setUp() async throws {
        server = try TestServer.start(configure: { $0.maxBodyBytes = 1024; $0.maxHeadBytes = 2048 }, routes: standardRoutes)
    }

    override func tearDown() async throws {
        await server.stop()
    }

    private func assertRejected(_ raw: String, status: Int = 400, file: StaticString = #filePath, line: UInt = #line) throws {
        let client = try server.client()
        client.send(raw)
        let response = client.readResponse()
        XCTAssertEqual(response?.status, status, "for \(raw.debugDescription)", file: file, line: line)
        XCTAssertEqual(response?.header("Connection"), "close", file: file, line: line)
        XCTAssertEqual(response?.header("Content-Type"), "application/problem+json", file: file, line: line)
        XCTAssertTrue(client.isClosedByServer(), "connection left open after \(raw.debugDescription)", file: file, line: line)
    }

    func testContentLengthWithTransferEncoding() throws {
        try assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        try assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n")
    }

    func testConflictingOrInvalidContentLength() throws {
        try assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef")
        try assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nabcdef")
        try assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
        try assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nabcde")
        try assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nabcde")
        try assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n")
        try assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n")
    }

    func testTransferEncodingOtherThanAFinalChunked() throws {
        try assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n")
        try assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n")
        try assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n")
        try assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        try assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n")
        try assertRejected("POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    }

    func testObsFold() throws {
        try assertRejected("GET /hello HTTP/1.1\r\nHost: x\r\nX-Long: a\r\n  continued\r\n\r\n")
        try assertRejected("GET /hello HTTP/1.1\r\nHost: x\r\nX-Long: a\r\n\tcontinued\r\n\r\n")
    }

    func testBareCRAndBareLF() throws {
        try assertRejected("GET /hello HTTP/1.1\r\nHost: x\rX-Evil: 1\r\n\r\n")
        try assertRejected("GET /hello HTTP/1.1\nHost: x\r\n\r\n")
        try assertRejected("GET /hello HTTP/1.1\r\nHost: x\r\nX-A: 1\n\r\n")
    }

    func testInvalidCharactersInMethodTargetAndHeaderNames() throws {
        try assertRejected("G(ET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        try assertRejected("GET /hel\u{01}lo HTTP/1.1\r\nHost: x\r\n\r\n")
        try assertRejected("GET /hello world HTTP/1.1\r\nHost: x\r\n\r\n")
        try assertRejected("GET  /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        try assertRejected("GET /hello HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n")
        try assertRejected("GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length : 0\r\n\r\n")
        try assertRejected("GET /hello HTTP/1.1\r\nHost: x\r\n: empty\r\n\r\n")
        try assertRejected("GET /hello HTTP/1.1\r\nHost: x\r\nX-Ctl: a\u{7F}b\r\n\r\n")
        try assertRejected("GET /hello HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n")
        try assertRejected("GET hello HTTP/1.1\r\nHost: x\r\n\r\n")
        try assertRejected("GET /hello HTTP/1.1\r\nHost: x\r\nX-Nul: a\u{00}b\r\n\r\n")
    }

    func testMalformedOrUnsupportedVersion() throws {
        try assertRejected("GET /hello HTTP/1.x\r\nHost: x\r\n\r\n")
        try assertRejected("GET /hello HTTPS/1.1\r\nHost: x\r\n\r\n")
        try assertRejected("GET /hello HTTP/2.0\r\nHost: x\r\n\r\n", status: 505)
    }

    func testMissingOrRepeatedHostOnHTTP11() throws {
        try assertRejected("GET /hello HTTP/1.1\r\n\r\n")
        try assertRejected("GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    }

    func testBadChunkSizes() throws {
        let prefix = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        try assertRejected(prefix + "zz\r\nhello\r\n0\r\n\r\n")
        try assertRejected(prefix + "\r\nhello\r\n0\r\n\r\n")
        try assertRejected(prefix + "-5\r\nhello\r\n0\r\n\r\n")
        try assertRejected(prefix + "fffffffffffffffff\r\n")
        try assertRejected(prefix + "5\r\nhelloXX0\r\n\r\n")
        try assertRejected(prefix + "5\nhello\r\n0\r\n\r\n")
        try assertRejected(prefix + "5\r\nhello\r\n0\r\nX-Trailer: a\r\n folded\r\n\r\n")
    }

    func testOversizedHeadIs431() throws {
        let big = String(repeating: "a", count: 4096)
        try assertRejected("GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: \(big)\r\n\r\n", status: 431)
        // Still 431 when the head never ends.
        try assertRejected("GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: \(big)", status: 431)
    }

    func testOversizedBodyIs413WithoutReadingIt() throws {
        try assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nabc", status: 413)
        let chunk = String(repeating: "y", count: 800)
        try assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n320\r\n\(chunk)\r\n320\r\n\(chunk)\r\n", status: 413)
        // With Expect: 100-continue the client learns before sending anything.
        try assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n", status: 413)
    }

    func testASmugglingAttemptNeverReachesAHandlerAsASecondRequest() throws {
        // The classic CL.TE attack: a front end honouring Content-Length would forward the
        // "GET /boom" as body; one honouring Transfer-Encoding would see it as a new request.
        let client = try server.client()
        client.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(client.readResponse()?.status, 400)
        XCTAssertTrue(client.isClosedByServer())
        XCTAssertFalse(server.log.text().contains("/boom"))
    }
}

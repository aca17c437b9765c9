@testable import HTTPServer
import XCTest

/// The parser on its own, without sockets: every request of the rejection list and a set of
/// valid ones, whole and split at every byte boundary, must end the same way (in the spirit of
/// SwiftNIO's HTTP/1 parser tests). A client may deliver bytes in any split; the answer may not
/// depend on it.
final class HTTPParserTests: XCTestCase {
    /// The limits `RejectionTests` runs the server with.
    private static let limits = HTTPParser.Limits(maxHeadBytes: 2048, maxHeaderCount: 100, maxBodyBytes: 1024)

    /// What feeding some bytes produced: the requests, in order, then an error or nothing.
    private struct Outcome: Equatable, CustomStringConvertible {
        var requests: [String] = []
        var error: HTTPParser.ParseError?

        var description: String {
            requests.joined(separator: "\n") + "\n" + (error.map { "error: \($0.status.code) \($0.detail)" } ?? "no error")
        }
    }

    /// A request as text: every field the parser hands on.
    private static func describe(_ parsed: HTTPParser.ParsedRequest) -> String {
        let head = parsed.head
        let headers = head.headers.map { "\($0.name)=\($0.value)" }.joined(separator: "|")
        return "\(head.method) \(head.target) \(head.version) keepAlive=\(head.keepAlive) "
            + "continue=\(head.expectsContinue) headers=[\(headers)] body=\(String(decoding: parsed.body, as: UTF8.self).debugDescription)"
    }

    /// Feeds `chunks` one after another, taking every request each one completes.
    private static func outcome(feeding chunks: [ArraySlice<UInt8>]) -> Outcome {
        var parser = HTTPParser(limits: limits)
        var outcome = Outcome()
        for chunk in chunks {
            parser.append(Array(chunk))
            do {
                while let parsed = try parser.nextRequest() {
                    outcome.requests.append(describe(parsed))
                }
                if parser.pendingContinue { parser.continueSent() }
            } catch {
                outcome.error = error
                return outcome
            }
        }
        return outcome
    }

    /// Asserts that every split gives the same outcome as the whole, and returns that outcome.
    @discardableResult
    private func assertSplitInvariant(_ raw: String, file: StaticString = #filePath, line: UInt = #line) -> Outcome {
        let bytes = Array(raw.utf8)[...]
        let whole = Self.outcome(feeding: [bytes])
        for split in 1..<max(1, bytes.count) {
            let parts = [bytes[..<split], bytes[split...]]
            let outcome = Self.outcome(feeding: parts)
            if outcome != whole {
                XCTFail("split at \(split) of \(raw.debugDescription):\n\(outcome)\nwhole:\n\(whole)", file: file, line: line)
                break
            }
        }
        let oneByteAtATime = Self.outcome(feeding: bytes.indices.map { bytes[$0...$0] })
        XCTAssertEqual(oneByteAtATime, whole, "one byte at a time: \(raw.debugDescription)", file: file, line: line)
        return whole
    }

    private func assertRejected(_ raw: String, status: Int = 400, detail: String? = nil, file: StaticString = #filePath, line: UInt = #line) {
        let outcome = assertSplitInvariant(raw, file: file, line: line)
        XCTAssertEqual(outcome.error?.status.code, status, "for \(raw.debugDescription)", file: file, line: line)
        if let detail {
            XCTAssertEqual(outcome.error?.detail, detail, "for \(raw.debugDescription)", file: file, line: line)
        }
    }

    private func assertParsed(_ raw: String, as expected: [String], file: StaticString = #filePath, line: UInt = #line) {
        let outcome = assertSplitInvariant(raw, file: file, line: line)
        XCTAssertNil(outcome.error, "for \(raw.debugDescription)", file: file, line: line)
        XCTAssertEqual(outcome.requests, expected, file: file, line: line)
    }

    // MARK: - The rejection list (RejectionTests), at the parser

    func testFramingConflictsAreRejectedInEverySplit() {
        assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                       detail: "Content-Length and Transfer-Encoding together are not allowed.")
        assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
                       detail: "Content-Length and Transfer-Encoding together are not allowed.")
        assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nabcdef", detail: "Content-Length values disagree.")
        assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
                       detail: "Content-Length values disagree.")
        for bad in ["-1", "+5", "0x5", "", "99999999999999999999"] {
            assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: \(bad)\r\n\r\nabcde", detail: "Content-Length is not a valid length.")
        }
        for coding in ["gzip", "chunked, gzip", "gzip, chunked", "xchunked"] {
            assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \(coding)\r\n\r\n0\r\n\r\n",
                           detail: "The only Transfer-Encoding accepted is chunked.")
        }
        assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                       detail: "The only Transfer-Encoding accepted is chunked.")
        assertRejected("POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", detail: "Transfer-Encoding is not allowed in HTTP/1.0.")
        assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /boom HTTP/1.1\r\nHost: x\r\n\r\n",
                       detail: "Content-Length and Transfer-Encoding together are not allowed.")
    }

    func testLineStructureFaultsAreRejectedInEverySplit() {
        let obsFold = "Obsolete line folding (obs-fold) is not allowed."
        assertRejected("GET /hello HTTP/1.1\r\nHost: x\r\nX-Long: a\r\n  continued\r\n\r\n", detail: obsFold)
        assertRejected("GET /hello HTTP/1.1\r\nHost: x\r\nX-Long: a\r\n\tcontinued\r\n\r\n", detail: obsFold)
        assertRejected("GET /hello HTTP/1.1\r\nHost: x\rX-Evil: 1\r\n\r\n", detail: "A bare CR is not allowed.")
        assertRejected("GET /hello HTTP/1.1\nHost: x\r\n\r\n", detail: "A bare LF is not allowed; lines end with CRLF.")
        assertRejected("GET /hello HTTP/1.1\r\nHost: x\r\nX-A: 1\n\r\n", detail: "A bare LF is not allowed; lines end with CRLF.")
        assertRejected("GET /hello HTTP/1.1\r\nHost: x\r\nX-Nul: a\u{00}b\r\n\r\n", detail: "NUL is not allowed in the request head.")
    }

    func testBadCharactersAreRejectedInEverySplit() {
        let requestLine = "The request line must be: method, one space, target, one space, version."
        assertRejected("G(ET /hello HTTP/1.1\r\nHost: x\r\n\r\n", detail: "The method has characters a token cannot have.")
        assertRejected("GET /hel\u{01}lo HTTP/1.1\r\nHost: x\r\n\r\n", detail: "The request target has characters that are not allowed.")
        assertRejected("GET /hello world HTTP/1.1\r\nHost: x\r\n\r\n", detail: requestLine)
        assertRejected("GET  /hello HTTP/1.1\r\nHost: x\r\n\r\n", detail: requestLine)
        assertRejected("GET /hello\r\nHost: x\r\n\r\n", detail: requestLine)
        let badName = "A header name is empty or has characters that are not allowed."
        assertRejected("GET /hello HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", detail: badName)
        assertRejected("GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length : 0\r\n\r\n", detail: badName)
        assertRejected("GET /hello HTTP/1.1\r\nHost: x\r\n: empty\r\n\r\n", detail: badName)
        assertRejected("GET /hello HTTP/1.1\r\nHost: x\r\nX-Ctl: a\u{7F}b\r\n\r\n", detail: "The value of X-Ctl has control characters.")
        assertRejected("GET /hello HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", detail: "A header line has no colon.")
        assertRejected("GET hello HTTP/1.1\r\nHost: x\r\n\r\n", detail: "The request target must be a path.")
        assertRejected("GET * HTTP/1.1\r\nHost: x\r\n\r\n", detail: "The target * is only for OPTIONS.")
        assertRejected("CONNECT example.org:443 HTTP/1.1\r\nHost: x\r\n\r\n", detail: "CONNECT is not supported.")
    }

    func testVersionHostAndExpectationFaultsAreRejectedInEverySplit() {
        assertRejected("GET /hello HTTP/1.x\r\nHost: x\r\n\r\n", detail: "The HTTP version is malformed.")
        assertRejected("GET /hello HTTPS/1.1\r\nHost: x\r\n\r\n", detail: "The HTTP version is malformed.")
        assertRejected("GET /hello HTTP/2.0\r\nHost: x\r\n\r\n", status: 505)
        assertRejected("GET /hello HTTP/1.2\r\nHost: x\r\n\r\n", status: 505)
        assertRejected("GET /hello HTTP/1.1\r\n\r\n", detail: "HTTP/1.1 requires a Host header.")
        assertRejected("GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", detail: "More than one Host header.")
        assertRejected("GET /hello HTTP/1.1\r\nhOST: a\r\nHost: a\r\n\r\n", detail: "More than one Host header.")
        assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: the-unexpected\r\nContent-Length: 1\r\n\r\nx", status: 417)
        assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx", status: 417)
    }

    func testBadChunksAreRejectedInEverySplit() {
        let prefix = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        assertRejected(prefix + "zz\r\nhello\r\n0\r\n\r\n", detail: "A chunk size is missing or too long.")
        assertRejected(prefix + "\r\nhello\r\n0\r\n\r\n", detail: "A chunk size is missing or too long.")
        assertRejected(prefix + "-5\r\nhello\r\n0\r\n\r\n", detail: "A chunk size is missing or too long.")
        assertRejected(prefix + "fffffffffffffffff\r\n", detail: "A chunk size is missing or too long.")
        assertRejected(prefix + "5\r\nhelloXX0\r\n\r\n", detail: "Chunk data is not followed by CRLF.")
        assertRejected(prefix + "5\nhello\r\n0\r\n\r\n", detail: "A bare LF is not allowed; lines end with CRLF.")
        assertRejected(prefix + "5\r\nhello\r\n0\r\nX-Trailer: a\r\n folded\r\n\r\n", detail: "Obsolete line folding (obs-fold) is not allowed.")
        assertRejected(prefix + "5 x\u{01}\r\nhello\r\n0\r\n\r\n", detail: "A chunk size line is malformed.")
    }

    func testLimitsAreEnforcedInEverySplit() {
        let big = String(repeating: "a", count: 4096)
        assertRejected("GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: \(big)\r\n\r\n", status: 431)
        assertRejected("GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: \(big)", status: 431)
        let many = (0..<101).map { "X-\($0): y\r\n" }.joined()
        assertRejected("GET /hello HTTP/1.1\r\nHost: x\r\n\(many)\r\n", status: 431)
        assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nabc", status: 413)
        let chunk = String(repeating: "y", count: 800)
        assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n320\r\n\(chunk)\r\n320\r\n\(chunk)\r\n", status: 413)
        assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n", status: 413)
    }

    func testChunkLinesAndExtensionsCountAgainstTheMessageLimit() {
        // Four one-byte chunks, each behind a 900-byte extension: a 4-byte body, but 3.6 KB the
        // server would hold (the limits here allow 2048 + 1024).
        let extensionText = ";" + String(repeating: "e", count: 900)
        let chunks = String(repeating: "1\(extensionText)\r\nx\r\n", count: 4)
        assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\(chunks)0\r\n\r\n", status: 413)
        // Trailers count too, beside the body.
        let body = String(repeating: "y", count: 1000)
        let trailers = (0..<3).map { "X-T\($0): \(String(repeating: "t", count: 662))\r\n" }.joined()
        assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n\(body)\r\n0\r\n\(trailers)\r\n", status: 413)
    }

    func testTheBufferHoldsOnlyWhatIsNotParsedYet() throws {
        var parser = HTTPParser(limits: Self.limits)
        parser.append(Array("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".utf8))
        XCTAssertNil(try parser.nextRequest())
        for _ in 0..<9 {
            parser.append(Array("64\r\n\(String(repeating: "z", count: 100))\r\n".utf8))
            XCTAssertNil(try parser.nextRequest())
            XCTAssertEqual(parser.buffer.count, 0, "parsed chunks are dropped from the buffer")
        }
        parser.append(Array("3\r\nabc".utf8))
        XCTAssertNil(try parser.nextRequest())
        XCTAssertLessThanOrEqual(parser.buffer.count, 2, "only the chunk's missing CRLF may be outstanding")
        parser.append(Array("\r\n0\r\n\r\n".utf8))
        XCTAssertEqual(try parser.nextRequest()?.body.count, 903)
        XCTAssertEqual(parser.buffer.count, 0)
    }

    func testTheBufferOfALargeRequestIsGivenBack() throws {
        var parser = HTTPParser(limits: HTTPParser.Limits(maxHeadBytes: 2048, maxHeaderCount: 100, maxBodyBytes: 1 << 20))
        let body = String(repeating: "b", count: 500_000)
        parser.append(Array("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8))
        XCTAssertEqual(try parser.nextRequest()?.body.count, 500_000)
        XCTAssertLessThanOrEqual(parser.buffer.capacity, HTTPParser.retainedCapacity)
        // And with a pipelined request behind it, which is kept.
        parser.append(Array("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)GET /hello HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        XCTAssertEqual(try parser.nextRequest()?.body.count, 500_000)
        XCTAssertLessThanOrEqual(parser.buffer.capacity, HTTPParser.retainedCapacity)
        XCTAssertEqual(try parser.nextRequest()?.head.target, "/hello")
    }

    func testLeadingEmptyLinesAreSkippedInOnePassAndCounted() throws {
        assertParsed("\r\n\r\n\r\n\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n", as: [
            "GET /hello HTTP/1.1 keepAlive=true continue=false headers=[Host=x] body=\"\"",
        ])
        // More empty lines than a head may hold are a head too large, not an endless skip.
        var parser = HTTPParser(limits: Self.limits)
        parser.append(Array(String(repeating: "\r\n", count: 1025).utf8))
        XCTAssertThrowsError(try parser.nextRequest()) { XCTAssertEqual($0 as? HTTPParser.ParseError, .headersTooLarge) }
        // A million of them at once cost one pass (the old skip recursed once per 8 bytes).
        var big = HTTPParser(limits: HTTPParser.Limits(maxHeadBytes: 4 << 20, maxHeaderCount: 100, maxBodyBytes: 1024))
        big.append(Array(String(repeating: "\r\n", count: 1_000_000).utf8) + Array("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        XCTAssertEqual(try big.nextRequest()?.head.target, "/hello")
    }

    func testAnEmptyTransferEncodingBesideChunkedIsRejected() {
        assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: \r\n\r\n0\r\n\r\n")
        assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n")
        assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n")
        assertRejected("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\r\n")
    }

    func testTheTokenCharacterMasksMatchTheGrammar() {
        for byte in UInt8.min...UInt8.max {
            XCTAssertEqual(byte.isTokenCharacter, UInt8.isTokenCharacterByName(byte), "byte \(byte)")
        }
    }

    // MARK: - Valid requests

    func testSimpleRequestsParseTheSameInEverySplit() {
        assertParsed("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n", as: [
            "GET /healthz HTTP/1.1 keepAlive=true continue=false headers=[Host=127.0.0.1:8080] body=\"\"",
        ])
        assertParsed("\r\n\r\nGET /a?b=c%20d HTTP/1.1\r\nhost:x\r\nUser-Agent: \t curl/8.0 \t\r\nAccept: */*\r\nX-Obs: caf\u{E9}\r\n\r\n", as: [
            "GET /a?b=c%20d HTTP/1.1 keepAlive=true continue=false headers=[host=x|User-Agent=curl/8.0|Accept=*/*|X-Obs=caf\u{E9}] body=\"\"",
        ])
        assertParsed("GET /x HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive, CLOSE\r\n\r\n", as: [
            "GET /x HTTP/1.1 keepAlive=false continue=false headers=[Host=x|Connection=Keep-Alive, CLOSE] body=\"\"",
        ])
        assertParsed("GET /x HTTP/1.0\r\n\r\nGET /y HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", as: [
            "GET /x HTTP/1.0 keepAlive=false continue=false headers=[] body=\"\"",
            "GET /y HTTP/1.0 keepAlive=true continue=false headers=[Connection=keep-alive] body=\"\"",
        ])
        assertParsed("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\nGET http://example.org/p?q HTTP/1.1\r\nHost: example.org\r\n\r\n", as: [
            "OPTIONS * HTTP/1.1 keepAlive=true continue=false headers=[Host=x] body=\"\"",
            "GET http://example.org/p?q HTTP/1.1 keepAlive=true continue=false headers=[Host=example.org] body=\"\"",
        ])
    }

    func testBodiesParseTheSameInEverySplit() {
        assertParsed("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /next HTTP/1.1\r\nHost: x\r\n\r\n", as: [
            "POST /echo HTTP/1.1 keepAlive=true continue=false headers=[Host=x|Content-Length=5] body=\"hello\"",
            "GET /next HTTP/1.1 keepAlive=true continue=false headers=[Host=x] body=\"\"",
        ])
        assertParsed("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc", as: [
            "POST /echo HTTP/1.1 keepAlive=true continue=false headers=[Host=x|Content-Length=3, 3|Content-Length=3] body=\"abc\"",
        ])
        assertParsed("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", as: [
            "POST /echo HTTP/1.1 keepAlive=true continue=false headers=[Host=x|Content-Length=0] body=\"\"",
        ])
        assertParsed("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n5;name=value\r\nhello\r\nA\r\n, chunked!\r\n0\r\nX-Trailer: t\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n", as: [
            "POST /echo HTTP/1.1 keepAlive=true continue=false headers=[Host=x|Transfer-Encoding=Chunked] body=\"hello, chunked!\"",
            "GET /after HTTP/1.1 keepAlive=true continue=false headers=[Host=x] body=\"\"",
        ])
        assertParsed("PUT /up HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nok", as: [
            "PUT /up HTTP/1.1 keepAlive=true continue=true headers=[Host=x|Expect=100-Continue|Content-Length=2] body=\"ok\"",
        ])
        assertParsed("PUT /up HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok", as: [
            "PUT /up HTTP/1.0 keepAlive=false continue=false headers=[Expect=100-continue|Content-Length=2] body=\"ok\"",
        ])
    }

    func testAnIncompleteRequestIsNotAnError() {
        assertParsed("GET /x HTTP/1.1\r\nHost: x\r\n", as: [])
        assertParsed("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel", as: [])
        assertParsed("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", as: [])
    }
}

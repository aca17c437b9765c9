/// An incremental HTTP/1.1 request parser (RFC 9112).
///
/// Bytes arrive in any split (one at a time, several requests at once); `append` adds them and
/// `nextRequest()` returns a complete request when one is there, or nil for "need more". It is
/// strict where laxness allows request smuggling: a message whose framing is in any doubt is a
/// `ParseError`, and the connection answers it and closes.
struct HTTPParser {
    struct Limits: Sendable {
        var maxHeadBytes = 16 * 1024
        var maxHeaderCount = 100
        var maxBodyBytes = 1024 * 1024

        /// Everything one message may make the server hold: head (leading empty lines
        /// included), body, and for a chunked body its size lines, extensions and trailers.
        var maxMessageBytes: Int { maxHeadBytes + maxBodyBytes }
    }

    /// A buffer that grew past this for a large message is given back once it is consumed, so a
    /// connection that once carried a megabyte does not keep it while idle.
    static let retainedCapacity = 64 * 1024

    enum ParseError: Error, Equatable {
        case badRequest(String)
        case headersTooLarge
        case bodyTooLarge
        case versionNotSupported
        case expectationFailed

        var status: HTTPStatus {
            switch self {
            case .badRequest: .badRequest
            case .headersTooLarge: .headerFieldsTooLarge
            case .bodyTooLarge: .contentTooLarge
            case .versionNotSupported: .versionNotSupported
            case .expectationFailed: .expectationFailed
            }
        }

        var detail: String {
            switch self {
            case .badRequest(let reason): reason
            case .headersTooLarge: "The request line and headers are larger than the server accepts."
            case .bodyTooLarge: "The request body is larger than the server accepts."
            case .versionNotSupported: "Only HTTP/1.1 and HTTP/1.0 are supported."
            case .expectationFailed: "Only the expectation 100-continue is supported."
            }
        }
    }

    struct Head {
        var method: String
        var target: String
        var version: HTTPVersion
        var headers: HTTPHeaders
        var keepAlive: Bool
        var expectsContinue: Bool
        /// Whether the head has these framing fields, noted while parsing so that the usual
        /// request, which has neither, needs no lookup.
        var hasTransferEncoding = false
        var hasContentLength = false
    }

    struct ParsedRequest {
        var head: Head
        var body: [UInt8]
    }

    private enum Framing {
        case none
        case length(Int)
        case chunked
    }

    private enum ChunkState {
        case size
        case data(remaining: Int)
        case dataEnd
        /// `bytes` of trailer lines read so far.
        case trailers(bytes: Int)
    }

    private enum State {
        /// Scanning for the end of the head; `scanned` bytes are known to be well-formed and hold
        /// `lineEnds` line ends; `skipped` bytes of leading empty lines were dropped before it.
        case head(scanned: Int, lineEnds: Int, skipped: Int)
        case body(Head, bodyStart: Int, length: Int)
        /// `position` is where parsing resumes in the buffer; the head (`headBytes`) and
        /// `consumed` bytes of the body were already dropped from the buffer's front (chunk data
        /// is copied into `body` as it arrives, so the buffer holds only what is not parsed yet).
        case chunked(Head, headBytes: Int, position: Int, consumed: Int, chunk: ChunkState, body: [UInt8])
    }

    let limits: Limits
    private(set) var buffer: [UInt8] = []
    private var state: State = .head(scanned: 0, lineEnds: 0, skipped: 0)
    /// The head of the request whose body is still arriving, if it asked for `100 Continue`.
    private(set) var pendingContinue = false

    init(limits: Limits = Limits()) {
        self.limits = limits
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        buffer.append(contentsOf: bytes)
    }

    mutating func append(_ bytes: [UInt8]) {
        buffer.append(contentsOf: bytes)
    }

    /// True once any byte of the next request has arrived (used for request timeouts).
    var hasPartialRequest: Bool {
        if case .head(_, _, let skipped) = state { return !buffer.isEmpty || skipped > 0 }
        return true
    }

    /// True while the head is still arriving (slow headers get 408).
    var isReadingHead: Bool {
        if case .head(_, _, let skipped) = state { return !buffer.isEmpty || skipped > 0 }
        return false
    }

    /// Bytes of the body (with its chunk framing) received so far, nil while the head is
    /// still arriving: what the minimum data rate is measured on.
    var bodyBytesReceived: Int? {
        switch state {
        case .head: nil
        case .body(_, let bodyStart, _): buffer.count - bodyStart
        case .chunked(_, _, _, let consumed, _, _): consumed + buffer.count
        }
    }

    /// Called once the interim `100 Continue` was sent.
    mutating func continueSent() { pendingContinue = false }

    mutating func nextRequest() throws(ParseError) -> ParsedRequest? {
        while true {
            switch state {
            case .head(let scanned, let lineEnds, let skipped):
                guard let (head, bodyStart) = try parseHead(scanned: scanned, lineEnds: lineEnds, skipped: skipped) else { return nil }
                let framing = try framing(of: head)
                switch framing {
                case .none:
                    consume(bodyStart)
                    state = .head(scanned: 0, lineEnds: 0, skipped: 0)
                    return ParsedRequest(head: head, body: [])
                case .length(let length):
                    if length > limits.maxBodyBytes { throw .bodyTooLarge }
                    state = .body(head, bodyStart: bodyStart, length: length)
                case .chunked:
                    // The head is dropped at once: from here the buffer holds only unparsed bytes.
                    consume(bodyStart)
                    state = .chunked(head, headBytes: bodyStart, position: 0, consumed: 0, chunk: .size, body: [])
                }
                pendingContinue = head.expectsContinue
            case .body(let head, let bodyStart, let length):
                guard buffer.count - bodyStart >= length else { return nil }
                let body = Array(buffer[bodyStart..<bodyStart + length])
                consume(bodyStart + length)
                state = .head(scanned: 0, lineEnds: 0, skipped: 0)
                pendingContinue = false
                return ParsedRequest(head: head, body: body)
            case .chunked(let head, let headBytes, var position, let consumed, var chunk, var body):
                // Take the body out of the state while we append to it, so it is not copied.
                state = .head(scanned: 0, lineEnds: 0, skipped: 0)
                let done = try parseChunks(position: &position, consumed: headBytes + consumed, chunk: &chunk, body: &body)
                consume(position)
                if done {
                    pendingContinue = false
                    return ParsedRequest(head: head, body: body)
                }
                state = .chunked(head, headBytes: headBytes, position: 0, consumed: consumed + position, chunk: chunk, body: body)
                return nil
            }
        }
    }

    /// Drops the first `count` bytes of the buffer (parsed, or copied into a body), and gives
    /// back the memory of a large message once nothing of it is left.
    private mutating func consume(_ count: Int) {
        guard count > 0 else { return }
        if count == buffer.count {
            if buffer.capacity > Self.retainedCapacity {
                buffer = []
            } else {
                buffer.removeAll(keepingCapacity: true)  // the usual case: nothing pipelined behind it
            }
        } else if buffer.capacity > Self.retainedCapacity && buffer.count - count <= Self.retainedCapacity / 2 {
            buffer = Array(buffer[count...])
        } else {
            buffer.removeFirst(count)
        }
    }

    // MARK: - Head

    /// Finds the end of the head, checking line endings as it goes; parses it when complete.
    private mutating func parseHead(scanned: Int, lineEnds: Int, skipped: Int) throws(ParseError) -> (Head, Int)? {
        // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
        // They are dropped in one pass and counted against the head's limit.
        var scanned = scanned, lineEnds = lineEnds, skipped = skipped
        var leading = 0
        while leading + 1 < buffer.count, buffer[leading] == .cr, buffer[leading + 1] == .lf {
            leading += 2
        }
        if leading > 0 {
            skipped += leading
            if skipped > limits.maxHeadBytes { throw .headersTooLarge }
            consume(leading)
            scanned = 0
            lineEnds = 0
            state = .head(scanned: 0, lineEnds: 0, skipped: skipped)
        }
        let limits = limits
        let headLimit = limits.maxHeadBytes - skipped
        let outcome = try buffer.withUnsafeBufferPointer { bytes throws(ParseError) -> HeadOutcome in
            var lineEnds = lineEnds
            switch try Self.scanHead(bytes, from: scanned, lineEnds: &lineEnds) {
            case .complete(let headEnd):
                if headEnd > headLimit { throw .headersTooLarge }
                // Without the final empty line; every line but the last ends with CRLF.
                let head = UnsafeBufferPointer(rebasing: bytes[0..<headEnd - 4])
                return .parsed(try Self.parseHeadLines(head, fieldCapacity: lineEnds - 2, limits: limits), bodyStart: headEnd)
            case .incomplete(let scanned):
                if scanned >= headLimit { throw .headersTooLarge }
                return .incomplete(scanned: scanned, lineEnds: lineEnds)
            }
        }
        switch outcome {
        case .parsed(let head, let bodyStart):
            return (head, bodyStart)
        case .incomplete(let scanned, let lineEnds):
            state = .head(scanned: scanned, lineEnds: lineEnds, skipped: skipped)
            return nil
        }
    }

    private enum HeadOutcome {
        case parsed(Head, bodyStart: Int)
        case incomplete(scanned: Int, lineEnds: Int)
    }

    private enum HeadScan {
        /// The head ends just before `end` (after its CRLFCRLF).
        case complete(end: Int)
        /// The end has not arrived; bytes before `scanned` are well-formed.
        case incomplete(scanned: Int)
    }

    /// Looks for the CRLFCRLF that ends the head, rejecting bare CR, bare LF and NUL on the way.
    private static func scanHead(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, lineEnds: inout Int) throws(ParseError) -> HeadScan {
        var index = start
        let end = bytes.count
        while index < end {
            let byte = bytes[index]
            if byte > .cr {  // CR, LF and NUL are all below: the common byte costs one comparison
                index += 1
                continue
            }
            if byte == .cr {
                guard index + 1 < end else { break }  // the LF may be in the next read
                guard bytes[index + 1] == .lf else { throw .badRequest("A bare CR is not allowed.") }
            } else if byte == .lf {
                guard index > 0, bytes[index - 1] == .cr else { throw .badRequest("A bare LF is not allowed; lines end with CRLF.") }
                lineEnds += 1
                if index >= 3, bytes[index - 2] == .lf, bytes[index - 3] == .cr {
                    return .complete(end: index + 1)
                }
            } else if byte == 0 {
                throw .badRequest("NUL is not allowed in the request head.")
            }
            index += 1
        }
        return .incomplete(scanned: index)
    }

    /// The index of the first CR at or after `start`, or the end of `bytes`.
    private static func endOfLine(in bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        var index = start
        while index < bytes.count && bytes[index] != .cr { index += 1 }
        return index
    }

    /// Parses a complete head (its CR and LF bytes already checked) in one pass over its lines,
    /// making each String once and noting the fields that decide framing as they go by.
    private static func parseHeadLines(_ head: UnsafeBufferPointer<UInt8>, fieldCapacity: Int, limits: Limits) throws(ParseError) -> Head {
        var lineEnd = endOfLine(in: head, from: 0)
        let (method, target, version) = try parseRequestLine(UnsafeBufferPointer(rebasing: head[0..<lineEnd]))

        var headers = HTTPHeaders(capacity: max(0, fieldCapacity))
        var hostCount = 0
        var hasConnection = false, hasExpect = false, hasTransferEncoding = false, hasContentLength = false
        while lineEnd < head.count {
            // Every line after the first starts after the CRLF of the previous one.
            let lineStart = lineEnd + 2
            lineEnd = endOfLine(in: head, from: lineStart)
            let line = UnsafeBufferPointer(rebasing: head[lineStart..<lineEnd])
            if let first = line.first, first == .space || first == .tab {
                throw .badRequest("Obsolete line folding (obs-fold) is not allowed.")
            }
            if headers.count >= limits.maxHeaderCount { throw .headersTooLarge }
            let field = try parseField(line)
            switch KnownField(name: field.name) {
            case .host: hostCount += 1
            case .connection: hasConnection = true
            case .expect: hasExpect = true
            case .transferEncoding: hasTransferEncoding = true
            case .contentLength: hasContentLength = true
            case nil: break
            }
            headers.add(name: String(decoding: field.name, as: UTF8.self), value: String(decoding: field.value, as: UTF8.self))
        }

        if version == .http11 {
            guard hostCount == 1 else {
                throw .badRequest(hostCount == 0 ? "HTTP/1.1 requires a Host header." : "More than one Host header.")
            }
        }
        let keepAlive: Bool
        if hasConnection {
            let connection = headers.tokens("Connection")
            keepAlive = version == .http11 ? !connection.contains("close") : connection.contains("keep-alive")
        } else {
            keepAlive = version == .http11
        }

        var expectsContinue = false
        if hasExpect, let expect = headers["Expect"] {
            guard expect.lowercased() == "100-continue", headers.values("Expect").count == 1 else {
                throw .expectationFailed
            }
            expectsContinue = version == .http11
        }
        if method == "CONNECT" { throw .badRequest("CONNECT is not supported.") }
        if target == "*" && method != "OPTIONS" { throw .badRequest("The target * is only for OPTIONS.") }
        if target.utf8.first != UInt8(ascii: "/") && target != "*" {
            guard target.lowercased().hasPrefix("http://") || target.lowercased().hasPrefix("https://") else {
                throw .badRequest("The request target must be a path.")
            }
        }
        return Head(method: method, target: target, version: version, headers: headers,
                    keepAlive: keepAlive, expectsContinue: expectsContinue,
                    hasTransferEncoding: hasTransferEncoding, hasContentLength: hasContentLength)
    }

    /// method SP request-target SP HTTP-version, each part checked in that order.
    private static func parseRequestLine(_ line: UnsafeBufferPointer<UInt8>) throws(ParseError) -> (String, String, HTTPVersion) {
        guard let firstSpace = line.firstIndex(of: .space),
              let secondSpace = line[(firstSpace + 1)...].firstIndex(of: .space),
              !line[(secondSpace + 1)...].contains(.space),
              firstSpace > 0, secondSpace > firstSpace + 1
        else {
            throw .badRequest("The request line must be: method, one space, target, one space, version.")
        }
        let method = UnsafeBufferPointer(rebasing: line[0..<firstSpace])
        let target = UnsafeBufferPointer(rebasing: line[(firstSpace + 1)..<secondSpace])
        let version = UnsafeBufferPointer(rebasing: line[(secondSpace + 1)...])
        guard method.allSatisfy(\.isTokenCharacter) else { throw .badRequest("The method has characters a token cannot have.") }
        guard target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw .badRequest("The request target has characters that are not allowed.")
        }
        guard version.count == 8, version[0] == UInt8(ascii: "H"), version[1] == UInt8(ascii: "T"),
              version[2] == UInt8(ascii: "T"), version[3] == UInt8(ascii: "P"), version[4] == UInt8(ascii: "/"),
              version[6] == UInt8(ascii: "."), version[5].isDigit, version[7].isDigit
        else { throw .badRequest("The HTTP version is malformed.") }
        let major = Int(version[5] - UInt8(ascii: "0")), minor = Int(version[7] - UInt8(ascii: "0"))
        guard major == 1, minor <= 1 else { throw .versionNotSupported }
        return (String(decoding: method, as: UTF8.self), String(decoding: target, as: UTF8.self),
                HTTPVersion(major: major, minor: minor))
    }

    /// `name: value` with no whitespace before the colon, a token name and a value of visible
    /// characters, spaces and tabs (obs-text allowed), trimmed of optional whitespace.
    private static func parseField(
        _ line: UnsafeBufferPointer<UInt8>
    ) throws(ParseError) -> (name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
            throw .badRequest("A header line has no colon.")
        }
        let name = UnsafeBufferPointer(rebasing: line[0..<colon])
        guard !name.isEmpty, name.allSatisfy(\.isTokenCharacter) else {
            throw .badRequest("A header name is empty or has characters that are not allowed.")
        }
        var valueStart = colon + 1, valueEnd = line.count
        while valueStart < valueEnd, line[valueStart] == .space || line[valueStart] == .tab { valueStart += 1 }
        while valueEnd > valueStart, line[valueEnd - 1] == .space || line[valueEnd - 1] == .tab { valueEnd -= 1 }
        let value = UnsafeBufferPointer(rebasing: line[valueStart..<valueEnd])
        guard value.allSatisfy({ $0 == .tab || ($0 >= 0x20 && $0 != 0x7F) }) else {
            throw .badRequest("The value of \(String(decoding: name, as: UTF8.self)) has control characters.")
        }
        return (name, value)
    }

    /// The fields whose presence the parser acts on, recognised by name without making a String.
    private enum KnownField {
        case host, connection, expect, transferEncoding, contentLength

        init?(name: UnsafeBufferPointer<UInt8>) {
            switch name.count {
            case 4 where Self.equalsIgnoringCase(name, "host"): self = .host
            case 6 where Self.equalsIgnoringCase(name, "expect"): self = .expect
            case 10 where Self.equalsIgnoringCase(name, "connection"): self = .connection
            case 14 where Self.equalsIgnoringCase(name, "content-length"): self = .contentLength
            case 17 where Self.equalsIgnoringCase(name, "transfer-encoding"): self = .transferEncoding
            default: return nil
            }
        }

        /// ASCII case-insensitive equality of a token with a lower-case name of the same length
        /// (setting bit 0x20 lower-cases a letter; no other token character becomes a letter or `-`).
        private static func equalsIgnoringCase(_ name: UnsafeBufferPointer<UInt8>, _ lowercased: StaticString) -> Bool {
            lowercased.withUTF8Buffer { expected in
                for index in 0..<expected.count where name[index] | 0x20 != expected[index] { return false }
                return true
            }
        }
    }

    // MARK: - Framing (RFC 9112 §6)

    private func framing(of head: Head) throws(ParseError) -> Framing {
        guard head.hasTransferEncoding || head.hasContentLength else { return .none }
        let lengths = head.headers.values("Content-Length")
        if head.headers.contains("Transfer-Encoding") {
            guard lengths.isEmpty else { throw .badRequest("Content-Length and Transfer-Encoding together are not allowed.") }
            guard head.version == .http11 else { throw .badRequest("Transfer-Encoding is not allowed in HTTP/1.0.") }
            // Every element of every Transfer-Encoding line, empty ones included: an empty line
            // or element beside `chunked` is a doubt about framing, not something to skip.
            let transferCodings = head.headers.values("Transfer-Encoding")
                .flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
                .map { $0.trimmingOWS().lowercased() }
            guard transferCodings == ["chunked"] else {
                throw .badRequest("The only Transfer-Encoding accepted is chunked.")
            }
            return .chunked
        }
        guard !lengths.isEmpty else { return .none }
        var length: Int?
        for element in lengths.flatMap({ $0.split(separator: ",", omittingEmptySubsequences: false) }) {
            let digits = element.trimmingOWS()
            guard !digits.isEmpty, digits.utf8.count <= 15, digits.utf8.allSatisfy(\.isDigit), let value = Int(digits) else {
                throw .badRequest("Content-Length is not a valid length.")
            }
            if let length, length != value { throw .badRequest("Content-Length values disagree.") }
            length = value
        }
        return length.map { $0 == 0 ? .none : .length($0) } ?? .none
    }

    // MARK: - Chunked bodies (RFC 9112 §7.1)

    /// Parses as much of a chunked body as the buffer holds. True when the last chunk and the
    /// trailer section are complete; `position` is then just past the message.
    /// Every byte of the message (`consumed` before the buffer, then up to `position`) counts
    /// against `maxMessageBytes`, so size lines, extensions and trailers cannot grow it unseen.
    private func parseChunks(
        position: inout Int, consumed: Int, chunk: inout ChunkState, body: inout [UInt8]
    ) throws(ParseError) -> Bool {
        let messageLimit = limits.maxMessageBytes
        while true {
            if consumed + position > messageLimit { throw .bodyTooLarge }
            switch chunk {
            case .size:
                guard let lineEnd = try findLineEnd(from: position, limit: 1024) else { return false }
                let line = buffer[position..<lineEnd]
                let sizeEnd = line.firstIndex(where: { !$0.isHexDigit }) ?? line.endIndex
                let digits = line[position..<sizeEnd]
                guard !digits.isEmpty, digits.count <= 8 else { throw .badRequest("A chunk size is missing or too long.") }
                let rest = line[sizeEnd...]
                if let first = rest.first {
                    // Chunk extensions are allowed (and ignored) but must be well-formed text.
                    guard first == UInt8(ascii: ";") || first == .space || first == .tab,
                          rest.allSatisfy({ $0 == .tab || ($0 >= 0x20 && $0 != 0x7F) })
                    else { throw .badRequest("A chunk size line is malformed.") }
                }
                let size = digits.reduce(0) { $0 << 4 | Int(PercentDecoding.hexValue($1) ?? 0) }
                if body.count + size > limits.maxBodyBytes { throw .bodyTooLarge }
                position = lineEnd + 2
                chunk = size == 0 ? .trailers(bytes: 0) : .data(remaining: size)
            case .data(let remaining):
                let available = min(remaining, buffer.count - position)
                guard available > 0 else { return false }
                body.append(contentsOf: buffer[position..<position + available])
                position += available
                chunk = remaining == available ? .dataEnd : .data(remaining: remaining - available)
            case .dataEnd:
                guard buffer.count - position >= 2 else { return false }
                guard buffer[position] == .cr, buffer[position + 1] == .lf else {
                    throw .badRequest("Chunk data is not followed by CRLF.")
                }
                position += 2
                chunk = .size
            case .trailers(let bytes):
                guard let lineEnd = try findLineEnd(from: position, limit: limits.maxHeadBytes) else { return false }
                let line = buffer[position..<lineEnd]
                let trailerBytes = bytes + line.count + 2
                if trailerBytes > limits.maxHeadBytes { throw .headersTooLarge }
                chunk = .trailers(bytes: trailerBytes)
                position = lineEnd + 2
                if line.isEmpty {
                    if consumed + position > messageLimit { throw .bodyTooLarge }
                    return true
                }
                if let first = line.first, first == .space || first == .tab {
                    throw .badRequest("Obsolete line folding (obs-fold) is not allowed.")
                }
                // Validated, then ignored: trailers never change framing.
                _ = try line.withUnsafeBufferPointer { line throws(ParseError) in try Self.parseField(line) }
            }
        }
    }

    /// The index of the CR of the next CRLF at or after `start`, nil if it has not arrived yet.
    private func findLineEnd(from start: Int, limit: Int) throws(ParseError) -> Int? {
        var index = start
        while index < buffer.count {
            switch buffer[index] {
            case .cr:
                guard index + 1 < buffer.count else { return nil }
                guard buffer[index + 1] == .lf else { throw .badRequest("A bare CR is not allowed.") }
                return index
            case .lf:
                throw .badRequest("A bare LF is not allowed; lines end with CRLF.")
            default:
                index += 1
                if index - start > limit { throw .badRequest("A chunk line is too long.") }
            }
        }
        return nil
    }
}

extension UInt8 {
    static let cr = UInt8(ascii: "\r")
    static let lf = UInt8(ascii: "\n")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")

    var isDigit: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }

    var isHexDigit: Bool { PercentDecoding.hexValue(self) != nil }

    /// tchar (RFC 9110 §5.6.2), read from a bit mask: this runs for every byte of every
    /// method and header name. `HTTPParserTests` checks the masks against `isTokenCharacterByName`.
    var isTokenCharacter: Bool {
        if self < 64 { return Self.tokenCharactersBelow64 >> self & 1 == 1 }
        if self < 128 { return Self.tokenCharactersFrom64 >> (self - 64) & 1 == 1 }
        return false
    }

    /// Bit `n` is set when byte `n` is a tchar: the digits and ! # $ % & ' * + - .
    private static let tokenCharactersBelow64: UInt64 = 0x03FF_6CFA_0000_0000
    /// Bit `n` is set when byte `64 + n` is a tchar: the letters and ^ _ ` | ~
    private static let tokenCharactersFrom64: UInt64 = 0x57FF_FFFF_C7FF_FFFE

    /// tchar as the grammar spells it.
    static func isTokenCharacterByName(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
             UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }
}

// libFuzzer target: the HTTP/1.1 parser. Any bytes, in any split, must end in requests and at
// most one ParseError, never a crash; and the outcome may not depend on where the bytes were
// split (the parser's own invariant, as HTTPParserTests checks it for known inputs).
@testable import HTTPServer

private let limits = HTTPParser.Limits(maxHeadBytes: 2048, maxHeaderCount: 100, maxBodyBytes: 4096)

private func outcome(_ parts: [ArraySlice<UInt8>]) -> [String] {
    var parser = HTTPParser(limits: limits)
    var seen: [String] = []
    for part in parts {
        parser.append(Array(part))
        do {
            while let request = try parser.nextRequest() {
                let head = request.head
                seen.append("\(head.method) \(head.target) \(head.version) \(head.keepAlive) \(head.headers.count) \(request.body)")
            }
            if parser.pendingContinue { parser.continueSent() }
        } catch {
            seen.append("error \(error.status.code)")
            return seen
        }
        // The buffer never holds more than one message's worth and one read beyond it.
        precondition(parser.buffer.count <= limits.maxMessageBytes + part.count, "buffer grew past the message limit")
    }
    return seen
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))[...]
    let whole = outcome([bytes])
    if size > 1 {
        let split = Int(bytes[bytes.startIndex]) % size
        let parts = [bytes[..<split], bytes[split...]]
        precondition(outcome(parts) == whole, "the outcome depends on the split")
    }
    return 0
}

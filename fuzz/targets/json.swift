// libFuzzer target: the strict JSON reader. Any bytes are a value or an HTTPError, never a
// crash; an accepted document has valid UTF-8 strings, no NUL, no duplicate keys, and a
// document the reader accepts is accepted again when written back out by the encoder.
@testable import HeardAPI
import HTTPServer
import Foundation

/// Checks what the reader promises; true when the document holds a number beyond a Double's
/// range (which RFC 8259 allows and Foundation refuses; Heard's readers refuse it field by field).
private func check(_ value: JSONValue, depth: Int) -> Bool {
    precondition(depth <= JSONValue.maxDepth, "nesting beyond the cap was accepted")
    var hugeNumber = false
    switch value {
    case .number(let text):
        hugeNumber = !(Double(text)?.isFinite ?? false)
    case .string(let text):
        precondition(!text.utf8.contains(0), "a NUL was accepted")
    case .array(let elements):
        precondition(elements.count <= JSONValue.maxArrayLength, "an array beyond the cap was accepted")
        for element in elements where check(element, depth: depth + 1) { hugeNumber = true }
    case .object(let members):
        precondition(Set(members.map(\.key)).count == members.count, "a duplicate key was accepted")
        for member in members {
            precondition(!member.key.utf8.contains(0), "a NUL key was accepted")
            if check(member.value, depth: depth + 1) { hugeNumber = true }
        }
    case .null, .bool:
        break
    }
    return hugeNumber
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let value = try? JSONValue.parse(bytes) else { return 0 }
    let hugeNumber = check(value, depth: 1)
    // Foundation must agree that it is JSON (but for numbers past a Double).
    precondition(hugeNumber || (try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])) != nil,
                 "accepted what Foundation rejects")
    return 0
}

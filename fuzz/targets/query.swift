// libFuzzer target: the query-string and cursor readers. Any query string is parsed into
// parameters or refused; every reader answers a value or names the parameter at fault; a
// cursor is decoded or refused, and what it holds is something PostgreSQL accepts (no NUL in a
// filter, a number that fits a bigint, an instant PostgreSQL reads, a UUID).
@testable import HeardAPI
import HTTPServer
import Foundation

private let orders = [
    ListOrder(descending: [("k.created_at", .timestamptz), ("k.id", .uuid)]),
    ListOrder(ascending: [("a.raised_at", .timestamptz), ("a.id", .uuid)]),
    ListOrder(descending: [("e.id", .bigint)]),
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzQuery(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let order = orders[Int(data[0]) % orders.count]
    let text = String(decoding: UnsafeBufferPointer(start: data + 1, count: size - 1), as: UTF8.self)
    // As a whole query string.
    if let parameters = QueryParameters(encoded: text) {
        var reader = QueryReader(parameters, allowed: ["team", "from", "to", "id", "kind", "flag"])
        _ = reader.limit()
        if let team = reader.string("team") { precondition(!team.utf8.contains(0), "a NUL reached a filter") }
        _ = reader.date("from")
        _ = reader.date("to")
        _ = reader.uuid("id")
        _ = reader.vocabulary("kind", ListFormat.self)
        _ = reader.bool("flag")
        _ = reader.format(accept: text)
        if let position = reader.cursor(order) { check(position, order) }
        _ = try? reader.finish()
    }
    // As a cursor on its own.
    if let position = Cursor.decode(text, as: [String].self), order.accepts(position) {
        check(position, order)
        precondition(Cursor.decode(Cursor.encode(position), as: [String].self) == position, "a cursor does not round-trip")
    }
    _ = PostgresTimestamp.isValid(text)
    _ = RFC3339.parse(text)
    return 0
}

/// What an accepted position holds is what PostgreSQL reads for each key's type.
private func check(_ position: [String], _ order: ListOrder) {
    precondition(position.count == order.keys.count, "a cursor of the wrong length was accepted")
    for (key, value) in zip(order.keys, position) {
        precondition(!value.utf8.contains(0), "a NUL in a cursor was accepted")
        switch key.type {
        case .bigint: precondition(Int64(value) != nil, "a number that is not a bigint was accepted")
        case .uuid: precondition(UUID(uuidString: value) != nil, "a UUID that is not one was accepted")
        case .xid8: precondition(UInt64(value) != nil, "a transaction id that is not an unsigned 64-bit number was accepted")
        case .timestamptz:
            let iso = value.replacingOccurrences(of: " ", with: "T") + ":00"
            precondition(RFC3339.parse(iso) != nil, "an instant PostgreSQL would refuse was accepted: \(value.debugDescription)")
        }
    }
}

import Foundation
import HTTPServer

/// CSV for analysts (RFC 4180, UTF-8): a header row, then one row per record, CRLF line ends; a
/// field holding a comma, a quote, CR or LF is quoted, its quotes doubled. Every cell that starts
/// with `=`, `+`, `-`, `@`, TAB or CR is prefixed with `'`, so a spreadsheet never runs a
/// child's comment (or anything else) as a formula. So is every part of a cell that a
/// spreadsheet set to `;` as its list separator would read as a cell of its own (what follows
/// a `;`, CR or LF, past spaces and quotes): such a spreadsheet splits our rows there. A cell
/// that is nothing but a negative number (`-3`, `-0.5`: working days past a due date) is a
/// number to a spreadsheet, not a formula, and is written as it is, except as the first cell
/// of a row with more after it: a `;` spreadsheet reads `-2,1+HYPERLINK(...)` as one formula
/// (its `,` is a decimal point), so there it is prefixed too.
///
/// ```swift
/// var csv = CSVWriter(header: ["id", "team", "comment"])
/// csv.append([record.id, record.team, record.comment])   // nil is an empty cell
/// return csv.response(filename: "feedback.csv", nextLink: next.map { Cursor.nextLink($0, for: request) })
/// ```
public struct CSVWriter: Sendable {
    public let header: [String]
    public private(set) var rowCount = 0
    private var bytes: [UInt8] = []

    public init(header: [String]) {
        self.header = header
        write(header)
    }

    /// One record; `row` has one value per header column, nil for an empty cell.
    public mutating func append(_ row: [String?]) {
        precondition(row.count == header.count, "a CSV row has \(row.count) cells for \(header.count) columns")
        write(row)
        rowCount += 1
    }

    /// The document: the header row and every row appended, each ending in CRLF.
    public var data: [UInt8] { bytes }

    public var text: String { String(decoding: bytes, as: UTF8.self) }

    /// A `200` download: `Content-Type: text/csv; charset=utf-8`, `Content-Disposition:
    /// attachment; filename="..."` and, when there is a next page, its `Link` header.
    public func response(filename: String, nextLink: String? = nil) -> Response {
        var response = Response(status: .ok, body: bytes)
        response.headers.add(name: "Content-Type", value: "text/csv; charset=utf-8")
        let safeName = filename.filter { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
        response.headers.add(name: "Content-Disposition", value: "attachment; filename=\"\(safeName)\"")
        if let nextLink { response.headers.add(name: "Link", value: nextLink) }
        return response
    }

    /// One cell as written: formula-defused, then quoted when it must be. `beginsRow` is true
    /// for the first cell of a row that has more cells after it (see the type's comment).
    public static func field(_ value: String, beginsRow: Bool = false) -> String {
        let cell = defused(value, beginsRow: beginsRow)
        guard cell.unicodeScalars.contains(where: { mustQuote.contains($0) }) else { return cell }
        // Quotes are doubled scalar by scalar: a quote followed by a combining mark is one
        // Character, which a String replacement of "\"" would skip, leaving the cell open.
        var quoted = String.UnicodeScalarView()
        quoted.append("\"")
        for scalar in cell.unicodeScalars {
            if scalar == "\"" { quoted.append("\"") }
            quoted.append(scalar)
        }
        quoted.append("\"")
        return String(quoted)
    }

    /// `value` with `'` before every formula start that begins it, or begins a part after a
    /// `;`, CR or LF (spaces and quotes before it skipped).
    static func defused(_ value: String, beginsRow: Bool) -> String {
        let scalars = value.unicodeScalars
        if isNegativeNumber(scalars) { return beginsRow ? "'" + value : value }
        // The usual cell: nothing to defuse at its start and no separator in it.
        if let first = scalars.first, !formulaStarts.contains(first), first != " ", first != "\"",
           !scalars.contains(where: { segmentEnds.contains($0) }) {
            return value
        }
        var result = String.UnicodeScalarView()
        var atSegmentStart = true
        for scalar in scalars {
            if atSegmentStart && scalar != " " && scalar != "\"" {
                if formulaStarts.contains(scalar) { result.append("'") }
                atSegmentStart = false
            }
            result.append(scalar)
            if segmentEnds.contains(scalar) { atSegmentStart = true }
        }
        return String(result)
    }

    /// `-`, digits, and optionally `.` and digits: nothing else.
    private static func isNegativeNumber(_ scalars: String.UnicodeScalarView) -> Bool {
        var rest = scalars.dropFirst()
        guard scalars.first == "-" else { return false }
        func digits() -> Bool {
            let count = rest.prefix(while: { ("0"..."9").contains($0) }).count
            rest = rest.dropFirst(count)
            return count > 0
        }
        guard digits() else { return false }
        if rest.first == "." {
            rest = rest.dropFirst()
            guard digits() else { return false }
        }
        return rest.isEmpty
    }

    private static let formulaStarts: Set<Unicode.Scalar> = ["=", "+", "-", "@", "\t", "\r"]
    private static let mustQuote: Set<Unicode.Scalar> = [",", "\"", "\r", "\n"]
    /// Where a spreadsheet using `;` as its list separator starts a new cell or row.
    private static let segmentEnds: Set<Unicode.Scalar> = [";", "\r", "\n"]

    private mutating func write(_ cells: [String?]) {
        var line = ""
        for (index, cell) in cells.enumerated() {
            if index > 0 { line += "," }
            if let cell { line += Self.field(cell, beginsRow: index == 0 && cells.count > 1) }
        }
        line += "\r\n"
        bytes.append(contentsOf: line.utf8)
    }
}

extension CSVWriter {
    /// RFC 3339 in UTC, as the JSON answers write instants.
    public static func instant(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(timeZone: TimeZone(identifier: "UTC")!))
    }

    public static func bool(_ value: Bool) -> String { value ? "true" : "false" }
}

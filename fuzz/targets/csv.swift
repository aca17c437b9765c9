// libFuzzer target: the CSV writer. Cells made of any text are written so that an RFC 4180
// reader gets every cell back (after the guard's leading '), and no cell, read with `,` or
// with `;` as the list separator, starts with a character a spreadsheet runs as a formula.
@testable import HeardAPI
import Foundation

private let formulaStarts: Set<Unicode.Scalar> = ["=", "+", "-", "@", "\t", "\r"]

/// A cell a spreadsheet reads as a number, which the writer leaves as it is: `-` then digits,
/// with at most one `.` between digits (working days past a due date).
private func isNegativeNumber(_ cell: String) -> Bool {
    guard cell.hasPrefix("-") else { return false }
    let parts = cell.dropFirst().split(separator: ".", omittingEmptySubsequences: false)
    return (1...2).contains(parts.count) && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy { ("0"..."9").contains($0) } }
}

/// RFC 4180, separator `separator`: rows of cells.
private func read(_ text: String, separator: Unicode.Scalar) -> [[String]] {
    var rows: [[String]] = [], row: [String] = [], cell = String.UnicodeScalarView()
    var quoted = false, atCellStart = true
    var scalars = text.unicodeScalars.makeIterator()
    var pending: Unicode.Scalar? = nil
    func next() -> Unicode.Scalar? {
        if let scalar = pending { pending = nil; return scalar }
        return scalars.next()
    }
    while let scalar = next() {
        if quoted {
            if scalar == "\"" {
                if let following = next() {
                    if following == "\"" { cell.append("\"") } else { quoted = false; pending = following }
                } else { quoted = false }
            } else { cell.append(scalar) }
            continue
        }
        if scalar == "\"" && atCellStart { quoted = true; atCellStart = false; continue }
        if scalar == separator {
            row.append(String(cell)); cell = String.UnicodeScalarView(); atCellStart = true
        } else if scalar == "\r" || scalar == "\n" {
            if scalar == "\r", let following = next(), following != "\n" { pending = following }
            row.append(String(cell)); rows.append(row)
            row = []; cell = String.UnicodeScalarView(); atCellStart = true
        } else {
            cell.append(scalar); atCellStart = false
        }
    }
    if !row.isEmpty || !cell.isEmpty { row.append(String(cell)); rows.append(row) }
    return rows
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCSV(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // 0xFF never occurs in UTF-8: it separates the cells of one row.
    let cells = bytes.split(separator: 0xFF, omittingEmptySubsequences: false).prefix(8).map { String(decoding: $0, as: UTF8.self) }
    var csv = CSVWriter(header: cells.indices.map { "c\($0)" })
    csv.append(cells)
    let text = csv.text
    let rows = read(text, separator: ",")
    precondition(rows.count == 2, "the row did not read back as one row: \(text.debugDescription)")
    // The guard only ever adds `'`; apart from those, every cell reads back as written.
    for (written, cell) in zip(rows[1], cells) {
        precondition(written.replacingOccurrences(of: "'", with: "") == cell.replacingOccurrences(of: "'", with: ""),
                     "cell \(cell.debugDescription) read back as \(written.debugDescription)")
    }
    for cell in rows.joined() where !isNegativeNumber(cell) {
        if let first = cell.unicodeScalars.first {
            precondition(!formulaStarts.contains(first), "a cell a spreadsheet would run: \(cell.debugDescription) in \(text.debugDescription)")
        }
    }
    // Read with `;`, a quote that closed a `,` cell can open one that starts with the CRLF
    // ending the row; the formula starts that matter there are the visible ones.
    for cell in read(text, separator: ";").joined() where !isNegativeNumber(cell) {
        if let first = cell.unicodeScalars.first, first != "\r" {
            precondition(!formulaStarts.contains(first), "a cell a ';' spreadsheet would run: \(cell.debugDescription) in \(text.debugDescription)")
        }
    }
    return 0
}

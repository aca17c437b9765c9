import Foundation
import HTTPServer
import Postgres

/// A report as Heard answers it, JSON or CSV from one declaration: its period and its tables,
/// each a dimension (`procedure`, `stage`...) whose rows hold named figures (counts, shares,
/// medians), every one of them passed through the `Disclosure` rule.
///
/// JSON: `{"from", "to", "small_numbers_suppressed", "tables": [{"name", "dimension", "rows":
/// [{"key": "corporate", "complaints": {"value": 12, "suppressed": false}, ...}]}]}`.
/// CSV (`Accept: text/csv` or `format=csv`): one line per figure, long form, so every report
/// has the same columns: `table,dimension,key,figure,value,suppressed`.
///
/// ```swift
/// var report = Report(from: from, to: to, disclosure: Disclosure(for: principal))
/// report.table("by_procedure", dimension: "procedure", rows: counts.map { ReportRow($0.key, [("complaints", disclosure.count($0.n))]) })
/// return report.response(format: format, filename: "complaints-report.csv")
/// ```
struct Report: Encodable, Sendable {
    struct Table: Encodable, Sendable {
        var name: String
        var dimension: String
        var rows: [ReportRow]
    }

    var from: CalendarDate
    var to: CalendarDate
    var disclosure: Disclosure
    var tables: [Table] = []

    init(from: CalendarDate, to: CalendarDate, disclosure: Disclosure) {
        self.from = from
        self.to = to
        self.disclosure = disclosure
    }

    mutating func table(_ name: String, dimension: String, rows: [ReportRow]) {
        tables.append(Table(name: name, dimension: dimension, rows: rows))
    }

    enum CodingKeys: String, CodingKey {
        case from, to, smallNumbersSuppressed = "small_numbers_suppressed", tables
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(from.description, forKey: .from)
        try container.encode(to.description, forKey: .to)
        try container.encode(!disclosure.showsSmallNumbers, forKey: .smallNumbersSuppressed)
        try container.encode(tables, forKey: .tables)
    }

    static let csvHeader = ["table", "dimension", "key", "figure", "value", "suppressed"]

    var csv: CSVWriter {
        var writer = CSVWriter(header: Self.csvHeader)
        for table in tables {
            for row in table.rows {
                for (name, figure) in row.figures {
                    let value: String? = switch figure.value {
                    case .number(let text): text
                    case .string(let text): text
                    default: nil
                    }
                    writer.append([table.name, table.dimension, row.key, name, value, figure.suppressed ? "true" : "false"])
                }
            }
        }
        return writer
    }

    func response(format: ListFormat, filename: String) -> Response {
        switch format {
        case .json: .json(self)
        case .csv: csv.response(filename: filename)
        }
    }

    /// A report's query string: `from` and `to` (days, both required, `to` not before `from`,
    /// at most `maxDays` apart), `format`, and any `extra` parameters the report reads itself.
    struct Period: Sendable {
        var from: CalendarDate
        var to: CalendarDate
        var format: ListFormat

        static let maxDays = 3660

        static func read(_ request: Request, extra: Set<String> = []) throws(HTTPError) -> Period {
            var query = QueryReader(request.query, allowed: extra.union(["from", "to", "format"]), paged: false)
            let format = query.format(accept: request.headers["Accept"])
            let from = query.date("from"), to = query.date("to")
            if request.query["from"] == nil { query.reject("from", "is required") }
            if request.query["to"] == nil { query.reject("to", "is required") }
            if let from, let to {
                if to < from { query.reject("to", "must not be before from") }
                if to.daysSince1970 - from.daysSince1970 > maxDays { query.reject("to", "must be at most \(maxDays) days after from") }
            }
            try query.finish()
            guard let from, let to else { throw HTTPError.invalidQuery([]) }
            return Period(from: from, to: to, format: format)
        }
    }
}

/// One row of a report table: its key (the dimension's value) and its figures, in order.
struct ReportRow: Encodable, Sendable {
    var key: String
    var figures: [(String, Figure)]

    init(_ key: String, _ figures: [(String, Figure)]) {
        self.key = key
        self.figures = figures
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: FieldKey.self)
        try container.encode(key, forKey: FieldKey("key"))
        for (name, figure) in figures { try container.encode(figure, forKey: FieldKey(name)) }
    }
}

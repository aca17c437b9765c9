import Foundation
import HTTPServer
import Postgres

/// What every list endpoint does, declared once: an area names its filters, its order and how
/// its records are exported, and gets
/// - the query read and validated, every parameter at fault in one 400 (unknown, repeated,
///   out of vocabulary, `from` after `to`);
/// - `limit` (1-500, default 50) and an opaque cursor on the declared order (keyset paging: one
///   row more than the page is read to know there is a next);
/// - JSON (`items`, `next_cursor`) or, where declared, CSV (`Accept: text/csv` or
///   `format=csv`; header row, formula guard, `Content-Disposition`), with `Link: rel="next"`;
/// - one transaction in the caller's tenant, audited as a list or an export with its row count;
/// - where a filter asks about a day (`ListFilter.onDay`), the `as_of` parameter (a date,
///   default today in England) that every such filter judges on;
/// - for a list below a record (`/v1/participants/{id}/consents`), that record's 404 and the
///   condition that keeps to it (`ListParent`).
///
/// ```swift
/// static let list = ListEndpoint<AuditEvent, Void>(
///     resource: .auditEvent,
///     filters: [.vocabulary("action", AuditAction.self, "e.action"), .uuid("key_id", "e.key_id")],
///     days: DayRange(column: "e.occurred_at", zone: .utc),
///     order: ListOrder(descending: [("e.id", .bigint)]))
/// router.get("/v1/audit", access.secure(.auditRead, resource: .auditEvent, list.respond))
/// ```
struct ListEndpoint<Record: StoredRecord, Context: Sendable>: Sendable {
    let resource: AuditResource
    var filters: [ListFilter<Context>]
    /// `from` and `to`, whole days, when the list has them.
    var days: DayRange?
    /// The record the list is below, named by a path parameter; nil for a top-level list.
    var parent: ListParent?
    let order: ListOrder
    /// The CSV download's file name; nil when the list answers JSON only.
    var csvFilename: String?
    /// Reads what the filters and the records need from the database (the tenant's measures, its
    /// calendar), in the list's transaction, before the page.
    var prepare: @Sendable (TenantTransaction, ListRequest) async throws -> Context
    /// Completes the page's records (fields from other tables, computed ones). It runs after the
    /// page and its audit row were sent: its last statement may commit (`queryAndCommit`).
    var complete: @Sendable (inout [Record], Context, TenantTransaction) async throws -> Void = { _, _, _ in }
    /// Whether `complete` was given: without it, the page is the transaction's last statement.
    var completes = false
    /// The CSV columns: the record's own, unless the area adds to them.
    var csvColumns: @Sendable ([CSVColumn<Record>], Context) -> [CSVColumn<Record>] = { columns, _ in columns }

    /// Whether the list takes `as_of` (a day records are judged as of: what is overdue, days left).
    var judgedAsOf = false

    /// The request as the list's hooks see it.
    struct ListRequest: Sendable {
        let now: Date
        let includeFreeText: Bool
        /// `as_of` when the list takes it and it was given; otherwise today in England.
        let asOf: CalendarDate
    }

    init(resource: AuditResource, filters: [ListFilter<Context>] = [], days: DayRange? = nil, order: ListOrder,
         csvFilename: String? = nil, prepare: @escaping @Sendable (TenantTransaction, ListRequest) async throws -> Context) {
        self.resource = resource
        self.filters = filters
        self.days = days
        self.order = order
        self.csvFilename = csvFilename
        self.prepare = prepare
    }

    /// This list, completing each page's records in memory with what `prepare` read (the page
    /// stays the transaction's last statement).
    func judging(_ judge: @escaping @Sendable (inout [Record], Context) -> Void) -> ListEndpoint {
        var list = completing { records, context, _ in judge(&records, context) }
        list.completes = false
        return list
    }

    /// This list, completing each page's records with `complete`, which may query.
    func completing(_ complete: @escaping @Sendable (inout [Record], Context, TenantTransaction) async throws -> Void) -> ListEndpoint {
        var list = self
        list.complete = complete
        list.completes = true
        return list
    }

    /// This list, of the records below the one `parent` names.
    func below(_ parent: ListParent) -> ListEndpoint {
        var list = self
        list.parent = parent
        return list
    }

    /// This list, taking `as_of` (a date, default today in England): its filters and records are
    /// judged as of that day (`ListRequest.asOf`).
    func takingAsOf() -> ListEndpoint {
        var list = self
        list.judgedAsOf = true
        return list
    }

    /// This list, exported with the columns `columns` makes of the record's own.
    func exporting(_ columns: @escaping @Sendable ([CSVColumn<Record>], Context) -> [CSVColumn<Record>]) -> ListEndpoint {
        var list = self
        list.csvColumns = columns
        return list
    }

    /// Answers `GET` on the list.
    func respond(_ request: Request, _ context: AccessContext) async throws -> Response {
        let judgesADay = judgedAsOf || filters.contains(where: \.usesDay)
        var query = QueryReader(request.query, allowed: Set(filters.map(\.name) + (days.map { _ in ["from", "to"] } ?? [])
                                                           + (judgesADay ? ["as_of"] : [])))
        let parentID = try parent.map { parent throws(HTTPError) in
            guard let id = UUID(uuidString: request.parameter(parent.parameter)) else { throw parent.notFound }
            return id
        }
        let limit = query.limit()
        let after = query.cursor(order)
        let format = csvFilename == nil ? ListFormat.json : query.format(accept: request.headers["Accept"])
        let conditions = filters.compactMap { $0.read(&query) }
        let range = days.flatMap { $0.read(&query) }
        let asOf = (judgesADay ? query.date("as_of") : nil) ?? WorkingDayCalendar.localDay(of: context.now)
        try query.finish()

        let listRequest = ListRequest(now: context.now, includeFreeText: context.principal.has(.freeTextRead), asOf: asOf)
        let table = Record.table
        let (page, hasMore, csv) = try await context.readTransaction { tx -> ([(Record, [String])], Bool, [CSVColumn<Record>]) in
            var sql: [SQLFragment] = ["\(unsafeRaw: table.alias).tenant_id = \(tx.principal.tenantID)"]
            if let parent, let parentID {
                guard try await parent.exists(parentID, on: tx) else { throw parent.notFound }
                sql.append(parent.condition(parentID))
            }
            let prepared = try await prepare(tx, listRequest)
            for condition in conditions { sql.append(try condition(prepared, asOf)) }
            if let range { sql += range }
            if let after { sql.append(order.after(after)) }
            // The page and its audit row (with the count of records answered) in one statement;
            // the last of the transaction unless the records are completed after. (A
            // materialised CTE is read back in the order it was written.)
            let audit = AuditTrail.recordEach(
                of: "(SELECT least(count(*), \(limit)) AS n FROM page) counted", resourceID: "NULL::text", rowsExported: "counted.n::integer",
                principal: tx.principal, requestID: "\(tx.requestID)", action: format == .csv ? .export : .list, resourceType: resource)
            let statement: PostgresQuery = """
                WITH page AS MATERIALIZED (
                    SELECT \(unsafeRaw: table.selectList(includeFreeText: listRequest.includeFreeText)), \(unsafeRaw: order.selectList)
                      FROM \(unsafeRaw: table.from)
                     WHERE \(SQLFragment.joined(sql, separator: " AND "))
                     ORDER BY \(unsafeRaw: order.orderBy)
                     LIMIT \(limit + 1)
                ), audited AS (\(audit))
                SELECT * FROM page
                """
            let rows = completes ? try await tx.query(statement) : try await tx.queryAndCommit(statement)
            var records = try rows.prefix(limit).map { try table.decode($0, includeFreeText: listRequest.includeFreeText) }
            let positions = try rows.prefix(limit).map(order.position(of:))
            try await complete(&records, prepared, tx)
            let csv = format == .csv ? csvColumns(table.csvColumns(includeFreeText: listRequest.includeFreeText), prepared) : []
            return (Array(zip(records, positions)), rows.count > limit, csv)
        }
        let next = hasMore ? page.last.map { Cursor.encode($0.1) } : nil
        switch format {
        case .json:
            return Page(items: page.map(\.0), nextCursor: next).response(for: request)
        case .csv:
            var writer = CSVWriter(header: csv.map(\.header))
            for (record, _) in page { writer.append(csv.map { $0.cell(record) }) }
            return writer.response(filename: csvFilename ?? "export.csv", nextLink: next.map { Cursor.nextLink($0, for: request) })
        }
    }
}

extension ListEndpoint where Context == Void {
    init(resource: AuditResource, filters: [ListFilter<Void>] = [], days: DayRange? = nil, order: ListOrder, csvFilename: String? = nil) {
        self.init(resource: resource, filters: filters, days: days, order: order, csvFilename: csvFilename, prepare: { _, _ in })
    }
}

/// One filter of a list: the parameter it reads and the condition it puts in the `WHERE`
/// clause when given (the value bound; the column constant SQL).
struct ListFilter<Context>: Sendable {
    let name: String
    /// Whether the condition is judged on the list's `as_of` day.
    var usesDay = false
    /// Reads the parameter (problems go to the reader); nil when absent. The condition gets what
    /// `prepare` read and the `as_of` day.
    let read: @Sendable (inout QueryReader) -> (@Sendable (Context, CalendarDate) throws -> SQLFragment)?

    /// A condition built from the parameter's value: `read` validates it, `condition` makes
    /// the SQL from it and what `prepare` read.
    static func custom<Value: Sendable>(_ name: String, read: @escaping @Sendable (inout QueryReader, String) -> Value?,
                                        condition: @escaping @Sendable (Value, Context) throws -> SQLFragment) -> ListFilter {
        ListFilter(name: name) { reader in
            guard let value = read(&reader, name) else { return nil }
            return { context, _ in try condition(value, context) }
        }
    }

    /// A condition that holds or not on a day: judged on the list's `as_of` (a date parameter,
    /// default today in England), which the list accepts once it has such a filter.
    static func onDay<Value: Sendable>(_ name: String, read: @escaping @Sendable (inout QueryReader, String) -> Value?,
                                       condition: @escaping @Sendable (Value, CalendarDate) -> SQLFragment) -> ListFilter {
        ListFilter(name: name, usesDay: true) { reader in
            guard let value = read(&reader, name) else { return nil }
            return { _, day in condition(value, day) }
        }
    }

    /// `column = value`, text of 1 to `maxLength` characters.
    static func text(_ name: String, _ column: String, maxLength: Int = 100) -> ListFilter {
        custom(name, read: { $0.string($1, maxLength: maxLength) }, condition: { value, _ in "\(unsafeRaw: column) = \(value)" })
    }

    /// `column = value`, a value of the vocabulary.
    static func vocabulary<Value: RawRepresentable & CaseIterable & Sendable>(_ name: String, _ type: Value.Type, _ column: String) -> ListFilter
    where Value.RawValue == String {
        custom(name, read: { $0.vocabulary($1, type) }, condition: { value, _ in "\(unsafeRaw: column) = \(value.rawValue)" })
    }

    /// `column = value`, `true` or `false`.
    static func bool(_ name: String, _ column: String) -> ListFilter {
        custom(name, read: { $0.bool($1) }, condition: { value, _ in "\(unsafeRaw: column) = \(value)" })
    }

    /// `column = value`, a whole number within `range`.
    static func integer(_ name: String, _ column: String, in range: ClosedRange<Int>) -> ListFilter {
        custom(name, read: { $0.integer($1, in: range) }, condition: { value, _ in "\(unsafeRaw: column) = \(value)" })
    }

    /// `column = value`, a UUID.
    static func uuid(_ name: String, _ column: String) -> ListFilter {
        custom(name, read: { $0.uuid($1) }, condition: { value, _ in "\(unsafeRaw: column) = \(value)" })
    }
}

/// The record a list is below: the path parameter naming it (404 when it is not the caller's)
/// and the condition that keeps the list to it.
struct ListParent: Sendable {
    let parameter: String
    /// The parent's table (constant SQL), with `tenant_id` and `id`.
    let table: String
    let notFound: HTTPError
    /// The condition on the list's rows, given the parent's id.
    let condition: @Sendable (UUID) -> SQLFragment

    /// `column = <parent id>`.
    init(_ parameter: String = "id", table: String, column: String, notFound: HTTPError) {
        self.init(parameter, table: table, notFound: notFound) { id in "\(unsafeRaw: column) = \(id)" }
    }

    init(_ parameter: String = "id", table: String, notFound: HTTPError, condition: @escaping @Sendable (UUID) -> SQLFragment) {
        self.parameter = parameter
        self.table = table
        self.notFound = notFound
        self.condition = condition
    }

    /// Whether the caller's tenant (and organisation) has the parent.
    func exists(_ id: UUID, on tx: TenantTransaction) async throws -> Bool {
        try await !tx.query("SELECT 1 FROM \(unsafeRaw: table) WHERE tenant_id = \(tx.principal.tenantID) AND id = \(id)").isEmpty
    }
}

/// `from` and `to`: whole days, both included, on an instant column, as days in UTC or in
/// England (London's midnight, GMT or BST), or on a `date` column. `to` before `from` is a 400.
struct DayRange: Sendable {
    enum Zone: Sendable {
        case utc, england
        /// The column is a `date`: compared as days.
        case date
    }

    let column: String
    let zone: Zone

    func start(of day: CalendarDate) -> Date {
        switch zone {
        case .utc: Date(timeIntervalSince1970: TimeInterval(day.daysSince1970) * 86_400)
        case .england, .date: WorkingDayCalendar.startOfLocalDay(day)
        }
    }

    fileprivate func read(_ query: inout QueryReader) -> [SQLFragment]? {
        let from = query.date("from"), to = query.date("to")
        if let from, let to, to < from { query.reject("to", "must not be before from") }
        var conditions: [SQLFragment] = []
        if zone == .date {
            if let from { conditions.append("\(unsafeRaw: column) >= \(from)") }
            if let to { conditions.append("\(unsafeRaw: column) <= \(to)") }
            return conditions.isEmpty ? nil : conditions
        }
        if let from { conditions.append("\(unsafeRaw: column) >= \(start(of: from))") }
        if let to { conditions.append("\(unsafeRaw: column) < \(start(of: to.adding(days: 1)))") }
        return conditions.isEmpty ? nil : conditions
    }
}

/// A list's order: the columns it is sorted by, which must together be unique (end with the
/// id), all ascending or all descending; the cursor holds their values at the end of a page.
struct ListOrder: Sendable {
    /// The types a position can hold, each checked when a cursor comes back.
    enum KeyType: String, Sendable {
        case bigint, uuid, timestamptz
        /// A 64-bit transaction id (`pg_current_xact_id()`), written in decimal digits only.
        case xid8

        func accepts(_ text: String) -> Bool {
            switch self {
            case .bigint: Int64(text) != nil
            case .xid8: !text.isEmpty && text.utf8.allSatisfy { (48...57).contains($0) } && UInt64(text) != nil
            case .uuid: UUID(uuidString: text) != nil
            case .timestamptz: PostgresTimestamp.isValid(text)
            }
        }
    }

    let keys: [(sql: String, type: KeyType)]
    let descending: Bool

    init(descending keys: [(String, KeyType)]) {
        self.keys = keys.map { (sql: $0.0, type: $0.1) }
        self.descending = true
    }

    init(ascending keys: [(String, KeyType)]) {
        self.keys = keys.map { (sql: $0.0, type: $0.1) }
        self.descending = false
    }

    /// The key columns as PostgreSQL writes them (microseconds intact), to make the cursor.
    var selectList: String {
        keys.enumerated().map { "(\($1.sql))::text AS list_position_\($0)" }.joined(separator: ", ")
    }

    var orderBy: String {
        keys.map { "\($0.sql) \(descending ? "DESC" : "ASC")" }.joined(separator: ", ")
    }

    func position(of row: PostgresRow) throws -> [String] {
        try keys.indices.map { try row.decode(String.self, column: "list_position_\($0)") }
    }

    /// Accepts a cursor's position only if it has one value of the right type per key.
    func accepts(_ position: [String]) -> Bool {
        position.count == keys.count && zip(keys, position).allSatisfy { $0.type.accepts($1) }
    }

    /// Rows after `position` in this order: `(k1, k2) < ($1::type, $2::type)` (or `>`).
    func after(_ position: [String]) -> SQLFragment {
        let columns = keys.map(\.sql).joined(separator: ", ")
        let values = SQLFragment.joined(zip(keys, position).map { key, value in "\(value)::\(unsafeRaw: key.type.rawValue)" },
                                        separator: ", ")
        return "(\(unsafeRaw: columns)) \(unsafeRaw: descending ? "<" : ">") (\(values))"
    }
}

/// The text PostgreSQL writes for a `timestamptz` with `TimeZone` UTC
/// (`2026-11-20 10:00:00.123456+00`), checked before it is ever sent back: a cursor is the
/// client's to tamper with, and a value PostgreSQL refuses must be a 400, not a 500.
enum PostgresTimestamp {
    static func isValid(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count >= 22, bytes.count <= 32 else { return false }
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[range] {
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard let day = CalendarDate(String(decoding: bytes[0..<10], as: UTF8.self)), day.description.utf8.count == 10,
              bytes[10] == 32, let hour = number(11..<13), hour < 24, bytes[13] == 58, let minute = number(14..<16), minute < 60,
              bytes[16] == 58, let second = number(17..<19), second < 60 else { return false }
        var index = 19
        if bytes[index] == 46 {
            let digits = bytes[(index + 1)...].prefix { $0 >= 48 && $0 <= 57 }.count
            guard (1...6).contains(digits) else { return false }
            index += 1 + digits
        }
        guard index + 3 == bytes.count, bytes[index] == 43 || bytes[index] == 45, let offset = number((index + 1)..<(index + 3)) else {
            return false
        }
        return offset == 0
    }
}

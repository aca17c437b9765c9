import Foundation
import HTTPServer
import Postgres

/// A record Heard stores and answers, declared once as its columns: each field's name (the JSON
/// key, the result column's alias and the CSV header), the SQL that selects it, and the property
/// that holds it. From that one declaration come the select list, the decoding of a row, the
/// JSON (optional fields as `null`, free text only for a key that may read it) and the CSV.
///
/// ```swift
/// struct Note: StoredRecord {
///     var id = UUID.zero
///     var team: String?
///     var text: String?
///     var includesFreeText = false
///     static let table = Table<Note>("notes n", [
///         .column("id", "n.id", \.id),
///         .column("team", "n.team", \.team),
///         .freeText("text", "n.text", \.text),
///     ])
/// }
/// ```
protocol StoredRecord: Encodable, Sendable {
    /// A blank record, which decoding fills in.
    init()
    static var table: Table<Self> { get }
    /// Whether the free-text fields were read (the key has `free_text:read`): without, they are
    /// absent from the JSON and the CSV, and never read from the database.
    var includesFreeText: Bool { get set }
}

extension StoredRecord {
    var includesFreeText: Bool {
        get { false }
        set {}
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: FieldKey.self)
        try Self.table.encode(self, into: &container)
    }
}

/// A JSON key named at run time.
struct FieldKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ name: String) { stringValue = name }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// A value a record's field holds: decoded from a result column, written to JSON and to a CSV
/// cell the one way Heard writes it (ids in lower case, instants as RFC 3339 in UTC, days as
/// `YYYY-MM-DD`, nil as JSON `null` and an empty cell).
protocol FieldValue: PostgresDecodable {
    func encode(into container: inout KeyedEncodingContainer<FieldKey>, forKey key: FieldKey) throws
    var csvCell: String? { get }
}

extension String: FieldValue {
    func encode(into container: inout KeyedEncodingContainer<FieldKey>, forKey key: FieldKey) throws { try container.encode(self, forKey: key) }
    var csvCell: String? { self }
}

extension Int: FieldValue {
    func encode(into container: inout KeyedEncodingContainer<FieldKey>, forKey key: FieldKey) throws { try container.encode(self, forKey: key) }
    var csvCell: String? { String(self) }
}

extension Bool: FieldValue {
    func encode(into container: inout KeyedEncodingContainer<FieldKey>, forKey key: FieldKey) throws { try container.encode(self, forKey: key) }
    var csvCell: String? { self ? "true" : "false" }
}

extension Date: FieldValue {
    func encode(into container: inout KeyedEncodingContainer<FieldKey>, forKey key: FieldKey) throws {
        try container.encode(JSON.iso8601(self), forKey: key)
    }
    var csvCell: String? { JSON.iso8601(self) }
}

extension UUID: FieldValue {
    func encode(into container: inout KeyedEncodingContainer<FieldKey>, forKey key: FieldKey) throws { try container.encode(lowercased, forKey: key) }
    var csvCell: String? { lowercased }
    /// The blank id a record starts from before decoding.
    static let zero = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
}

extension CalendarDate: FieldValue {
    func encode(into container: inout KeyedEncodingContainer<FieldKey>, forKey key: FieldKey) throws { try container.encode(description, forKey: key) }
    var csvCell: String? { description }
}

extension Array: FieldValue where Element == String {
    func encode(into container: inout KeyedEncodingContainer<FieldKey>, forKey key: FieldKey) throws { try container.encode(self, forKey: key) }
    var csvCell: String? { joined(separator: " ") }
}

extension Optional: FieldValue where Wrapped: FieldValue {
    func encode(into container: inout KeyedEncodingContainer<FieldKey>, forKey key: FieldKey) throws {
        if let self { try self.encode(into: &container, forKey: key) } else { try container.encodeNil(forKey: key) }
    }
    var csvCell: String? { self?.csvCell }
}

/// One field of a record: how it is selected, decoded, answered and exported.
struct Column<Record>: Sendable {
    /// The JSON key; for a column read from the database, also its alias in the select list.
    let name: String
    /// Select-list entries (`expression AS alias`) this field reads; empty for a computed one.
    let selects: [(sql: String, alias: String)]
    let isFreeText: Bool
    /// Read and decoded, never answered (a position, a content hash).
    let isHidden: Bool
    /// Reads the field from a row whose aliases carry a prefix (a nested record's; "" otherwise).
    let decode: @Sendable (inout Record, PostgresRow, String) throws -> Void
    let encode: @Sendable (Record, inout KeyedEncodingContainer<FieldKey>) throws -> Void
    /// The CSV columns this field is exported as (none for a computed field).
    let csv: [CSVColumn<Record>]

    /// A field read from one result column.
    static func column<Value: FieldValue>(_ name: String, _ sql: String, _ keyPath: WritableKeyPath<Record, Value> & Sendable,
                                          hidden: Bool = false, freeText: Bool = false) -> Column {
        Column(
            name: name, selects: [(sql, name)], isFreeText: freeText, isHidden: hidden,
            decode: { record, row, prefix in record[keyPath: keyPath] = try row.decode(Value.self, column: prefix + name) },
            encode: { record, container in try record[keyPath: keyPath].encode(into: &container, forKey: FieldKey(name)) },
            csv: hidden ? [] : [CSVColumn(name) { $0[keyPath: keyPath].csvCell }])
    }

    /// A value read for the server's own use, never answered or exported (a record's stored
    /// arrays, say): any type the database layer decodes.
    static func stored<Value: PostgresDecodable>(_ name: String, _ sql: String, _ keyPath: WritableKeyPath<Record, Value> & Sendable) -> Column {
        Column(
            name: name, selects: [(sql, name)], isFreeText: false, isHidden: true,
            decode: { record, row, prefix in record[keyPath: keyPath] = try row.decode(Value.self, column: prefix + name) },
            encode: { _, _ in }, csv: [])
    }

    /// Narrative: selected, answered and exported only for a key with `free_text:read`.
    static func freeText(_ name: String, _ sql: String, _ keyPath: WritableKeyPath<Record, String?> & Sendable) -> Column {
        column(name, sql, keyPath, freeText: true)
    }

    /// A field held in a nested object (`equality: {gender, ...}`), read from its own columns
    /// of the same row, `null` when every one of them is NULL. Its columns' aliases, and CSV
    /// headers, are `prefix` + their names.
    static func nested<Nested: StoredRecord>(_ name: String, _ keyPath: WritableKeyPath<Record, Nested?> & Sendable,
                                             prefix: String = "") -> Column {
        let inner = Nested.table.columns
        return Column(
            name: name, selects: inner.flatMap { column in column.selects.map { ($0.sql, prefix + $0.alias) } },
            isFreeText: false, isHidden: false,
            decode: { record, row, outer in
                let aliases = inner.flatMap { $0.selects.map { outer + prefix + $0.alias } }
                guard aliases.contains(where: { !row.isNull(column: $0) }) else {
                    record[keyPath: keyPath] = nil
                    return
                }
                var nested = Nested()
                for column in inner { try column.decode(&nested, row, outer + prefix) }
                record[keyPath: keyPath] = nested
            },
            encode: { record, container in
                if let nested = record[keyPath: keyPath] {
                    try container.encode(nested, forKey: FieldKey(name))
                } else {
                    try container.encodeNil(forKey: FieldKey(name))
                }
            },
            csv: inner.flatMap { column in
                column.csv.map { csv in CSVColumn<Record>(prefix + csv.header) { record in record[keyPath: keyPath].flatMap(csv.cell) } }
            })
    }

    /// A field the store fills in itself (from another query, or computed): answered, not
    /// selected, not exported.
    static func computed<Value: Encodable & Sendable>(_ name: String, _ keyPath: KeyPath<Record, Value> & Sendable) -> Column {
        Column(
            name: name, selects: [], isFreeText: false, isHidden: false, decode: { _, _, _ in },
            encode: { record, container in try container.encode(record[keyPath: keyPath], forKey: FieldKey(name)) },
            csv: [])
    }
}

/// A record's table: where its rows come from (`FROM` with any joins, the alias first) and its
/// columns, in the order they are answered.
struct Table<Record: StoredRecord>: Sendable {
    /// `feedback f LEFT JOIN organisations o ON ...`: constant SQL, never input.
    let from: String
    /// The alias of the record's own table (`f`), whose `tenant_id` and `id` every read names.
    let alias: String
    let columns: [Column<Record>]

    /// The select lists, built once (a read by id would otherwise build its SQL afresh on
    /// every request): without free text, then with it.
    private let selectLists: (withoutFreeText: String, withFreeText: String)

    init(_ from: String, _ columns: [Column<Record>]) {
        self.from = from
        self.alias = String(from.split(whereSeparator: \.isWhitespace).dropFirst().first ?? "")
        self.columns = columns
        func list(includeFreeText: Bool) -> String {
            columns.flatMap { column in
                column.selects.map { column.isFreeText && !includeFreeText ? "NULL::text AS \($0.alias)" : "\($0.sql) AS \($0.alias)" }
            }.joined(separator: ", ")
        }
        selectLists = (list(includeFreeText: false), list(includeFreeText: true))
    }

    /// `expr AS alias, ...`: free text as NULL without the scope, so it is never even read.
    func selectList(includeFreeText: Bool) -> String {
        includeFreeText ? selectLists.withFreeText : selectLists.withoutFreeText
    }

    /// `SELECT <columns> FROM <from>`.
    func select(includeFreeText: Bool) -> String {
        "SELECT \(selectList(includeFreeText: includeFreeText)) FROM \(from)"
    }

    func decode(_ row: PostgresRow, includeFreeText: Bool) throws -> Record {
        var record = Record()
        for column in columns { try column.decode(&record, row, "") }
        record.includesFreeText = includeFreeText
        return record
    }

    func encode(_ record: Record, into container: inout KeyedEncodingContainer<FieldKey>) throws {
        for column in columns where !column.isHidden && (!column.isFreeText || record.includesFreeText) {
            try column.encode(record, &container)
        }
    }

    /// The CSV columns, in answer order; free text only when included.
    func csvColumns(includeFreeText: Bool) -> [CSVColumn<Record>] {
        columns.filter { !$0.isFreeText || includeFreeText }.flatMap(\.csv)
    }

    /// The record of the caller's tenant (and, through row-level security, organisation) with
    /// this id, or nil.
    func find(_ id: UUID, on tx: TenantTransaction, includeFreeText: Bool = false) async throws -> Record? {
        try await tx.query("\(findQuery(id, tenant: tx.principal.tenantID, includeFreeText: includeFreeText))")
            .first.map { try decode($0, includeFreeText: includeFreeText) }
    }

    /// A read by id, as the transaction's last statement with its audit row (`read` of
    /// `resource`, written only when the record is found) in the same statement: a transaction
    /// that sent nothing before is one unit, one round trip, on a shared connection. The answer
    /// exists only if its audit row commits.
    /// With `below`, only a record of that parent is found (a milestone of its item): one of
    /// another parent is nil, and unaudited, as an unknown id is.
    func read(_ id: UUID, below parent: ParentKey? = nil, on tx: TenantTransaction, includeFreeText: Bool,
              audited resource: AuditResource) async throws -> Record? {
        try await read(id, below: parent, on: tx, includeFreeText: includeFreeText, audited: resource, with: [])?.record
    }

    /// `read`, with the statements that complete the record (its history, the council's
    /// calendar) sent in the same unit: the record, and the rows of each of `companions`.
    func read(_ id: UUID, below parent: ParentKey? = nil, on tx: TenantTransaction, includeFreeText: Bool, audited resource: AuditResource,
              with companions: [PostgresQuery]) async throws -> (record: Record, companions: [[PostgresRow]])? {
        let rows = try await tx.queryAndCommit([auditedFindQuery(id, below: parent, on: tx, includeFreeText: includeFreeText, resource: resource)]
                                               + companions)
        guard let record = try rows[0].first.map({ try decode($0, includeFreeText: includeFreeText) }) else { return nil }
        return (record, Array(rows.dropFirst()))
    }

    /// Reads by id for single requests of one key that came together (see `ReadsTogether`),
    /// as the transaction's last statement: every record wanted, and for each request whose
    /// record was found the audit row naming that request, in one statement. The records in
    /// the order wanted, nil where not found (and not audited), as `read` answers each.
    func readAll(_ wanted: [ReadsTogether<Record>.Wanted], on tx: TenantTransaction, includeFreeText: Bool,
                 audited resource: AuditResource) async throws -> [Record?] {
        let audit = AuditTrail.recordEach(of: "found", resourceID: "found.wanted_id::text", principal: tx.principal,
                                          requestID: "found.wanted_request", action: .read, resourceType: resource)
        let rows = try await tx.queryAndCommit("""
            WITH wanted AS (
                SELECT * FROM unnest(\(wanted.map(\.id))::uuid[], \(wanted.map(\.requestID))::text[]) WITH ORDINALITY AS w (id, request_id, n)
            ), found AS (
                SELECT w.n AS wanted_n, w.id AS wanted_id, w.request_id AS wanted_request,
                       \(unsafeRaw: selectList(includeFreeText: includeFreeText))
                  FROM \(unsafeRaw: from)
                  JOIN wanted w ON \(unsafeRaw: alias).id = w.id
                 WHERE \(unsafeRaw: alias).tenant_id = \(tx.principal.tenantID)
            ), audited AS (\(audit))
            SELECT * FROM found
            """)
        var records = [Record?](repeating: nil, count: wanted.count)
        for row in rows {
            records[try row.decode(Int.self, column: "wanted_n") - 1] = try decode(row, includeFreeText: includeFreeText)
        }
        return records
    }

    /// The statement of `read`: the record, and its audit row when it is found.
    private func auditedFindQuery(_ id: UUID, below parent: ParentKey? = nil, on tx: TenantTransaction, includeFreeText: Bool,
                          resource: AuditResource) -> PostgresQuery {
        let audit = AuditTrail.recordEach(of: "found", resourceID: "\(id.lowercased)", principal: tx.principal, requestID: "\(tx.requestID)",
                                          action: .read, resourceType: resource)
        var find = findQuery(id, tenant: tx.principal.tenantID, includeFreeText: includeFreeText)
        if let parent { find = "\(find) AND \(unsafeRaw: alias).\(unsafeRaw: parent.column) = \(parent.id)" }
        return "WITH found AS (\(find)), audited AS (\(audit)) SELECT * FROM found"
    }

    private func findQuery(_ id: UUID, tenant: UUID, includeFreeText: Bool) -> SQLFragment {
        "\(unsafeRaw: select(includeFreeText: includeFreeText)) WHERE \(unsafeRaw: alias).tenant_id = \(tenant) AND \(unsafeRaw: alias).id = \(id)"
    }
}

/// The parent a record is read below: the column of the record's own table that names it
/// (constant SQL, never input) and the parent's id from the path.
struct ParentKey: Sendable {
    let column: String
    let id: UUID

    init(_ column: String, _ id: UUID) {
        self.column = column
        self.id = id
    }
}

/// One column of an export: its header and how a record fills its cell.
struct CSVColumn<Record>: Sendable {
    let header: String
    let cell: @Sendable (Record) -> String?

    init(_ header: String, _ cell: @escaping @Sendable (Record) -> String?) {
        self.header = header
        self.cell = cell
    }
}


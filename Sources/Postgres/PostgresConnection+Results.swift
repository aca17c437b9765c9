import CLibPQ
import Foundation

/// The rows and the affected-row count of one statement.
public struct PostgresResult: Sendable {
    public var rows: [PostgresRow] = []
    public var rowsAffected = 0
}

/// What libpq answers, read: rows, affected-row counts and errors with their SQLSTATE.
extension PostgresConnection {
    /// Reads and frees `result` (exactly once), throwing the server's error if it has one.
    func consume(_ result: OpaquePointer?) throws -> PostgresResult {
        defer {
            PQclear(result)
            updateReusable()
        }
        switch result.map(PQresultStatus) {
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return PostgresResult(rowsAffected: result.flatMap { Int(String(cString: PQcmdTuples($0))) } ?? 0)
        case PGRES_TUPLES_OK:
            return result.map(Self.rows) ?? PostgresResult()
        default:
            throw error(from: result)
        }
    }

    static func rows(of result: OpaquePointer) -> PostgresResult {
        let rowCount = PQntuples(result)
        let columnCount = PQnfields(result)
        let columns = PostgresColumns(
            names: (0..<columnCount).map { column in PQfname(result, column).map { String(cString: $0) } ?? "?column?" },
            types: (0..<columnCount).map { PostgresDataType(PQftype(result, $0)) })
        var rows: [PostgresRow] = []
        rows.reserveCapacity(Int(rowCount))
        for row in 0..<rowCount {
            let values: [String?] = (0..<columnCount).map { column in
                guard PQgetisnull(result, row, column) == 0, let value = PQgetvalue(result, row, column) else { return nil }
                return String(cString: value)
            }
            rows.append(PostgresRow(columns: columns, values: values))
        }
        return PostgresResult(rows: rows, rowsAffected: Int(rowCount))
    }

    func error(from result: OpaquePointer?) -> PostgresError {
        func field(_ code: Character) -> String? {
            guard let result, let ascii = code.asciiValue else { return nil }
            return Self.message(PQresultErrorField(result, Int32(ascii)))
        }
        let sqlState = field("C")
        let lost = handle.map { PQstatus($0) == CONNECTION_BAD } ?? true
        let message = field("M") ?? handle.flatMap { Self.message(PQerrorMessage($0)) } ?? "unknown error"
        return PostgresError(
            kind: lost || PostgresError.isConnectionState(sqlState) ? .connection : .query,
            sqlState: sqlState,
            message: message,
            detail: field("D"),
            constraint: field("n"),
            table: field("t"),
            column: field("c"))
    }

    func lostConnection(_ handle: OpaquePointer) -> PostgresError {
        PostgresError(kind: .connection, message: Self.message(PQerrorMessage(handle)) ?? "the connection was lost")
    }

    /// A libpq message without its trailing newline.
    static func message(_ pointer: UnsafePointer<CChar>?) -> String? {
        guard let pointer else { return nil }
        return String(cString: pointer).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

import Foundation
import XCTest
@testable import Postgres

/// Every supported type to PostgreSQL and back, through a real table.
final class TypeRoundTripTests: XCTestCase {
    private struct Payload: Codable, Equatable, Sendable {
        var name: String
        var tags: [String]
    }

    func testEveryTypeRoundTrips() async throws {
        try await withTestPool { pool, _ in
            try await pool.execute("""
                CREATE TABLE everything (
                    t text, i2 int2, i4 int4, i8 int8, i bigint, b bool, f float8, n numeric,
                    d date, ts timestamptz, u uuid, by bytea, data bytea, arr text[], ints int8[],
                    uuids uuid[], j jsonb)
                """)
            let instant = Date(timeIntervalSince1970: 1_763_803_800.123456)
            let uuid = UUID()
            let bytes: [UInt8] = [0, 1, 2, 0x7f, 0x80, 0xff]
            let texts: [String] = ["plain", "with space", "", "NULL", #"q"uote"#, #"back\slash"#, "{braces}", "a,b", "🙂"]
            let payload = Payload(name: "Siân", tags: ["x", "y"])
            let count = try await pool.execute("""
                INSERT INTO everything VALUES (
                    \("text ✓"), \(Int16(-2)), \(Int32(2_000_000_000)), \(Int64.max), \(Int.min), \(true), \(3.25),
                    \(Decimal(string: "12345678901234567890.123456789")!), \(CalendarDate("2026-11-22")!), \(instant),
                    \(uuid), \(bytes), \(Data(bytes)), \(texts), \([1, -2, 3]), \([uuid]), \(try PostgresJSON(payload)))
                """)
            XCTAssertEqual(count, 1)

            let row = try await pool.firstRow("SELECT * FROM everything")
            XCTAssertEqual(try row.decode(String.self, column: "t"), "text ✓")
            XCTAssertEqual(try row.decode(Int16.self, column: "i2"), -2)
            XCTAssertEqual(try row.decode(Int32.self, column: "i4"), 2_000_000_000)
            XCTAssertEqual(try row.decode(Int64.self, column: "i8"), Int64.max)
            XCTAssertEqual(try row.decode(Int.self, column: "i"), Int.min)
            XCTAssertEqual(try row.decode(Int.self, column: "i4"), 2_000_000_000)
            XCTAssertEqual(try row.decode(Bool.self, column: "b"), true)
            XCTAssertEqual(try row.decode(Double.self, column: "f"), 3.25)
            XCTAssertEqual(try row.decode(Decimal.self, column: "n"), Decimal(string: "12345678901234567890.123456789"))
            XCTAssertEqual(try row.decode(CalendarDate.self, column: "d"), CalendarDate("2026-11-22"))
            XCTAssertEqual(Timestamp.format(try row.decode(Date.self, column: "ts")), Timestamp.format(instant))
            XCTAssertEqual(try row.decode(UUID.self, column: "u"), uuid)
            XCTAssertEqual(try row.decode([UInt8].self, column: "by"), bytes)
            XCTAssertEqual(try row.decode(Data.self, column: "data"), Data(bytes))
            XCTAssertEqual(try row.decode([String].self, column: "arr"), texts)
            XCTAssertEqual(try row.decode([Int].self, column: "ints"), [1, -2, 3])
            XCTAssertEqual(try row.decode([UUID].self, column: "uuids"), [uuid])
            XCTAssertEqual(try row.decode(PostgresJSON<Payload>.self, column: "j").value, payload)
            let json = try row.decode(Data.self, column: "j")
            XCTAssertEqual(try JSONDecoder().decode(Payload.self, from: json), payload)
            XCTAssertEqual(try row.decode(String.self, at: 0), "text ✓")
        }
    }

    func testArraysOfInstantsAndOfOptionalsRoundTrip() async throws {
        try await withTestPool { pool, _ in
            let instants = [Date(timeIntervalSince1970: 1_763_803_800.123456), Date(timeIntervalSince1970: 0)]
            let ids: [UUID?] = [UUID(), nil]
            let flags: [Bool?] = [nil, false, true]
            let row = try await pool.firstRow("SELECT \(instants) AS instants, \(ids) AS ids, \(flags) AS flags")
            XCTAssertEqual(try row.decode([Date].self, column: "instants").map(Timestamp.format), instants.map(Timestamp.format))
            XCTAssertEqual(try row.decode([UUID?].self, column: "ids"), ids)
            XCTAssertEqual(try row.decode([Bool?].self, column: "flags"), flags)
        }
    }

    func testNullRoundTripsForEveryType() async throws {
        try await withTestPool { pool, _ in
            try await pool.execute("""
                CREATE TABLE nulls (t text, i int8, b bool, f float8, n numeric, d date, ts timestamptz,
                                    u uuid, by bytea, arr text[], j jsonb)
                """)
            let none: (String?, Int?, Bool?, Double?, Decimal?, CalendarDate?, Date?, UUID?, [UInt8]?, [String]?)
                = (nil, nil, nil, nil, nil, nil, nil, nil, nil, nil)
            let json: PostgresJSON<[Int]>? = nil
            try await pool.execute("""
                INSERT INTO nulls VALUES (\(none.0), \(none.1), \(none.2), \(none.3), \(none.4), \(none.5),
                                          \(none.6), \(none.7), \(none.8), \(none.9), \(json))
                """)
            let row = try await pool.firstRow("SELECT * FROM nulls")
            XCTAssertNil(try row.decode(String?.self, column: "t"))
            XCTAssertNil(try row.decode(Int?.self, column: "i"))
            XCTAssertNil(try row.decode(Bool?.self, column: "b"))
            XCTAssertNil(try row.decode(Double?.self, column: "f"))
            XCTAssertNil(try row.decode(Decimal?.self, column: "n"))
            XCTAssertNil(try row.decode(CalendarDate?.self, column: "d"))
            XCTAssertNil(try row.decode(Date?.self, column: "ts"))
            XCTAssertNil(try row.decode(UUID?.self, column: "u"))
            XCTAssertNil(try row.decode([UInt8]?.self, column: "by"))
            XCTAssertNil(try row.decode([String]?.self, column: "arr"))
            XCTAssertNil(try row.decode(PostgresJSON<[Int]>?.self, column: "j"))
            XCTAssertTrue(row.isNull(column: "t"))

            let error = try await expectPostgresError { try row.decode(String.self, column: "t") }
            XCTAssertEqual(error.kind, .decode(column: "t", expected: "text", actual: "NULL"))
        }
    }

    func testTextArraysWithNullElements() async throws {
        try await withTestPool { pool, _ in
            let elements: [String?] = ["a", nil, "NULL", ""]
            let row = try await pool.firstRow("SELECT \(elements) AS a, ARRAY['x', NULL]::text[] AS b")
            XCTAssertEqual(try row.decode([String?].self, column: "a"), elements)
            XCTAssertEqual(try row.decode([String?].self, column: "b"), ["x", nil])
            // A NULL element cannot become a non-optional String.
            let error = try await expectPostgresError { try row.decode([String].self, column: "b") }
            guard case .decode(column: "b", expected: _, actual: _) = error.kind else {
                return XCTFail("unexpected \(error)")
            }
        }
    }

    func testTextIsStoredVerbatim() async throws {
        try await withTestPool { pool, _ in
            try await pool.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)")
            let samples = [
                "Mae hi'n bwrw glaw — ŵ ŷ", "مرحبا بالعالم", "👨‍👩‍👧‍👦 family 🙂", "'; DROP TABLE notes; --",
                "$1", "$2::text", #"\\ \x00 \' \""#, "line\nbreak\ttab\r", "NULL", "",
                String(repeating: "é", count: 1 << 19),  // 1 MB of UTF-8
            ]
            for sample in samples {
                try await pool.execute("INSERT INTO notes (body) VALUES (\(sample))")
            }
            let rows = try await pool.query("SELECT body FROM notes ORDER BY id")
            XCTAssertEqual(try rows.map { try $0.decode(String.self, column: "body") }, samples)
            let tables = try await pool.query("SELECT count(*) AS n FROM pg_tables WHERE tablename = 'notes'")
            XCTAssertEqual(try tables.first?.decode(Int.self, column: "n"), 1)
        }
    }

    func testNulCharacterIsRejectedNotTruncated() async throws {
        try await withTestPool { pool, _ in
            let error = try await expectPostgresError { try await pool.query("SELECT \("a\u{0}b")") }
            XCTAssertEqual(error.sqlState, "22021")
            XCTAssertEqual(error.kind, .query)
        }
    }

    func testDecodeErrorsNameColumnAndTypes() async throws {
        try await withTestPool { pool, _ in
            let row = try await pool.firstRow("SELECT 1::int4 AS n, 'x'::text AS s")
            let wrongType = try await expectPostgresError { try row.decode(UUID.self, column: "n") }
            XCTAssertEqual(wrongType.kind, .decode(column: "n", expected: "uuid", actual: "int4 (oid 23)"))
            let missing = try await expectPostgresError { try row.decode(Int.self, column: "nope") }
            XCTAssertEqual(missing.kind, .decode(column: "nope", expected: "int2/int4/int8", actual: "no such column"))
            let outOfRange = try await expectPostgresError { try row.decode(Int.self, at: 7) }
            guard case .decode = outOfRange.kind else { return XCTFail("unexpected \(outOfRange)") }
            XCTAssertTrue(wrongType.description.contains("\"n\""))
        }
    }

    func testSpecialDoubles() async throws {
        try await withTestPool { pool, _ in
            for value in [Double.infinity, -Double.infinity, 0.1, -0.0, 1e-300, Double.greatestFiniteMagnitude] {
                let row = try await pool.firstRow("SELECT \(value) AS v")
                XCTAssertEqual(try row.decode(Double.self, column: "v"), value)
            }
            let nan = try await pool.firstRow("SELECT \(Double.nan) AS v")
            XCTAssertTrue(try nan.decode(Double.self, column: "v").isNaN)
        }
    }
}

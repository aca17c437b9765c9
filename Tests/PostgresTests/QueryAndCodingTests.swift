import Foundation
import XCTest
@testable import Postgres

/// Tests that need no server: interpolation, text formats, configuration parsing, errors.
final class QueryAndCodingTests: XCTestCase {
    func testInterpolationEmitsPlaceholdersAndBinds() {
        let id = 42
        let name = "'; DROP TABLE x; --"
        let query: PostgresQuery = "SELECT * FROM t WHERE id = \(id) AND name = \(name) \(unsafeRaw: "ORDER BY x")"
        XCTAssertEqual(query.sql, "SELECT * FROM t WHERE id = $1 AND name = $2 ORDER BY x")
        XCTAssertEqual(query.binds, [PostgresBind(type: .int8, text: "42"), PostgresBind(type: .text, text: name)])
    }

    func testQueryDescriptionNeverShowsValues() {
        let secret = "hunter2"
        let query: PostgresQuery = "SELECT \(secret)"
        XCTAssertFalse(query.description.contains(secret))
        XCTAssertTrue(query.description.contains("$1"))
    }

    func testOptionalBindsNull() {
        let missing: String? = nil
        let query: PostgresQuery = "SELECT \(missing)"
        XCTAssertEqual(query.binds, [PostgresBind(type: .text, text: nil)])
    }

    func testArrayLiteral() {
        let elements: [String?] = ["a", "b c", nil, "NULL", #"q"uote"#, #"back\slash"#, "", "{}", ","]
        let text = ArrayLiteral.format(elements)
        XCTAssertEqual(ArrayLiteral.parse(text), elements)
        XCTAssertEqual(ArrayLiteral.parse(#"{a,NULL,"NULL",null,"x\"y",z\,w}"#), ["a", nil, "NULL", nil, #"x"y"#, "z,w"])
        XCTAssertEqual(ArrayLiteral.parse("{}"), [])
        XCTAssertNil(ArrayLiteral.parse("{{1,2},{3,4}}"))
        XCTAssertNil(ArrayLiteral.parse("[0:1]={a,b}"))
        XCTAssertNil(ArrayLiteral.parse(#"{"unterminated}"#))
        XCTAssertNil(ArrayLiteral.parse("{a,}"))
    }

    func testByteaHex() {
        XCTAssertEqual(Bytea.hex([0x00, 0xff, 0x10]), #"\x00ff10"#)
        XCTAssertEqual(Bytea.parse(#"\x00FF10"#), [0x00, 0xff, 0x10])
        XCTAssertNil(Bytea.parse(#"\x0"#))
        XCTAssertNil(Bytea.parse("00ff"))
        XCTAssertNil(Bytea.parse(#"\xzz"#))
    }

    func testConfigurationFromTCPURL() throws {
        let configuration = try PostgresConfiguration(
            url: "postgresql://heard%40x:p%40ss@db.example:6543/heard_prod?sslmode=require&application_name=api&sslrootcert=/ca.pem")
        XCTAssertEqual(configuration.user, "heard@x")
        XCTAssertEqual(configuration.password, "p@ss")
        XCTAssertEqual(configuration.host, "db.example")
        XCTAssertEqual(configuration.port, 6543)
        XCTAssertEqual(configuration.database, "heard_prod")
        XCTAssertEqual(configuration.sslMode, "require")
        XCTAssertEqual(configuration.applicationName, "api")
        XCTAssertEqual(configuration.extraParameters, ["sslrootcert": "/ca.pem"])
        XCTAssertFalse(configuration.redacted.contains("p@ss"))
        XCTAssertFalse(configuration.redacted.contains("p%40ss"))
        XCTAssertFalse("\(configuration)".contains("p%40ss"))
        XCTAssertTrue(configuration.redacted.contains(":***@"))
        let keywords = configuration.libpqParameters.map(\.keyword)
        XCTAssertTrue(keywords.contains("connect_timeout"))
    }

    func testConfigurationFromSocketURL() throws {
        let configuration = try PostgresConfiguration(url: "postgresql:///heard?host=/tmp/pg%20dir&user=postgres")
        XCTAssertEqual(configuration.host, "/tmp/pg dir")
        XCTAssertEqual(configuration.user, "postgres")
        XCTAssertEqual(configuration.database, "heard")
        XCTAssertNil(configuration.port)
        XCTAssertNil(configuration.password)
        XCTAssertEqual(configuration.applicationName, "heard")
        XCTAssertEqual(try PostgresConfiguration(url: configuration.redacted), configuration)

        let ipv6 = try PostgresConfiguration(url: "postgres://u@[::1]:5433/d")
        XCTAssertEqual(ipv6.host, "::1")
        XCTAssertEqual(ipv6.port, 5433)
        XCTAssertThrowsError(try PostgresConfiguration(url: "mysql://x/y"))
        XCTAssertThrowsError(try PostgresConfiguration(url: "postgresql://h:99999/d"))
    }

    func testErrorDescriptionOmitsValues() {
        let unique = PostgresError(
            kind: .query, sqlState: "23505", message: "duplicate key value violates unique constraint \"t_email_key\"",
            detail: "Key (email)=(someone@example.org) already exists.", constraint: "t_email_key")
        XCTAssertTrue(unique.isUniqueViolation)
        XCTAssertFalse(unique.isConnectionFailure)
        XCTAssertFalse(unique.description.contains("someone@example.org"))
        XCTAssertTrue(unique.description.contains("t_email_key"))

        let badInput = PostgresError(kind: .query, sqlState: "22P02", message: "invalid input syntax for type uuid: \"secret\"")
        XCTAssertFalse(badInput.description.contains("secret"))
        XCTAssertTrue(PostgresError(kind: .poolTimeout, message: "x").isConnectionFailure)
        XCTAssertTrue(PostgresError(kind: .connection, message: "x").isConnectionFailure)
    }
}

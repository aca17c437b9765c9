import Foundation
import HTTPServer
import HeardAPI
import HeardTesting
import Postgres
import XCTest

/// `openapi.yaml` and the router agree: every route the router registers is a documented
/// operation, every documented operation is routed, and each states the scope the route enforces.
final class OpenAPIRoutesTests: XCTestCase {
    func testEveryRouteIsDocumentedWithTheScopeItEnforcesAndEveryDocumentedOperationIsRouted() throws {
        let documented = try OpenAPIOperations(file: HeardBinary.packageRoot.appendingPathComponent("openapi.yaml"))
        XCTAssertGreaterThan(documented.scopes.count, 20, "the reader found the operations of openapi.yaml")
        let routed = Dictionary(uniqueKeysWithValues: try Self.routes().map {
            ("\($0.method) \($0.template)", $0.metadata[AccessControl.requiredScopeKey] ?? "(none)")
        })
        for operation in routed.keys.sorted() where documented.scopes[operation] == nil {
            XCTFail("\(operation) is routed but not in openapi.yaml")
        }
        for operation in documented.scopes.keys.sorted() where routed[operation] == nil {
            XCTFail("\(operation) is in openapi.yaml but not routed")
        }
        for (operation, scope) in routed {
            guard let stated = documented.scopes[operation] else { continue }
            XCTAssertEqual(stated, scope, "\(operation): x-required-scope in openapi.yaml, and the scope the route enforces")
        }
        for operation in documented.secured.symmetricDifference(documented.scopes.filter { $0.value != "(none)" }.keys) {
            XCTFail("\(operation): an operation with `security` states its x-required-scope, and only such an operation")
        }
    }

    /// The routes `heard serve` registers. Building the router opens no connection.
    static func routes() throws -> [Router.RouteDescription] {
        let pool = PostgresPool(configuration: PostgresConfiguration(), size: 1)
        defer { pool.shutdown() }
        let migrator = try Migrator(directory: AppHarness.migrationsDirectory)
        return HeardApp(database: pool, migrator: migrator, metrics: Metrics()).router().routes
    }
}

/// The operations of an OpenAPI document's `paths`, read line by line: a path is a line
/// indented two spaces, an operation a method indented four, and its fields are indented six.
struct OpenAPIOperations {
    /// `METHOD /template` to its `x-required-scope`, or `(none)`.
    var scopes: [String: String] = [:]
    /// The operations that have `security`.
    var secured: Set<String> = []

    init(file: URL) throws {
        let methods: Set<String> = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]
        var inPaths = false, path: String?, operation: String?
        for line in try String(contentsOf: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" ") && !line.isEmpty {
                inPaths = line == "paths:"
                continue
            }
            guard inPaths else { continue }
            let indent = line.prefix { $0 == " " }.count
            let text = line.trimmingCharacters(in: .whitespaces)
            if indent == 2, text.hasPrefix("/"), text.hasSuffix(":") {
                path = String(text.dropLast())
                operation = nil
            } else if indent == 4, let path, text.hasSuffix(":"), methods.contains(String(text.dropLast())) {
                let key = text.dropLast().uppercased() + " " + path
                scopes[key] = "(none)"
                operation = key
            } else if indent == 4 {
                operation = nil
            } else if indent == 6, let operation {
                if text.hasPrefix("x-required-scope:") {
                    scopes[operation] = text.dropFirst("x-required-scope:".count).trimmingCharacters(in: .whitespaces)
                } else if text.hasPrefix("security:") {
                    secured.insert(operation)
                }
            }
        }
    }
}

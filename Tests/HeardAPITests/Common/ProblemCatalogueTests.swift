import Foundation
import HTTPServer
@testable import HeardAPI
import HeardTesting
import XCTest

/// Every kind of problem Heard answers is declared once, in `ProblemType.catalogue`, and
/// `openapi.yaml` lists exactly those, with the same status and title.
final class ProblemCatalogueTests: XCTestCase {
    /// `x-problem-types` of the Problem schema: `{ type: "...", status: N, title: "..." }` a line.
    private func documented() throws -> [String: (status: Int, title: String)] {
        let spec = try String(contentsOf: HeardBinary.packageRoot.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        let pattern = try NSRegularExpression(pattern: #"- \{ type: "urn:heard:problem:([a-z-]+)", status: (\d+), title: "([^"]+)" \}"#)
        var found: [String: (Int, String)] = [:]
        for match in pattern.matches(in: spec, range: NSRange(spec.startIndex..., in: spec)) {
            let text = { (index: Int) in String(spec[Range(match.range(at: index), in: spec)!]) }
            XCTAssertNil(found[text(1)], "\(text(1)) is listed twice in openapi.yaml")
            found[text(1)] = (Int(text(2))!, text(3))
        }
        return found
    }

    func testTheCatalogueAndTheContractListTheSameProblems() throws {
        let documented = try documented()
        let declared = ProblemType.catalogue
        XCTAssertEqual(Set(declared.map(\.slug)).count, declared.count, "a slug is declared twice")
        XCTAssertEqual(Set(documented.keys), Set(declared.map(\.slug)))
        for problem in declared {
            XCTAssertEqual(documented[problem.slug]?.status, problem.status.code, problem.slug)
            XCTAssertEqual(documented[problem.slug]?.title, problem.title, problem.slug)
        }
    }

    func testAProblemIsAnsweredWithItsDeclaredTypeTitleAndStatus() throws {
        var error = HTTPError(.alreadyAcknowledged, detail: "Done already.")
        error.extensions["allowed_actions"] = .list([])
        let response = error.response
        XCTAssertEqual(response.status.code, 409)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
        XCTAssertEqual(json["type"] as? String, "urn:heard:problem:already-acknowledged")
        XCTAssertEqual(json["title"] as? String, "Already acknowledged")
        XCTAssertEqual(json["status"] as? Int, 409)
        XCTAssertEqual(json["allowed_actions"] as? [String], [])
    }
}

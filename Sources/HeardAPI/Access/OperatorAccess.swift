import Foundation
import HTTPServer
import Postgres

/// Who may read what operators read: `/metrics`, and the details of `/readyz` (which database
/// error, which migrations). Requests from `addresses`, or bearing `token`, may; others get 403
/// from `/metrics` and a bare status from `/readyz`. `/healthz` is open to all.
public struct OperatorAccess: Sendable {
    public var addresses: AddressSet
    /// Compared as a SHA-256, so the comparison takes the same time however much of it matches.
    private var tokenHash: [UInt8]?

    public init(addresses: AddressSet = .loopback, token: String? = nil) {
        self.addresses = addresses
        self.tokenHash = token.map { SHA256.hash(Array($0.utf8)) }
    }

    func allows(_ request: Request) -> Bool {
        if let address = request.clientAddress, addresses.contains(address) { return true }
        guard let tokenHash, let header = request.headers["Authorization"], header.count > 7,
              header.prefix(7).lowercased() == "bearer " else { return false }
        let offered = SHA256.hash(Array(header.dropFirst(7).trimmingCharacters(in: .whitespaces).utf8))
        return zip(offered, tokenHash).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

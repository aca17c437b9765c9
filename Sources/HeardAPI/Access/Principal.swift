import Foundation
import HTTPServer
import Postgres

/// Who is calling: an API key of one tenant, perhaps bound to one partner organisation.
public struct Principal: Sendable {
    public let keyID: UUID
    public let tenantID: UUID
    /// Set for a partner's key: it sees only records attributed to this organisation.
    public let organisationID: UUID?
    public let scopes: Set<Scope>
    /// The last day before the key expires (its own or, sooner, that of a key up the chain that
    /// minted it); nil when it does not expire.
    public let expiresOn: CalendarDate?

    public init(keyID: UUID, tenantID: UUID, organisationID: UUID?, scopes: Set<Scope>, expiresOn: CalendarDate? = nil) {
        self.keyID = keyID
        self.tenantID = tenantID
        self.organisationID = organisationID
        self.scopes = scopes
        self.expiresOn = expiresOn
    }

    public func has(_ scope: Scope) -> Bool { scopes.contains(scope) }

    /// Everything a request's database work takes from its key: requests with the same identity
    /// may be done together, in one transaction with one set of settings (`Coalescer`).
    struct Identity: Hashable, Sendable {
        let keyID: UUID
        let tenantID: UUID
        let organisationID: UUID?
        let scopes: Set<Scope>
    }

    var identity: Identity { Identity(keyID: keyID, tenantID: tenantID, organisationID: organisationID, scopes: scopes) }

    /// The transaction-local settings row-level security reads.
    var databaseSettings: [(name: String, value: String)] {
        [("heard.tenant_id", tenantID.lowercased), ("heard.organisation_id", organisationID?.lowercased ?? "")]
    }
}


extension Principal {
    /// A council's own settings and vocabularies change only with a council-wide key: a partner
    /// organisation's key is refused (403), naming `what` it tried to change.
    func requireCouncilWide(toChange what: String) throws(HTTPError) {
        guard organisationID == nil else {
            throw HTTPError(.councilKeyRequired, detail: "A partner organisation's key cannot change \(what).")
        }
    }
}

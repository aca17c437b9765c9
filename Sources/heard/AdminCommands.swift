import Foundation
import HTTPServer
import HeardAPI
import Postgres

/// `heard tenants`, `heard organisations` and `heard keys`: the registry, administered as the
/// schema's owner (MIGRATION_DATABASE_URL, else DATABASE_URL, else the private cluster).
enum AdminCommands {
    static let tenantsHelp = """
        Usage: heard tenants create <slug> --name "<name>"
               heard tenants list

        A tenant is a local authority; every record belongs to exactly one.
        """

    static let organisationsHelp = """
        Usage: heard organisations create --tenant <slug> <org-slug> --name "<name>"
               heard organisations list --tenant <slug>

        A partner organisation (an advocacy provider, a commissioned service) inside a tenant.
        A key bound to it sees only the records attributed to it.
        """

    static let keysHelp = """
        Usage: heard keys create --tenant <slug> --name <label> --scopes <a,b,...> [--organisation <org-slug>] [--expires <YYYY-MM-DD>]
               heard keys list --tenant <slug>
               heard keys revoke <key-id>

        create prints the new key, alone on one line of standard output, once: only a hash of it
        is kept. A key stops working at 00:00 UTC on its --expires date.
        Scopes: \(Scope.allCases.map { $0.rawValue }.joined(separator: ", "))
        """

    static let flags: [String: Options.Kind] = [
        "name": .value, "tenant": .value, "scopes": .value, "organisation": .value, "expires": .value,
    ]

    static func tenants(_ options: Options) async throws -> Int32 {
        switch options.positional.first {
        case "create":
            guard options.positional.count == 2, let slug = options.positional.last else { throw UsageError(description: tenantsHelp) }
            let name = try required(options, "name", help: tenantsHelp)
            return try await withOwnerPool { pool in
                let tenant = try await Registry.createTenant(on: pool, slug: slug, name: name)
                print("created tenant \(tenant.slug) (\(tenant.id.lowercased))")
            }
        case "list":
            return try await withOwnerPool { pool in
                for tenant in try await Registry.tenants(on: pool) {
                    print("\(tenant.slug)\t\(tenant.id.lowercased)\t\(tenant.name)")
                }
            }
        default:
            throw UsageError(description: tenantsHelp)
        }
    }

    static func organisations(_ options: Options) async throws -> Int32 {
        let tenantSlug = try required(options, "tenant", help: organisationsHelp)
        switch options.positional.first {
        case "create":
            guard options.positional.count == 2, let slug = options.positional.last else { throw UsageError(description: organisationsHelp) }
            let name = try required(options, "name", help: organisationsHelp)
            return try await withOwnerPool { pool in
                let tenant = try await Registry.tenant(on: pool, slug: tenantSlug)
                let organisation = try await Registry.createOrganisation(on: pool, tenant: tenant, slug: slug, name: name)
                print("created organisation \(organisation.slug) in \(tenant.slug) (\(organisation.id.lowercased))")
            }
        case "list":
            return try await withOwnerPool { pool in
                let tenant = try await Registry.tenant(on: pool, slug: tenantSlug)
                for organisation in try await Registry.organisations(on: pool, tenant: tenant) {
                    print("\(organisation.slug)\t\(organisation.id.lowercased)\t\(organisation.name)")
                }
            }
        default:
            throw UsageError(description: organisationsHelp)
        }
    }

    static func keys(_ options: Options) async throws -> Int32 {
        switch options.positional.first {
        case "create":
            let tenantSlug = try required(options, "tenant", help: keysHelp)
            let name = try required(options, "name", help: keysHelp)
            guard !name.isEmpty, name.count <= 100 else { throw UsageError(description: "--name must be 1 to 100 characters") }
            let scopes = try parseScopes(try required(options, "scopes", help: keysHelp))
            var expires: CalendarDate?
            if let text = options.value("expires") {
                guard let date = CalendarDate(text), text.utf8.count == 10 else { throw UsageError(description: "--expires must be a date, YYYY-MM-DD") }
                guard date > CalendarDate(utcDayOf: Date()) else { throw UsageError(description: "--expires must be after today") }
                expires = date
            }
            return try await withOwnerPool { pool in
                let tenant = try await Registry.tenant(on: pool, slug: tenantSlug)
                var organisationID: UUID?
                if let slug = options.value("organisation") {
                    guard let organisation = try await Registry.organisations(on: pool, tenant: tenant).first(where: { $0.slug == slug }) else {
                        throw Registry.Failure(description: "\(tenant.slug) has no organisation called \(slug)")
                    }
                    organisationID = organisation.id
                }
                let (record, key) = try await pool.transaction(settings: [("heard.tenant_id", tenant.id.lowercased)]) { tx in
                    try await KeyStore.create(on: tx, tenantID: tenant.id, organisationID: organisationID, name: name,
                                              scopes: scopes, expiresOn: expires, createdBy: nil)
                }
                printError("created key \(record.id.lowercased) for \(tenant.slug); it is shown once, below:")
                print(key)
            }
        case "list":
            let tenantSlug = try required(options, "tenant", help: keysHelp)
            return try await withOwnerPool { pool in
                let tenant = try await Registry.tenant(on: pool, slug: tenantSlug)
                let records = try await pool.transaction(settings: [("heard.tenant_id", tenant.id.lowercased)]) { tx in
                    try await KeyStore.all(on: tx, tenantID: tenant.id)
                }
                for record in records {
                    let state = record.revokedAt != nil ? "revoked" : record.expiresOn.map { "expires \($0)" } ?? "active"
                    print("\(record.id.lowercased)\t\(record.name)\t\(record.scopes.joined(separator: ","))\t\(record.organisation ?? "-")\t\(state)")
                }
            }
        case "revoke":
            guard options.positional.count == 2, let id = UUID(uuidString: options.positional[1]) else {
                throw UsageError(description: "give the key's id (see `heard keys list`)\n\n\(keysHelp)")
            }
            return try await withOwnerPool { pool in
                guard let tenantID = try await Registry.tenantOfKey(on: pool, keyID: id) else {
                    throw Registry.Failure(description: "there is no key \(id.lowercased)")
                }
                _ = try await pool.transaction(settings: [("heard.tenant_id", tenantID.lowercased)]) { tx in
                    try await KeyStore.revoke(on: tx, tenantID: tenantID, id: id)
                }
                print("revoked key \(id.lowercased)")
            }
        default:
            throw UsageError(description: keysHelp)
        }
    }

    private static func parseScopes(_ list: String) throws -> [Scope] {
        var scopes: [Scope] = []
        for name in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty {
            guard let scope = Scope(rawValue: name) else {
                throw UsageError(description: "unknown scope \(name.debugDescription); scopes: \(Scope.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if !scopes.contains(scope) { scopes.append(scope) }
        }
        guard !scopes.isEmpty else { throw UsageError(description: "--scopes must name at least one scope") }
        return scopes
    }

    private static func required(_ options: Options, _ name: String, help: String) throws -> String {
        guard let value = options.value(name) else { throw UsageError(description: "--\(name) is required\n\n\(help)") }
        return value
    }

    /// Runs `body` with a small pool connected as the owner; refuses while migrations are pending.
    private static func withOwnerPool(_ body: (PostgresPool) async throws -> Void) async throws -> Int32 {
        let environment = Environment()
        let log = RequestLog(fd: 2, level: .warn)
        let migrator = try Migrator(directory: environment.migrationsDirectory)
        let database = try await DatabaseTarget.resolve(environment, log: log)
        defer { database.release() }
        let pool = PostgresPool(configuration: database.owner, size: 1)
        defer { pool.shutdown() }
        let pending = try await migrator.pending(using: pool)
        guard pending.isEmpty else {
            throw Registry.Failure(description: "the database has pending migrations (\(pending.map(\.fileName).joined(separator: ", "))); run `heard migrate` first")
        }
        try await body(pool)
        return 0
    }
}

import Foundation
import HTTPServer
import HeardAPI

/// Every environment variable Heard reads: its default and what it means. `heard --help` and
/// the README's configuration table print from this one list.
struct Setting {
    let name: String
    let defaultValue: String
    let meaning: String

    static let all: [Setting] = [
        Setting(name: "DATABASE_URL", defaultValue: "(unset)",
                meaning: "PostgreSQL URL, e.g. postgresql://heard:secret@db:5432/heard. Unset: Heard starts a private PostgreSQL cluster in HEARD_DATA_DIR."),
        Setting(name: "MIGRATION_DATABASE_URL", defaultValue: "DATABASE_URL",
                meaning: "PostgreSQL URL of the schema's owner, for migrations and the admin commands (tenants, organisations, keys)."),
        Setting(name: "HEARD_DATA_DIR", defaultValue: ".heard/postgres",
                meaning: "Data directory of the private cluster used when DATABASE_URL is unset."),
        Setting(name: "HOST", defaultValue: "127.0.0.1", meaning: "Address to listen on (0.0.0.0 or :: for every interface)."),
        Setting(name: "PORT", defaultValue: "8080", meaning: "TCP port to listen on."),
        Setting(name: "POOL_SIZE", defaultValue: "10", meaning: "Most database connections open at once."),
        Setting(name: "POOL_ACQUIRE_TIMEOUT_MS", defaultValue: "2000",
                meaning: "How long a request waits for a database connection before it is answered 503 with Retry-After."),
        Setting(name: "LOG_LEVEL", defaultValue: "info", meaning: "debug, info, warn, error or off. Request lines are info."),
        Setting(name: "MAX_BODY_BYTES", defaultValue: "1048576", meaning: "Largest request body accepted; larger gets 413."),
        Setting(name: "MAX_HEADER_BYTES", defaultValue: "16384", meaning: "Largest request line plus headers; larger gets 431."),
        Setting(name: "MAX_CONNECTIONS", defaultValue: "1024", meaning: "Most open client connections; more are answered 503."),
        Setting(name: "MAX_CONNECTIONS_PER_ADDRESS", defaultValue: "128",
                meaning: "Most open connections from one client address; more are answered 503. Raise it behind a proxy that connects from one address."),
        Setting(name: "MIN_BODY_BYTES_PER_SECOND", defaultValue: "1024",
                meaning: "Once its headers are in, a request whose body arrives slower than this on average (after 5 seconds) gets 408."),
        Setting(name: "IDLE_TIMEOUT_SECONDS", defaultValue: "60", meaning: "An idle keep-alive connection is closed after this."),
        Setting(name: "HEADER_TIMEOUT_SECONDS", defaultValue: "10", meaning: "A client still sending its headers after this gets 408."),
        Setting(name: "SHUTDOWN_TIMEOUT_SECONDS", defaultValue: "10", meaning: "On SIGTERM/SIGINT, in-flight requests get this long to finish."),
        Setting(name: "EVENT_LOOPS", defaultValue: "(twice the cores, 2 to 4)",
                meaning: "Event-loop queues serving connections; more than twice the cores are held to twice the cores."),
        Setting(name: "RATE_LIMIT_PER_SECOND", defaultValue: "50", meaning: "Sustained requests per second allowed per API key; more get 429 with Retry-After."),
        Setting(name: "RATE_LIMIT_BURST", defaultValue: "100", meaning: "Requests an API key may make at once above the sustained rate."),
        Setting(name: "AUTH_FAILURES_PER_MINUTE", defaultValue: "60",
                meaning: "Refused authentications (401) allowed per client address per minute; past them, that address gets 429 before any key is looked up."),
        Setting(name: "LONG_POLL_MAX_SECONDS", defaultValue: "30",
                meaning: "The longest GET /v1/events?wait= holds a request: a longer wait is answered, empty, at this (1 to 30)."),
        Setting(name: "READ_AUDIT_COMMIT", defaultValue: "deferred",
                meaning: "flushed: a read is answered once its audit row is on disk; deferred: once committed, flushed within 600 ms (a crash may lose the last moment's read audits)."),
        Setting(name: "METRICS_ALLOWED_ADDRESSES", defaultValue: "127.0.0.1/8,::1",
                meaning: "Comma-separated addresses or CIDR ranges that may read /metrics and the details of /readyz (others: 403 and a bare status). /healthz is open to all."),
        Setting(name: "METRICS_TOKEN", defaultValue: "(none)",
                meaning: "A bearer token that also opens /metrics and the details of /readyz (Authorization: Bearer <token>), from any address."),
        Setting(name: "CORS_ALLOWED_ORIGINS", defaultValue: "(none)",
                meaning: "Comma-separated browser origins (https://portal.example.org) allowed to call the API."),
        Setting(name: "MIGRATIONS_DIR", defaultValue: "Migrations", meaning: "Folder of the NNNN_name.sql migrations."),
    ]
}

struct SettingsError: Error, CustomStringConvertible {
    let description: String
}

/// The environment, read and checked once at start-up. A bad value stops start-up with a message.
struct Environment {
    let values: [String: String]

    init(_ values: [String: String] = ProcessInfo.processInfo.environment) {
        self.values = values
    }

    func string(_ name: String) -> String? {
        guard let value = values[name], !value.isEmpty else { return nil }
        return value
    }

    func string(_ name: String, default defaultValue: String) -> String {
        string(name) ?? defaultValue
    }

    func integer(_ name: String, default defaultValue: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = string(name) else { return defaultValue }
        guard let value = Int(text), range.contains(value) else {
            throw SettingsError(description: "\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound), not \(text.debugDescription)")
        }
        return value
    }

    func serverConfiguration() throws -> ServerConfiguration {
        var configuration = ServerConfiguration()
        configuration.host = string("HOST", default: configuration.host)
        configuration.port = try integer("PORT", default: configuration.port, range: 0...65535)
        configuration.maxBodyBytes = try integer("MAX_BODY_BYTES", default: configuration.maxBodyBytes, range: 1024...(1 << 30))
        configuration.maxHeadBytes = try integer("MAX_HEADER_BYTES", default: configuration.maxHeadBytes, range: 1024...(1 << 20))
        configuration.maxConnections = try integer("MAX_CONNECTIONS", default: configuration.maxConnections, range: 1...100_000)
        configuration.maxConnectionsPerAddress = try integer("MAX_CONNECTIONS_PER_ADDRESS", default: configuration.maxConnectionsPerAddress, range: 1...100_000)
        configuration.minBodyBytesPerSecond = try integer("MIN_BODY_BYTES_PER_SECOND", default: configuration.minBodyBytesPerSecond, range: 0...(1 << 30))
        configuration.idleTimeout = Double(try integer("IDLE_TIMEOUT_SECONDS", default: Int(configuration.idleTimeout), range: 1...3600))
        configuration.headerTimeout = Double(try integer("HEADER_TIMEOUT_SECONDS", default: Int(configuration.headerTimeout), range: 1...600))
        configuration.shutdownTimeout = Double(try integer("SHUTDOWN_TIMEOUT_SECONDS", default: Int(configuration.shutdownTimeout), range: 0...600))
        // More than twice the cores serve worse (README, "The data path"): held to that.
        configuration.loopCount = min(try integer("EVENT_LOOPS", default: configuration.loopCount, range: 1...64), ServerConfiguration.maxLoopCount)
        return configuration
    }

    func logLevel() throws -> RequestLog.Level {
        let name = string("LOG_LEVEL", default: "info")
        guard let level = RequestLog.Level(name: name) else {
            throw SettingsError(description: "LOG_LEVEL must be debug, info, warn, error or off, not \(name.debugDescription)")
        }
        return level
    }

    func corsOrigins() throws -> [String] {
        guard let list = string("CORS_ALLOWED_ORIGINS") else { return [] }
        let origins = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        for origin in origins where !(origin.hasPrefix("https://") || origin.hasPrefix("http://")) || origin.hasSuffix("/") {
            throw SettingsError(description: "CORS_ALLOWED_ORIGINS holds \(origin.debugDescription); an origin is scheme://host[:port], no path")
        }
        return origins
    }

    func accessConfiguration(log: RequestLog? = nil) throws -> AccessControl.Configuration {
        var addresses = AddressSet.loopback
        if let list = string("METRICS_ALLOWED_ADDRESSES") {
            guard let parsed = AddressSet(list: list) else {
                throw SettingsError(description: "METRICS_ALLOWED_ADDRESSES must be comma-separated IP addresses or CIDR ranges, not \(list.debugDescription)")
            }
            addresses = parsed
        }
        if let token = string("METRICS_TOKEN"), token.utf8.count < 16 {
            throw SettingsError(description: "METRICS_TOKEN must be at least 16 characters")
        }
        return AccessControl.Configuration(
            ratePerSecond: Double(try integer("RATE_LIMIT_PER_SECOND", default: 50, range: 1...1_000_000)),
            burst: Double(try integer("RATE_LIMIT_BURST", default: 100, range: 1...1_000_000)),
            authFailuresPerMinute: Double(try integer("AUTH_FAILURES_PER_MINUTE", default: 60, range: 1...1_000_000)),
            operators: OperatorAccess(addresses: addresses, token: string("METRICS_TOKEN")),
            log: log, readAudit: try readAudit(),
            longPollSeconds: try integer("LONG_POLL_MAX_SECONDS", default: 30, range: 1...30))
    }

    func readAudit() throws -> ReadAudit {
        let text = string("READ_AUDIT_COMMIT", default: ReadAudit.deferred.rawValue)
        guard let value = ReadAudit(rawValue: text) else {
            throw SettingsError(description: "READ_AUDIT_COMMIT must be \(ReadAudit.allCases.map(\.rawValue).joined(separator: " or ")), not \(text.debugDescription)")
        }
        return value
    }

    var migrationsDirectory: URL {
        URL(fileURLWithPath: string("MIGRATIONS_DIR", default: "Migrations"))
    }
}

import Foundation

/// Where and how to connect to PostgreSQL.
///
/// Built from a connection URL in libpq's URI form:
/// - TCP: `postgresql://user:password@host:5432/database?sslmode=require&application_name=heard`
/// - Unix socket: `postgresql:///database?host=/path/to/socket/dir&user=postgres`
///
/// Query parameters other than the ones with their own property are passed to libpq as
/// connection keywords unchanged (for example `sslrootcert`), so libpq reports unknown ones.
public struct PostgresConfiguration: Sendable, Hashable, CustomStringConvertible {
    /// A host name, an IP address, or (when it starts with `/`) a Unix socket directory.
    public var host: String?
    public var port: Int?
    public var user: String?
    public var password: String?
    public var database: String?
    /// libpq `sslmode` (`disable`, `prefer`, `require`, `verify-full`, ...); libpq's default when nil.
    public var sslMode: String?
    /// Shown in `pg_stat_activity`; always sent.
    public var applicationName: String
    /// Seconds libpq waits for a connection to be established; always sent.
    public var connectTimeoutSeconds: Int
    /// Further libpq connection keywords, passed through as given.
    public var extraParameters: [String: String]

    public init(
        host: String? = nil,
        port: Int? = nil,
        user: String? = nil,
        password: String? = nil,
        database: String? = nil,
        sslMode: String? = nil,
        applicationName: String = "heard",
        connectTimeoutSeconds: Int = 5,
        extraParameters: [String: String] = [:]
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.sslMode = sslMode
        self.applicationName = applicationName
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.extraParameters = extraParameters
    }

    /// Parses a `postgresql://` (or `postgres://`) URL.
    /// - Throws: `PostgresConfiguration.ParseError` naming what is wrong (never the password).
    public init(url: String) throws {
        self.init()
        let schemes = ["postgresql://", "postgres://"]
        guard let scheme = schemes.first(where: { url.hasPrefix($0) }) else {
            throw ParseError(reason: "a database URL must start with postgresql:// or postgres://")
        }
        var rest = Substring(url.dropFirst(scheme.count))

        var query = Substring()
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        var authority = rest
        var path = Substring()
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            path = rest[rest.index(after: slash)...]
        }

        var hostAndPort = authority
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            hostAndPort = authority[authority.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                user = try Self.decode(userInfo[..<colon], what: "user")
                password = try Self.decode(userInfo[userInfo.index(after: colon)...], what: "password")
            } else {
                user = try Self.decode(userInfo, what: "user")
            }
        }
        try parseHostAndPort(hostAndPort)
        if !path.isEmpty { database = try Self.decode(path, what: "database name") }

        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = try Self.decode(parts[0], what: "parameter name")
            let value = parts.count > 1 ? try Self.decode(parts[1], what: "parameter \(key)") : ""
            try apply(parameter: key, value: value)
        }
    }

    private mutating func parseHostAndPort(_ text: Substring) throws {
        guard !text.isEmpty else { return }
        var hostPart = text
        var portPart: Substring?
        if text.hasPrefix("[") {  // IPv6 literal: [::1]:5432
            guard let close = text.firstIndex(of: "]") else {
                throw ParseError(reason: "unterminated IPv6 address in database URL")
            }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if after.hasPrefix(":") { portPart = after.dropFirst() }
        } else if let colon = text.lastIndex(of: ":") {
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
        }
        if !hostPart.isEmpty { host = try Self.decode(hostPart, what: "host") }
        if let portPart, !portPart.isEmpty {
            guard let number = Int(portPart), (1...65535).contains(number) else {
                throw ParseError(reason: "invalid port in database URL")
            }
            port = number
        }
    }

    private mutating func apply(parameter key: String, value: String) throws {
        switch key {
        case "host": host = value
        case "port":
            guard let number = Int(value), (1...65535).contains(number) else {
                throw ParseError(reason: "invalid port in database URL")
            }
            port = number
        case "user": user = value
        case "password": password = value
        case "dbname": database = value
        case "sslmode": sslMode = value
        case "application_name": applicationName = value
        case "connect_timeout":
            guard let seconds = Int(value), seconds >= 0 else {
                throw ParseError(reason: "invalid connect_timeout in database URL")
            }
            connectTimeoutSeconds = seconds
        default: extraParameters[key] = value
        }
    }

    private static func decode(_ text: Substring, what: String) throws -> String {
        guard let decoded = String(text).removingPercentEncoding else {
            throw ParseError(reason: "invalid percent-encoding in the \(what) of the database URL")
        }
        return decoded
    }

    /// The keyword/value pairs given to `PQconnectdbParams`.
    var libpqParameters: [(keyword: String, value: String)] {
        var pairs: [(String, String)] = []
        if let host { pairs.append(("host", host)) }
        if let port { pairs.append(("port", String(port))) }
        if let user { pairs.append(("user", user)) }
        if let password { pairs.append(("password", password)) }
        if let database { pairs.append(("dbname", database)) }
        if let sslMode { pairs.append(("sslmode", sslMode)) }
        pairs.append(("application_name", applicationName))
        pairs.append(("connect_timeout", String(connectTimeoutSeconds)))
        pairs.append(("client_encoding", "UTF8"))
        for key in extraParameters.keys.sorted() {
            pairs.append((key, extraParameters[key] ?? ""))
        }
        return pairs
    }

    /// The configuration as a URL with the password replaced by `***`: safe to log.
    public var redacted: String {
        var text = "postgresql://"
        if let user {
            text += Self.encode(user)
            if password != nil { text += ":***" }
            text += "@"
        }
        if let host, !host.hasPrefix("/") {
            text += host.contains(":") ? "[\(host)]" : Self.encode(host)
        }
        if let port { text += ":\(port)" }
        text += "/" + Self.encode(database ?? "")
        var query: [String] = []
        if let host, host.hasPrefix("/") { query.append("host=\(Self.encode(host))") }
        if let sslMode { query.append("sslmode=\(Self.encode(sslMode))") }
        query.append("application_name=\(Self.encode(applicationName))")
        for key in extraParameters.keys.sorted() {
            let value = key.lowercased().contains("password") ? "***" : Self.encode(extraParameters[key] ?? "")
            query.append("\(Self.encode(key))=\(value)")
        }
        return text + "?" + query.joined(separator: "&")
    }

    public var description: String { redacted }

    private static func encode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~/")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    /// A database URL that could not be understood.
    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public let reason: String
        public var description: String { "invalid DATABASE_URL: \(reason)" }
    }
}

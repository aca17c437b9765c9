import Foundation
import Postgres
import Synchronization

/// A private PostgreSQL cluster in a data directory, for local runs and tests.
///
/// `start()` finds the server binaries, runs `initdb` on first use, starts the server listening
/// only on a Unix socket inside the data directory, and creates the database. When the process
/// runs as root, the cluster belongs to the `postgres` user (PostgreSQL refuses to run as
/// root). A cluster that is already running (started by another `heard` process) is reused and
/// left running by `stop()`.
public final class EmbeddedPostgres: Sendable {
    /// The cluster's data directory; its Unix socket lives there too.
    public let dataDirectory: URL
    /// The database `start()` creates and connects to.
    public let database: String
    private let startedHere = Mutex(false)

    /// - Parameters:
    ///   - dataDirectory: created if missing; a relative path is taken from the current directory.
    ///   - database: lowercase letters, digits and underscores.
    public init(dataDirectory: URL, database: String = "heard") {
        self.dataDirectory = dataDirectory.absoluteURL.standardizedFileURL
        self.database = database
    }

    /// Where to connect: the socket directory, as user `postgres`.
    public var configuration: PostgresConfiguration {
        PostgresConfiguration(host: dataDirectory.path, user: "postgres", database: database)
    }

    /// Whether this object started the server (and so `stop()` will stop it).
    public var didStartServer: Bool { startedHere.withLock { $0 } }

    /// Whether a server is running on the data directory.
    public var isRunning: Bool {
        guard let binaries = try? Self.binaryDirectory(),
              FileManager.default.fileExists(atPath: path("PG_VERSION")) else { return false }
        return (try? run(binaries.appendingPathComponent("pg_ctl").path, ["status", "-D", dataDirectory.path]))?.status == 0
    }

    /// Starts the cluster (creating it on first use) unless it is already running, creates the
    /// database if missing, and returns how to connect.
    /// - Throws: `EmbeddedPostgresError` saying what to do (install PostgreSQL, shorten the path...).
    @discardableResult
    public func start() throws -> PostgresConfiguration {
        try Self.validate(directory: dataDirectory.path, database: database)
        let binaries = try Self.binaryDirectory()
        let pgCtl = binaries.appendingPathComponent("pg_ctl").path
        try prepareDirectory()
        if !FileManager.default.fileExists(atPath: path("PG_VERSION")) {
            let initdb = try run(binaries.appendingPathComponent("initdb").path, [
                "-D", dataDirectory.path, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8",
            ])
            guard initdb.status == 0 else {
                throw EmbeddedPostgresError("initdb failed in \(dataDirectory.path): \(initdb.output)")
            }
        }
        if !isRunning {
            let options = "-c listen_addresses='' -c unix_socket_directories='\(dataDirectory.path)'"
            let started = try run(pgCtl, [
                "-D", dataDirectory.path, "-l", path("server.log"), "-w", "-t", "60", "-o", options, "start",
            ])
            if started.status == 0 {
                startedHere.withLock { $0 = true }
            } else if !isRunning {  // (another process may have started it meanwhile)
                throw EmbeddedPostgresError(
                    "PostgreSQL did not start in \(dataDirectory.path): \(started.output) (see \(path("server.log")))")
            }
        }
        try createDatabaseIfMissing()
        return configuration
    }

    /// Stops the server (`pg_ctl -m fast stop`) if this object started it; a server started by
    /// another process is left running.
    public func stop() {
        let mine = startedHere.withLock { started in
            defer { started = false }
            return started
        }
        guard mine, let binaries = try? Self.binaryDirectory() else { return }
        _ = try? run(binaries.appendingPathComponent("pg_ctl").path,
                     ["-D", dataDirectory.path, "-m", "fast", "-w", "stop"])
    }

    // MARK: Steps

    private func path(_ name: String) -> String {
        dataDirectory.appendingPathComponent(name).path
    }

    /// Creates the directory; as root, hands it to `postgres` and makes the directories we
    /// created above it traversable.
    private func prepareDirectory() throws {
        let manager = FileManager.default
        var created: [String] = []
        var ancestor = dataDirectory
        while !manager.fileExists(atPath: ancestor.path), ancestor.path != "/" {
            created.append(ancestor.path)
            ancestor = ancestor.deletingLastPathComponent()
        }
        do {
            try manager.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
            for directory in created where directory != dataDirectory.path {
                try manager.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory)
            }
            try manager.setAttributes([.posixPermissions: 0o700], ofItemAtPath: dataDirectory.path)
        } catch {
            throw EmbeddedPostgresError("cannot create the data directory \(dataDirectory.path): \(error)")
        }
        guard geteuid() == 0 else { return }
        guard let owner = getpwnam("postgres") else {
            throw EmbeddedPostgresError("running as root needs the `postgres` user: install postgresql")
        }
        guard chown(dataDirectory.path, owner.pointee.pw_uid, owner.pointee.pw_gid) == 0 else {
            throw EmbeddedPostgresError("cannot give \(dataDirectory.path) to the postgres user (errno \(errno))")
        }
    }

    private func createDatabaseIfMissing() throws {
        var maintenance = configuration
        maintenance.database = "postgres"
        let connection = try PostgresConnection.connectBlocking(configuration: maintenance)
        defer { connection.closeBlocking() }
        let existing = try connection.queryBlocking("SELECT 1 FROM pg_database WHERE datname = \(database)")
        guard existing.isEmpty else { return }
        do {
            try connection.simpleExecuteBlocking("CREATE DATABASE \"\(database)\"")  // validated name
        } catch let error as PostgresError where error.sqlState == "42P04" {
            // duplicate_database: another process created it first.
        }
    }

    /// Runs a command (as `postgres` when we are root) and returns its exit status and output.
    private func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let directory = FileManager.default.fileExists(atPath: dataDirectory.path) ? dataDirectory.path : nil
        do {
            if geteuid() == 0 {
                return try Subprocess.run(Self.runuser, ["-u", "postgres", "--", executable] + arguments, in: directory)
            }
            return try Subprocess.run(executable, arguments, in: directory)
        } catch let failure as Subprocess.Failure {
            throw EmbeddedPostgresError(failure.description)
        }
    }

    // MARK: Finding things

    private static let runuser = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
        .first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/sbin/runuser"

    /// `PG_BINDIR`, else `pg_config --bindir` if it has `initdb`, else the newest
    /// `/usr/lib/postgresql/*/bin`.
    static func binaryDirectory() throws -> URL {
        let manager = FileManager.default
        func hasServer(_ directory: String) -> Bool {
            manager.isExecutableFile(atPath: directory + "/initdb") && manager.isExecutableFile(atPath: directory + "/pg_ctl")
        }
        let environment = ProcessInfo.processInfo.environment
        if let configured = environment["PG_BINDIR"], !configured.isEmpty {
            guard hasServer(configured) else {
                throw EmbeddedPostgresError(
                    "PG_BINDIR=\(configured) has no initdb and pg_ctl: point it at PostgreSQL's bin directory or install postgresql")
            }
            return URL(fileURLWithPath: configured)
        }
        let searchPath = (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        if let pgConfig = searchPath.map({ "\($0)/pg_config" }).first(where: manager.isExecutableFile(atPath:)) {
            if let result = try? Subprocess.run(pgConfig, ["--bindir"]), result.status == 0, hasServer(result.output) {
                return URL(fileURLWithPath: result.output)
            }
        }
        let root = "/usr/lib/postgresql"
        let versions = ((try? manager.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap { name in Double(name).map { (version: $0, name: name) } }
            .sorted { $0.version > $1.version }
        if let newest = versions.first(where: { hasServer("\(root)/\($0.name)/bin") }) {
            return URL(fileURLWithPath: "\(root)/\(newest.name)/bin")
        }
        throw EmbeddedPostgresError(
            "PostgreSQL server binaries (initdb, pg_ctl) were not found: install postgresql "
                + "(apt-get install postgresql), set PG_BINDIR, or set DATABASE_URL to use an existing server")
    }

    private static func validate(directory: String, database: String) throws {
        let unsafe = Set("'\"\\,$`").union([" ", "\t", "\n"])
        guard !directory.contains(where: unsafe.contains) else {
            throw EmbeddedPostgresError(
                "the data directory \(directory) contains a space, quote, comma, backslash, $ or backtick: choose a plainer path")
        }
        // The socket path (directory + "/.s.PGSQL.5432") must fit in sun_path (108 bytes).
        guard directory.utf8.count + 15 < 108 else {
            throw EmbeddedPostgresError(
                "the data directory path \(directory) is too long for a Unix socket (at most 92 bytes): choose a shorter one")
        }
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789_")
        guard !database.isEmpty, database.allSatisfy(allowed.contains) else {
            throw EmbeddedPostgresError("database name \(database) must be lowercase letters, digits and underscores")
        }
    }
}

/// Why the private cluster could not be set up, with what to do about it.
public struct EmbeddedPostgresError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

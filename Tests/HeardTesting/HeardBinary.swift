import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs the built `heard` executable (it sits beside the test bundle in the build folder).
public enum HeardBinary {
    public static var url: URL {
        let testBundle = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
        return testBundle.deletingLastPathComponent().appendingPathComponent("heard")
    }

    public struct Result: Sendable {
        public var status: Int32
        public var output: String
        public var error: String
    }

    /// What a child inherits from the test process: where programs and temporary files are,
    /// nothing that says which database or cluster to use.
    static let inherited = ["PATH", "HOME", "TMPDIR", "LANG", "PG_BINDIR"]

    /// Starts `heard arguments...` with exactly `environment` (nil values left out) and the
    /// `inherited` variables: a caller's `MIGRATION_DATABASE_URL`, `HEARD_DATA_DIR`, `PORT` and
    /// the like never reach it, so it only touches databases the test created.
    public static func start(_ arguments: [String], environment: [String: String?] = [:]) throws -> (Process, Pipe, Pipe) {
        let process = Process()
        process.executableURL = url
        process.arguments = arguments
        var explicit = ProcessInfo.processInfo.environment.filter { inherited.contains($0.key) }
        for (name, value) in environment { explicit[name] = value }
        process.environment = explicit
        process.currentDirectoryURL = packageRoot
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        return (process, output, error)
    }

    /// Runs to completion.
    public static func run(_ arguments: [String], environment: [String: String?] = [:]) throws -> Result {
        let (process, output, error) = try start(arguments, environment: environment)
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus,
                      output: String(decoding: outputData, as: UTF8.self),
                      error: String(decoding: errorData, as: UTF8.self))
    }

    /// The package's root folder (where `Migrations/` is).
    public static var packageRoot: URL {
        var directory = url.deletingLastPathComponent()
        while directory.path != "/" {
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) { return directory }
            directory = directory.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }
}

/// A loopback port that was free a moment ago (for child processes that need `--port`).
public func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let status = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(fd, pointer, length) == 0 ? getsockname(fd, pointer, &length) : -1
        }
    }
    guard status == 0 else { throw POSIXError(.EADDRNOTAVAIL) }
    return Int(UInt16(bigEndian: address.sin_port))
}

import Foundation

/// Runs a command and waits for it, for `initdb`, `pg_ctl` and `pg_config`.
///
/// Not Foundation's `Process`: it watches for a child's exit through a descriptor the child
/// inherits, and the server that `pg_ctl start` leaves running inherits it too, so the wait
/// never ends. Here the child gets only stdin (`/dev/null`) and stdout/stderr (a temporary
/// file), every other descriptor is closed, and the wait is a plain `waitpid`.
enum Subprocess {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs `executable` (an absolute path) and returns its exit status and combined output.
    /// Blocks the calling thread until the command exits.
    static func run(_ executable: String, _ arguments: [String], in directory: String? = nil) throws
        -> (status: Int32, output: String)
    {
        let logPath = FileManager.default.temporaryDirectory
            .appendingPathComponent("heard-subprocess-\(UUID().uuidString).log").path
        let log = open(logPath, O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0o600)
        guard log >= 0 else {
            throw Failure(description: "cannot create \(logPath): \(String(cString: strerror(errno)))")
        }
        defer {
            close(log)
            unlink(logPath)
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, log, 1)
        posix_spawn_file_actions_adddup2(&actions, log, 2)
        closeDescriptors(from: 3, in: &actions)
        if let directory { changeDirectory(to: directory, in: &actions) }

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard spawned == 0 else {
            throw Failure(description: "cannot run \(executable): \(String(cString: strerror(spawned)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else {
                throw Failure(description: "waiting for \(executable) failed: \(String(cString: strerror(errno)))")
            }
        }
        let signal = status & 0x7f
        let exitStatus = signal == 0 ? (status >> 8) & 0xff : 128 + signal
        let output = FileManager.default.contents(atPath: logPath).map { String(decoding: $0, as: UTF8.self) } ?? ""
        return (exitStatus, output.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    // glibc's GNU extensions (2.34+ and 2.29+), looked up at run time because Swift's Glibc
    // module does not declare them.
    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private typealias ChangeDirectory =
        @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32

    private static func closeDescriptors(from first: Int32, in actions: inout posix_spawn_file_actions_t) {
        if let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") {
            _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, first)
            return
        }
        // Older C libraries: close what is open now (glibc ignores ones closed meanwhile).
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for descriptor in open.compactMap({ Int32($0) }) where descriptor >= first {
            posix_spawn_file_actions_addclose(&actions, descriptor)
        }
    }

    private static func changeDirectory(to directory: String, in actions: inout posix_spawn_file_actions_t) {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addchdir_np") else { return }
        _ = directory.withCString { unsafeBitCast(symbol, to: ChangeDirectory.self)(&actions, $0) }
    }
}

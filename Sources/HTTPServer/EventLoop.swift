import Dispatch
import Synchronization

/// A serial queue that owns a set of connections, plus a `TaskExecutor` bound to it, so a
/// handler's async work starts, and resumes after every await, on the connection's own queue:
/// no hop to the global pool and back (ARCHITECTURE.md measured that hop at ~25%); and the
/// `Poller` that watches its connections' sockets.
final class EventLoop: Sendable {
    let queue: DispatchQueue
    let executor: QueueExecutor
    let poller: Poller
    /// Its place among the server's loops (the shard its requests' metrics go to).
    let index: Int
    private let connections = ConnectionRegistry()
    /// Dispatch sources are not Sendable; the mutex makes handing this one around safe.
    private let sweepTimer: Mutex<(any DispatchSourceTimer)?>

    init(queue: DispatchQueue, index: Int, sweepInterval: Double) {
        self.queue = queue
        self.index = index
        executor = QueueExecutor(queue: queue)
        poller = Poller(queue: queue, name: "\(queue.label).poller")
        let timer = DispatchSource.makeTimerSource(queue: queue)
        let interval = DispatchTimeInterval.milliseconds(Int(sweepInterval * 1000))
        timer.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(100))
        timer.setEventHandler { [connections] in
            let now = DispatchTime.now().uptimeNanoseconds
            for connection in connections.all { connection.sweep(now: now) }
        }
        timer.activate()
        sweepTimer = Mutex(timer)
    }

    func register(_ connection: Connection) {
        connections.insert(connection)
    }

    func unregister(_ connection: Connection) {
        connections.remove(connection)
    }

    /// Runs `body` on the queue for every connection of this loop.
    func forEachConnection(_ body: @escaping @Sendable (Connection) -> Void) {
        queue.async { [connections] in
            for connection in connections.all { body(connection) }
        }
    }

    func stop() {
        sweepTimer.withLock { $0?.cancel() }
        poller.stop()
    }
}

final class ConnectionRegistry: Sendable {
    private let members = Mutex<[ObjectIdentifier: Connection]>([:])

    var all: [Connection] { members.withLock { Array($0.values) } }

    func insert(_ connection: Connection) {
        members.withLock { $0[ObjectIdentifier(connection)] = connection }
    }

    func remove(_ connection: Connection) {
        members.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(connection)) }
    }
}

/// Runs jobs on one serial `DispatchQueue`.
final class QueueExecutor: TaskExecutor {
    let queue: DispatchQueue

    init(queue: DispatchQueue) {
        self.queue = queue
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}

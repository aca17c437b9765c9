import Foundation
import Postgres
import Synchronization

/// Keys that authenticated, known in memory, so that a key's next request needs no round trip
/// to PostgreSQL to say who is calling. Never longer than a revocation:
///
/// - Every change to `api_keys` (a revocation through the API or `heard keys revoke`, on any
///   instance, or by hand) notifies `KeyCache.channel` from the changing transaction (migration
///   0018's trigger); each instance listens (`PostgresListener`) and empties its cache when
///   the notification arrives, at the revoking transaction's commit.
/// - While the listener is not listening (before it starts, after its connection is lost,
///   until it is back), the cache is empty and takes nothing: every request asks PostgreSQL.
/// - A key is cached only if nothing emptied the cache while it was being looked up (the
///   `generation` read before the lookup is still current after it): a lookup that read the key
///   before a revocation committed, and is answered after the notification came, is not kept.
///   A lookup that starts after the notification came runs after the commit and sees it.
/// - Only what authenticated is cached, keyed by the key's id with the SHA-256 of its secret,
///   at most `capacity` keys; expiry (`Principal.expiresOn`) is judged on every request.
final class KeyCache: Sendable {
    static let channel = "heard_api_keys"

    struct Entry: Sendable {
        let secretHash: String
        let principal: Principal
    }

    private struct State {
        var entries: [UUID: Entry] = [:]
        /// Counts every emptying; a lookup may fill the cache only with the generation it began in.
        var generation: UInt64 = 0
        var listening = false
    }

    let capacity: Int
    private let state = Mutex(State())
    private let started = Atomic<Bool>(false)

    init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    /// Runs `start` (which starts the listener) the first time it is called.
    func startOnce(_ start: () -> Void) {
        guard !started.load(ordering: .relaxed), !started.exchange(true, ordering: .relaxed) else { return }
        start()
    }

    /// The principal of a cached key whose secret's hash is `secretHash`.
    func principal(keyID: UUID, secretHash: String) -> Principal? {
        guard let entry = state.withLock({ $0.entries[keyID] }), Self.equal(entry.secretHash, secretHash) else { return nil }
        return entry.principal
    }

    /// The generation to hand back to `store` after a lookup; nil while the cache takes nothing.
    func generation() -> UInt64? {
        state.withLock { $0.listening ? $0.generation : nil }
    }

    /// Keeps a key that authenticated in a lookup that began in `generation`, unless the cache
    /// was emptied since (or is full).
    func store(_ principal: Principal, secretHash: String, generation: UInt64) {
        state.withLock { state in
            guard state.listening, state.generation == generation, state.entries.count < capacity else { return }
            state.entries[principal.keyID] = Entry(secretHash: secretHash, principal: principal)
        }
    }

    /// What the listener heard: any notification, a loss or a new start empties the cache; it
    /// takes keys again only while listening.
    func handle(_ event: PostgresListener.Event) {
        state.withLock { state in
            state.entries = [:]
            state.generation &+= 1
            switch event {
            case .listening: state.listening = true
            case .lost: state.listening = false
            case .notification: break
            }
        }
    }

    /// Empties the cache (this instance revoked a key: its next request must not wait for the
    /// notification).
    func forgetAll() {
        state.withLock { state in
            state.entries = [:]
            state.generation &+= 1
        }
    }

    var count: Int { state.withLock { $0.entries.count } }
    var currentGeneration: UInt64 { state.withLock { $0.generation } }

    /// Compares two hashes in time that does not depend on where they differ.
    private static func equal(_ a: String, _ b: String) -> Bool {
        let a = Array(a.utf8), b = Array(b.utf8)
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

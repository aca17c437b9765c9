import Postgres

/// The content of a record in a canonical form, hashed (SHA-256): a retry with the same content
/// has the same hash whatever its key order, so a natural-key create tells a retry (200) from a
/// conflict (409). Each part is written as its UTF-8 length, ':', its bytes: length-prefixed, so
/// no two different lists join into the same text. An absent value is the one character U+0000,
/// which no present value can be (JSON strings here hold no NUL). Hashes are stored with their
/// records, so the form never changes (ContentHashTests pins it).
struct ContentHash {
    private var canonical: [UInt8] = []

    init(capacity: Int = 256) {
        canonical.reserveCapacity(capacity)
    }

    mutating func add(_ part: String?) {
        guard var part else { return canonical.append(contentsOf: [UInt8(ascii: "1"), UInt8(ascii: ":"), 0]) }
        part.withUTF8 { bytes in
            canonical.append(contentsOf: String(bytes.count).utf8)
            canonical.append(UInt8(ascii: ":"))
            canonical.append(contentsOf: bytes)
        }
    }

    var hexDigest: String { SHA256.hexDigest(canonical) }
}

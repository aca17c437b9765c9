import Postgres

/// A record's content in a canonical form, for its content hash: a retry with the same content
/// has the same hash, whatever its key order. Each part is written as its UTF-8 length, ':',
/// its bytes (length-prefixed, so no two different lists join into the same text); an absent
/// value is the one character U+0000, which no present value can be (JSON strings here hold no
/// NUL). Hashes are stored with the records, so the form never changes (ContentHashTests pins it).
struct CanonicalContent {
    private var bytes: [UInt8] = []

    init(capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
    }

    mutating func add(_ part: String?) {
        guard var part else { return bytes.append(contentsOf: [UInt8(ascii: "1"), UInt8(ascii: ":"), 0]) }
        part.withUTF8 { utf8 in
            bytes.append(contentsOf: String(utf8.count).utf8)
            bytes.append(UInt8(ascii: ":"))
            bytes.append(contentsOf: utf8)
        }
    }

    var sha256: String { SHA256.hexDigest(bytes) }
}

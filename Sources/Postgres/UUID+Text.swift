import Foundation

extension UUID {
    /// The canonical lower-case text of the id (`8-4-4-4-12` hex digits), as PostgreSQL writes
    /// it and Heard shows ids everywhere. Written directly: Foundation's `uuidString` is upper
    /// case and goes through `sprintf` (with parsing, 3% of a request's CPU).
    public var lowercased: String {
        withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { out in
                var at = 0
                for (index, byte) in bytes.enumerated() {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        out[at] = UInt8(ascii: "-")
                        at += 1
                    }
                    out[at] = UUID.hexDigits[Int(byte >> 4)]
                    out[at + 1] = UUID.hexDigits[Int(byte & 0x0f)]
                    at += 2
                }
                return at
            }
        }
    }

    /// Parses the canonical text (`8-4-4-4-12` hex digits, either case), as PostgreSQL sends a
    /// `uuid`; nil for anything else.
    public init?(canonicalText text: String) {
        let parsed = text.utf8.withContiguousStorageIfAvailable(UUID.parseCanonical) ?? UUID.parseCanonical(Array(text.utf8))
        guard let parsed else { return nil }
        self = parsed
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    private static func parseCanonical<Bytes: RandomAccessCollection<UInt8>>(_ text: Bytes) -> UUID? where Bytes.Index == Int {
        guard text.count == 36 else { return nil }
        func nibble(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var bytes = [UInt8](repeating: 0, count: 16)
        var position = text.startIndex
        for index in 0..<16 {
            if index == 4 || index == 6 || index == 8 || index == 10 {
                guard text[position] == UInt8(ascii: "-") else { return nil }
                position += 1
            }
            guard let high = nibble(text[position]), let low = nibble(text[position + 1]) else { return nil }
            bytes[index] = high << 4 | low
            position += 2
        }
        return UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                           bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
    }
}

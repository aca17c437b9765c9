import Foundation
import Postgres

/// The text of an API key: `heard_<id>_<secret>`, where the id (32 hex digits) names the key and
/// the secret (43 characters, 256 random bits) proves it. Only a SHA-256 of the secret is stored;
/// the secret is shown once, when the key is made.
public struct APIKeySecret: Sendable {
    public let id: UUID
    public let secret: String

    public static let prefix = "heard_"

    /// A new key with a fresh random secret.
    public static func generate() -> APIKeySecret {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8]()
        for _ in 0..<4 {
            withUnsafeBytes(of: generator.next() as UInt64) { bytes.append(contentsOf: $0) }
        }
        let secret = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return APIKeySecret(id: UUID(), secret: secret)
    }

    /// Parses the text a client sent; nil when it is not shaped like a Heard key.
    public init?(text: String) {
        // Read as bytes: every request's key is parsed, and String's character views cost a
        // grapheme scan each.
        let bytes = Array(text.utf8)
        let prefix = Array(Self.prefix.utf8)
        guard bytes.count == prefix.count + 32 + 1 + 43, bytes.starts(with: prefix), bytes[prefix.count + 32] == UInt8(ascii: "_") else {
            return nil
        }
        let secret = bytes[(prefix.count + 33)...]
        guard secret.allSatisfy({ $0.isBase64URL }), let id = UUID(hexDigits: bytes[prefix.count..<(prefix.count + 32)]) else { return nil }
        self.id = id
        self.secret = String(decoding: secret, as: UTF8.self)
    }

    private init(id: UUID, secret: String) {
        self.id = id
        self.secret = secret
    }

    /// The full key, as given to its holder.
    public var text: String {
        Self.prefix + id.lowercased.replacingOccurrences(of: "-", with: "") + "_" + secret
    }

    /// What is stored and compared: SHA-256 of the secret, in hex.
    public var secretHash: String { SHA256.hexDigest(Array(secret.utf8)) }
}

private extension UInt8 {
    var isBase64URL: Bool {
        switch self {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default: false
        }
    }
}

extension UUID {
    /// From 32 hex digits without dashes (lower case).
    init?(hexDigits: String) {
        self.init(hexDigits: Array(hexDigits.utf8)[...])
    }

    /// From 32 hex digits without dashes (lower case), as bytes.
    init?(hexDigits digits: ArraySlice<UInt8>) {
        guard digits.count == 32 else { return nil }
        func value(_ digit: UInt8) -> UInt8? {
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
            default: nil
            }
        }
        var bytes = [UInt8](repeating: 0, count: 16)
        var index = digits.startIndex
        for position in 0..<16 {
            guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
            bytes[position] = high << 4 | low
            index += 2
        }
        self.init(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                         bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
    }
}

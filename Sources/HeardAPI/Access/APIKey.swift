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
        guard text.hasPrefix(Self.prefix), text.utf8.count == Self.prefix.utf8.count + 32 + 1 + 43 else { return nil }
        let body = text.dropFirst(Self.prefix.count)
        let idHex = body.prefix(32)
        guard body.dropFirst(32).first == "_" else { return nil }
        let secret = String(body.dropFirst(33))
        guard secret.utf8.allSatisfy({ $0.isBase64URL }), let id = UUID(hexDigits: String(idHex)) else { return nil }
        self.id = id
        self.secret = secret
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
    /// From 32 hex digits without dashes.
    init?(hexDigits: String) {
        guard hexDigits.utf8.count == 32, hexDigits.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else { return nil }
        let characters = Array(hexDigits)
        let dashed = String(characters[0..<8]) + "-" + String(characters[8..<12]) + "-" + String(characters[12..<16])
            + "-" + String(characters[16..<20]) + "-" + String(characters[20..<32])
        self.init(uuidString: dashed)
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// A set of client addresses: single addresses and CIDR ranges, IPv4 and IPv6
/// (`127.0.0.1, ::1, 10.0.0.0/8, fd00::/8`). An IPv4 address mapped into IPv6 matches as IPv4.
public struct AddressSet: Sendable, Equatable {
    private struct Range: Sendable, Equatable {
        var bytes: [UInt8]
        var prefixLength: Int
    }

    private var ranges: [Range] = []

    /// Loopback only: `127.0.0.0/8` and `::1`.
    public static let loopback = AddressSet(ranges: [Range(bytes: [127, 0, 0, 0], prefixLength: 8),
                                                     Range(bytes: Array(repeating: 0, count: 15) + [1], prefixLength: 128)])

    private init(ranges: [Range]) {
        self.ranges = ranges
    }

    /// From a comma-separated list; nil when an element is not an address or a CIDR range.
    public init?(list: String) {
        for element in list.split(separator: ",") {
            let text = element.trimmingOWS()
            if text.isEmpty { continue }
            let parts = text.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2, let bytes = Self.bytes(of: String(parts[0])) else { return nil }
            var prefixLength = bytes.count * 8
            if parts.count == 2 {
                guard let length = Int(parts[1]), (0...bytes.count * 8).contains(length) else { return nil }
                prefixLength = length
            }
            ranges.append(Range(bytes: bytes, prefixLength: prefixLength))
        }
    }

    public var isEmpty: Bool { ranges.isEmpty }

    public func contains(_ address: String) -> Bool {
        guard let bytes = Self.bytes(of: address) else { return false }
        return ranges.contains { range in
            guard range.bytes.count == bytes.count else { return false }
            var remaining = range.prefixLength
            for index in bytes.indices where remaining > 0 {
                let bits = min(8, remaining)
                let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
                if bytes[index] & mask != range.bytes[index] & mask { return false }
                remaining -= bits
            }
            return true
        }
    }

    /// 4 bytes for IPv4 (and IPv4 mapped into IPv6), 16 for IPv6; nil for anything else.
    static func bytes(of text: String) -> [UInt8]? {
        var ipv4 = in_addr()
        if inet_pton(AF_INET, text, &ipv4) == 1 {
            return withUnsafeBytes(of: &ipv4) { Array($0) }
        }
        var ipv6 = in6_addr()
        guard inet_pton(AF_INET6, text, &ipv6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &ipv6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF { return Array(bytes[12...]) }
        return bytes
    }
}

/// A PostgreSQL type, identified by its OID (`pg_type.oid`).
public struct PostgresDataType: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ oid: UInt32) { self.rawValue = oid }

    /// Lets the server infer the type from the statement.
    public static let unspecified = Self(0)
    public static let bool = Self(16)
    public static let bytea = Self(17)
    public static let char = Self(18)
    public static let name = Self(19)
    public static let int8 = Self(20)
    public static let int2 = Self(21)
    public static let int4 = Self(23)
    public static let text = Self(25)
    public static let oid = Self(26)
    public static let json = Self(114)
    public static let float4 = Self(700)
    public static let float8 = Self(701)
    public static let unknown = Self(705)
    public static let boolArray = Self(1000)
    public static let int2Array = Self(1005)
    public static let int4Array = Self(1007)
    public static let textArray = Self(1009)
    public static let varcharArray = Self(1015)
    public static let int8Array = Self(1016)
    public static let float8Array = Self(1022)
    public static let bpchar = Self(1042)
    public static let varchar = Self(1043)
    public static let date = Self(1082)
    public static let timestamp = Self(1114)
    public static let timestamptz = Self(1184)
    public static let timestamptzArray = Self(1185)
    public static let numeric = Self(1700)
    public static let uuid = Self(2950)
    public static let uuidArray = Self(2951)
    public static let jsonb = Self(3802)

    /// Types created by `CREATE TYPE` (enums, composites) get OIDs from this value up.
    var isUserDefined: Bool { rawValue >= 16384 }

    private static let names: [UInt32: String] = [
        0: "unspecified", 16: "bool", 17: "bytea", 18: "char", 19: "name", 20: "int8",
        21: "int2", 23: "int4", 25: "text", 26: "oid", 114: "json", 700: "float4",
        701: "float8", 705: "unknown", 1000: "bool[]", 1005: "int2[]", 1007: "int4[]",
        1009: "text[]", 1015: "varchar[]", 1016: "int8[]", 1022: "float8[]", 1042: "bpchar",
        1043: "varchar", 1082: "date", 1114: "timestamp", 1184: "timestamptz", 1185: "timestamptz[]",
        1700: "numeric", 2950: "uuid", 2951: "uuid[]", 3802: "jsonb",
    ]

    /// `text (oid 25)`, or just `oid 16390` for types this module does not name.
    public var description: String {
        if let name = Self.names[rawValue] { return "\(name) (oid \(rawValue))" }
        return "oid \(rawValue)"
    }
}

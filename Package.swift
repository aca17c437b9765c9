// swift-tools-version:6.0
// Heard: no package dependencies. The toolchain (Foundation, Dispatch, XCTest) and the
// system library libpq are all it uses. See ARCHITECTURE.md for the layering.
import PackageDescription

let package = Package(
    name: "heard",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "heard", targets: ["heard"]),
    ],
    targets: [
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        // HTTP/1.1 on Dispatch. Knows nothing of the domain.
        .target(name: "HTTPServer"),
        // libpq, pooling, transactions, migrations. Knows nothing of the domain.
        .target(name: "Postgres", dependencies: ["CLibPQ"]),
        // The domain: one folder per area.
        .target(name: "HeardAPI", dependencies: ["HTTPServer", "Postgres"]),
        .executableTarget(name: "heard", dependencies: ["HeardAPI", "HTTPServer", "Postgres"]),
        // What the test targets share: a raw-socket client, scratch databases, the built binary.
        .target(name: "HeardTesting", dependencies: ["HTTPServer", "Postgres", "HeardAPI"], path: "Tests/HeardTesting"),
        .testTarget(name: "HTTPServerTests", dependencies: ["HTTPServer", "HeardTesting"]),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres"]),
        .testTarget(name: "HeardAPITests", dependencies: ["HeardAPI", "HTTPServer", "Postgres", "HeardTesting"]),
    ],
    swiftLanguageModes: [.v6]
)

// swift-tools-version:6.0
// Heard: no package dependencies. The toolchain (Foundation, Dispatch, XCTest) and the
// system libraries (libpq; epoll from the C library) are all it uses. See ARCHITECTURE.md for the layering.
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
        // epoll and eventfd, for the HTTP server's event loops (Linux).
        .systemLibrary(name: "CEpoll"),
        // Value types every layer uses: CalendarDate, Timestamp text, SHA256. Knows nothing of
        // the domain, HTTP or PostgreSQL.
        .target(name: "HeardCore"),
        // HTTP/1.1 on Dispatch. Knows nothing of the domain.
        .target(name: "HTTPServer", dependencies: ["CEpoll"]),
        // libpq, pooling, transactions, migrations. Knows nothing of the domain.
        .target(name: "Postgres", dependencies: ["CLibPQ", "HeardCore"]),
        // A private PostgreSQL cluster (initdb, pg_ctl) for local runs and tests.
        .target(name: "EmbeddedPostgres", dependencies: ["Postgres"]),
        // The domain: one folder per area.
        .target(name: "HeardAPI", dependencies: ["HeardCore", "HTTPServer", "Postgres"]),
        .executableTarget(name: "heard", dependencies: ["HeardAPI", "HTTPServer", "Postgres", "EmbeddedPostgres"]),
        // What the test targets share: a raw-socket client, scratch databases, the built binary.
        .target(name: "HeardTesting", dependencies: ["HTTPServer", "Postgres", "HeardAPI"], path: "Tests/HeardTesting"),
        .testTarget(name: "HTTPServerTests", dependencies: ["HTTPServer", "HeardTesting"]),
        .testTarget(name: "HeardCoreTests", dependencies: ["HeardCore"]),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres", "EmbeddedPostgres"]),
        .testTarget(name: "HeardAPITests", dependencies: ["HeardAPI", "HTTPServer", "Postgres", "EmbeddedPostgres", "HeardTesting"]),
    ],
    swiftLanguageModes: [.v6]
)

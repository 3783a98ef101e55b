// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "meshca",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "meshca", targets: ["meshca"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        // The CA as values: SPIFFE IDs, CSR checks, certificate profile, signing. No I/O, no clock.
        .target(
            name: "MeshCACore",
            dependencies: [
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        // The system libsqlite3 (apt: libsqlite3-dev).
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // The ledger's schema: the numbered SQL files in Migrations/, embedded into the binary.
        // Add one `.embedInCode` line per new file; a ledger test fails when one is forgotten.
        .target(
            name: "MeshCAMigrations",
            path: "Migrations",
            exclude: ["README.md"],
            resources: [
                .embedInCode("0001_create_ledger.sql")
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "MeshCALedger",
            dependencies: ["CSQLite", "MeshCAMigrations"],
            swiftSettings: swiftSettings
        ),
        // Composition: the CA's state directory, the issuance pipeline (core -> ledger), credential files.
        .target(
            name: "MeshCADaemon",
            dependencies: [
                "MeshCACore", "MeshCALedger",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "meshca",
            dependencies: [
                "MeshCACore", "MeshCALedger", "MeshCADaemon",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        // Helpers for tests only: temporary directories, running the built binary and `openssl`.
        .target(name: "MeshCATestSupport", swiftSettings: swiftSettings),
        .testTarget(
            name: "MeshCACoreTests",
            dependencies: [
                "MeshCACore",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MeshCALedgerTests",
            dependencies: ["MeshCALedger", "MeshCAMigrations", "MeshCATestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MeshCADaemonTests",
            dependencies: [
                "MeshCADaemon", "MeshCACore", "MeshCALedger", "MeshCATestSupport",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MeshCACLITests",
            dependencies: ["MeshCATestSupport"],
            swiftSettings: swiftSettings
        ),
    ]
)

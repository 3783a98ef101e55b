// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// `meshca` and `meshca-agent` export no symbols to the dynamic symbol table. `--static-swift-stdlib` links with
/// `--export-dynamic`, which put 56,000 symbols of every package there, and the Swift runtime's start-up (looking
/// for swift-backtrace beside the runtime) searched them all with `dladdr` in every process: 1.9 M of the
/// instructions `meshca --version` executed. Nothing looks these symbols up; symbol names stay in the symbol
/// table for debuggers and backtraces until `strip`.
let executableLinkerSettings: [LinkerSetting] = [
    .unsafeFlags(["-Xlinker", "--no-export-dynamic"], .when(platforms: [.linux]))
]

/// The commit in `meshca_build_info`: $MESHCA_BUILD_COMMIT, else the checkout's (with `-dirty` for uncommitted changes).
let buildCommit: String = {
    if let explicit = Context.environment["MESHCA_BUILD_COMMIT"], !explicit.isEmpty { return explicit }
    guard let git = Context.gitInformation else { return "unknown" }
    return String(git.currentCommit.prefix(12)) + (git.hasUncommittedChanges ? "-dirty" : "")
}().filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }

let package = Package(
    name: "meshca",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "meshca", targets: ["meshca"]),
        .executable(name: "meshca-agent", targets: ["meshca-agent"]),
        .executable(name: "meshca-bench", targets: ["MeshCABench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        // JWT keys fetched from the cluster (`jwks-url`): HTTPS with a CA bundle and a bearer token.
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        // The PostgreSQL ledger, for several `meshca serve` replicas sharing one database.
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        // The one shape of every target's error type: a closed list of stable codes and a sentence for a person.
        .target(name: "MeshCAErrors", swiftSettings: swiftSettings),
        // The platform's C library (glibc, musl or Darwin), chosen in one place for the files that make system calls.
        .target(name: "MeshCAPlatform", swiftSettings: swiftSettings),
        // The CA as values: SPIFFE IDs, CSR checks, certificate profile, signing. No I/O, no clock.
        .target(
            name: "MeshCACore",
            dependencies: [
                "MeshCAErrors",
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
                .embedInCode("0001_create_ledger.sql"),
                .embedInCode("0002_join_tokens_and_peers.sql"),
                .embedInCode("0003_event_chain.sql"),
                .embedInCode("0004_index_issuances_by_service_account.sql"),
                .embedInCode("0005_join_tokens_pinned_root.sql"),
                .embedInCode("0006_index_issuances_by_public_key.sql"),
                .embedInCode("postgres/0006_postgres_ledger.sql"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "MeshCALedger",
            dependencies: [
                "MeshCAPlatform", "CSQLite", "MeshCAMigrations", "MeshCAErrors",
                // SHA-256 for the event chain, Ed25519 (with PEM files) for signed checkpoints.
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The ledger in PostgreSQL (postgres-nio), shared by several `meshca serve` replicas: the same LedgerStore
        // as SQLiteLedger, its schema in Migrations/postgres/ (embedded into the binary).
        .target(
            name: "MeshCALedgerPostgres",
            dependencies: [
                "MeshCALedger", "MeshCAMigrations", "MeshCAErrors", "MeshCAIO",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // gRPC: Istio's CA API and the SPIFFE Workload API (generated code committed in Generated/,
        // regenerated by scripts/gen-proto.sh), the TLS listener, and the client used by the CLI and agent.
        .target(
            name: "MeshCATransport",
            dependencies: [
                "MeshCAPlatform", "MeshCACore", "MeshCAIO", "MeshCAErrors",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            exclude: ["Protos"],
            swiftSettings: swiftSettings
        ),
        // The commit being built, for the build-info metric (a C define can carry a string; Swift's cannot).
        .target(name: "CMeshCABuildInfo", cSettings: [.define("MESHCA_BUILD_COMMIT", to: "\"\(buildCommit)\"")]),
        // Files and small HTTP, shared by the daemon and the agent: atomic writes, the credential directory
        // (`..data` swaps), the GET-only route server and client. FoundationEssentials only, no CA, no ledger.
        .target(
            name: "MeshCAIO",
            dependencies: [
                "MeshCAPlatform", "CMeshCABuildInfo", "MeshCAErrors",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The settings of `meshca serve` and `meshca agent`: YAML file, environment and flags, every problem at once.
        .target(
            name: "MeshCASettings",
            dependencies: ["MeshCACore", "MeshCAIO", "MeshCAErrors", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        // The standard PKCS#11 header (p11-kit's, apt: libp11-kit-dev) and a dlopen loader; nothing is linked from p11-kit.
        .target(name: "CPKCS11", linkerSettings: [.linkedLibrary("dl")]),
        // CA keys in a hardware security module over PKCS#11 (RFC 7512 URIs, a session pool, keys generated in the token).
        .target(
            name: "MeshCAPKCS11",
            dependencies: [
                "MeshCAPlatform", "CPKCS11", "MeshCACore", "MeshCAErrors",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        // Composition: the CA's state directory, the issuance pipeline (core -> ledger), credential files.
        .target(
            name: "MeshCADaemon",
            dependencies: [
                "MeshCAPlatform", "MeshCACore", "MeshCAIO", "MeshCASettings", "MeshCALedger", "MeshCALedgerPostgres", "MeshCATransport", "MeshCAPKCS11",
                // `meshca version`: the SQLite library version and the newest ledger migration.
                "CSQLite", "MeshCAMigrations",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "meshca",
            dependencies: [
                // Argument parsing and rendering only: every use case is in MeshCADaemon (UseCases/).
                "MeshCADaemon", "MeshCAHarness", "MeshCAAgent",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings,
            linkerSettings: executableLinkerSettings
        ),
        // `meshca agent`: keeps a workload's files fresh and serves the SPIFFE Workload API on a Unix socket.
        // It must not depend on MeshCADaemon (the CA, ledger, JWT): `meshca-agent` links only this. Its --config
        // file is read by MeshCASettings, as `meshca serve`'s is.
        .target(
            name: "MeshCAAgent",
            dependencies: [
                "MeshCAPlatform", "MeshCACore", "MeshCATransport", "MeshCAIO", "MeshCASettings", "MeshCAErrors",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        // `meshca-agent`: the same agent as `meshca agent` in a small executable for sidecars (no CA, ledger,
        // SQLite, JWT or OpenSSL harness), so each pod pays for less memory.
        .executableTarget(
            name: "meshca-agent",
            dependencies: [
                "MeshCAAgent",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings,
            linkerSettings: executableLinkerSettings
        ),
        // The issuance benchmark: drives a real `meshca serve` process over gRPC/TLS (scripts/bench.sh).
        .executableTarget(
            name: "MeshCABench",
            dependencies: [
                "MeshCAPlatform", "MeshCACore", "MeshCAErrors", "MeshCALedger", "MeshCATransport", "MeshCATestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: swiftSettings
        ),
        // The system OpenSSL (apt: libssl-dev for the headers), used only by the handshake harness as an independent
        // TLS stack; opened with dlopen on first use, so no other command loads it (see include/COpenSSL.h).
        .target(name: "COpenSSL", linkerSettings: [.linkedLibrary("dl")]),
        // `meshca handshake`: mTLS between two workloads' credential files on system OpenSSL, with explanations.
        .target(
            name: "MeshCAHarness",
            dependencies: [
                "MeshCAPlatform", "COpenSSL", "MeshCACore", "MeshCAIO", "MeshCAErrors",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        // The test kit, for tests and the benchmark only: temporary directories, running the built binaries and
        // `openssl`, a controllable clock, waiting on a condition, a test PKI, an in-memory ledger, and the daemon
        // and the agent run in-process (on a test clock when a test wants one).
        .target(
            name: "MeshCATestSupport",
            dependencies: [
                "MeshCAPlatform", "MeshCACore", "MeshCAIO", "MeshCALedger", "MeshCATransport", "MeshCADaemon", "MeshCAAgent",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MeshCACoreTests",
            dependencies: [
                "MeshCACore", "MeshCATestSupport",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MeshCALedgerTests",
            dependencies: [
                "MeshCALedger", "MeshCALedgerPostgres", "MeshCAMigrations", "MeshCATestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MeshCADaemonTests",
            dependencies: [
                "MeshCADaemon", "MeshCAAgent", "MeshCACore", "MeshCAIO", "MeshCALedger", "MeshCATestSupport", "MeshCAErrors",
                "MeshCATransport", "MeshCAHarness", "MeshCAPKCS11",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MeshCAIntegrationTests",
            dependencies: [
                "MeshCACore", "MeshCADaemon", "MeshCAAgent", "MeshCATransport", "MeshCATestSupport",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            exclude: ["interop"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MeshCAAgentTests",
            dependencies: [
                "MeshCAAgent", "MeshCACore", "MeshCAIO", "MeshCATransport", "MeshCATestSupport",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["interop"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MeshCAHarnessTests",
            dependencies: [
                "MeshCAHarness", "MeshCACore", "MeshCAIO", "MeshCADaemon", "MeshCATestSupport",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MeshCAPKCS11Tests",
            dependencies: [
                "MeshCAPKCS11", "MeshCADaemon", "MeshCACore", "MeshCALedger", "MeshCATransport", "MeshCATestSupport", "CPKCS11",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
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

// Fuzzing (README "Fuzzing", scripts/fuzz.sh): MeshCAFuzzEntries (Fuzz/Entries) has one function per parser that takes
// bytes from the network or from disk; MeshCAFuzzReplayTests feeds it every file under Fuzz/Corpus and Fuzz/Crashes
// in the normal build. The libFuzzer executables `fuzz-<target>` exist only with MESHCA_FUZZ=1, so normal builds
// and CI never build them.
package.targets += [
    .target(
        name: "MeshCAFuzzEntries",
        dependencies: [
            "MeshCACore", "MeshCADaemon", "MeshCATransport",
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "SwiftASN1", package: "swift-asn1"),
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ],
        path: "Fuzz/Entries",
        swiftSettings: swiftSettings
    ),
    .testTarget(name: "MeshCAFuzzReplayTests", dependencies: ["MeshCAFuzzEntries"], swiftSettings: swiftSettings),
]
if Context.environment["MESHCA_FUZZ"] == "1" {
    // Only the fuzz executables and what they use, so that one `swift build` makes them all.
    var needed: Set<String> = []
    var queue = ["MeshCAFuzzEntries"]
    while let name = queue.popLast() {
        guard needed.insert(name).inserted, let target = package.targets.first(where: { $0.name == name }) else { continue }
        for case .targetItem(name: let name, condition: _) in target.dependencies { queue.append(name) }
        for case .byNameItem(name: let name, condition: _) in target.dependencies { queue.append(name) }
    }
    package.products.removeAll { $0 is Product.Executable }
    package.targets.removeAll { !needed.contains($0.name) }
    for name in ["csr", "chain", "crl", "token", "jwt", "request", "config"] {
        package.products.append(.executable(name: "fuzz-\(name)", targets: ["fuzz-\(name)"]))
        package.targets.append(
            .executableTarget(
                name: "fuzz-\(name)", dependencies: ["MeshCAFuzzEntries"], path: "Fuzz/Targets/fuzz-\(name)",
                swiftSettings: swiftSettings + [.unsafeFlags(["-parse-as-library"])]))
    }
}

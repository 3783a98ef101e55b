import Foundation
import Logging
import MeshCALedger
import MeshCALedgerPostgres
import MeshCATestSupport
import Testing

/// The ledger engines the tests of `LedgerStore` behaviour run against: SQLite always, PostgreSQL when its
/// server binaries are installed (a real server from `PostgreSQLServer`, a fresh database per test).
enum LedgerEngine: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case sqlite
    case postgres

    /// The engines available here.
    static var all: [LedgerEngine] { PostgreSQLServer.isAvailable ? [.sqlite, .postgres] : [.sqlite] }

    var testDescription: String { rawValue }
}

/// Opens fresh, empty ledgers of one engine, all on the same database (several replicas, or a daemon and a CLI),
/// runs `body` with them, and closes them.
func withLedgers<Result>(
    _ engine: LedgerEngine, count: Int, checkpointSigner: (any CheckpointSigner)? = nil, checkpointInterval: Int = 1000,
    _ body: ([any LedgerStore]) async throws -> Result
) async throws -> Result {
    switch engine {
    case .sqlite:
        return try await TemporaryDirectory.with("ledger") { directory in
            let configuration = SQLiteLedger.Configuration(
                checkpointSigner: checkpointSigner, checkpointInterval: checkpointInterval)
            let ledgers = try (0..<count).map { _ in
                try SQLiteLedger(path: directory.file("ledger.db"), configuration: configuration)
            }
            return try await body(ledgers)
        }
    case .postgres:
        let server = try await PostgreSQLServer.shared
        let configuration = try postgresConfiguration(server, database: try await server.createDatabase())
        var configured = configuration
        configured.checkpointInterval = checkpointInterval
        var ledgers: [PostgresLedger] = []
        do {
            for _ in 0..<count {
                ledgers.append(
                    try await PostgresLedger.open(configured, checkpointSigner: checkpointSigner, logger: testLogger))
            }
            let result = try await body(ledgers)
            for ledger in ledgers { await ledger.close() }
            return result
        } catch {
            for ledger in ledgers { await ledger.close() }
            throw error
        }
    }
}

/// One fresh ledger of `engine`.
func withLedger<Result>(
    _ engine: LedgerEngine, checkpointSigner: (any CheckpointSigner)? = nil, checkpointInterval: Int = 1000,
    _ body: (any LedgerStore) async throws -> Result
) async throws -> Result {
    try await withLedgers(engine, count: 1, checkpointSigner: checkpointSigner, checkpointInterval: checkpointInterval) {
        try await body($0[0])
    }
}

/// The configuration of a ledger in `database` on `server`, as the superuser over plain TCP.
func postgresConfiguration(_ server: PostgreSQLServer, database: String) throws -> PostgresLedgerConfiguration {
    try PostgresLedgerConfiguration(url: server.url(database: database), passwordFile: nil, environment: [:])
}

/// A logger that drops everything (postgres-nio's background messages).
let testLogger = Logger(label: "meshca.ledger.tests") { _ in SwiftLogNoOpLogHandler() }

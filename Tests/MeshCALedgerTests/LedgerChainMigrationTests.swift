import Foundation
import MeshCALedger
import MeshCAMigrations
import MeshCATestSupport
import Synchronization
import Testing

@Suite("Bringing ledgers from before the chain onto it", .timeLimit(.minutes(1)))
struct LedgerChainMigrationTests {
    /// A version-2 ledger with issuances (one revoked), a rejection and two tokens (one used, one revoked),
    /// written by the version-2 schema, so no events exist.
    private func versionTwoLedger(at path: String) async throws {
        let v2 = try SQLiteLedger(path: path, configuration: .init(), migrations: Array(LedgerMigrations.all.prefix(2)))
        #expect(try v2.schemaVersion == 2)
        let used = JoinTokenRecord.fixture(id: "aa01", createdAt: at(0), maxUses: 3)
        try await v2.createToken(used)
        try await v2.createToken(.fixture(id: "aa02", createdAt: at(5)))
        try await v2.record(.fixture(serial: "0b01", issuedAt: at(10)), consuming: used.use(at: at(10)))
        try await v2.record(
            .fixture(serial: "0b02", issuedAt: at(20), revokedAt: at(30), revocationReason: "keyCompromise"))
        try await v2.record(
            RejectionRecord(
                occurredAt: at(25), requester: "token:ci", authMethod: "token", requestedIdentity: "",
                reasonCode: "bad-csr",
                message: "The CSR signature does not verify."))
        #expect(try await v2.revokeToken(id: "aa02", at: at(40)))
    }

    static let expectedEvents = [
        "1 token-creation aa01", "2 token-creation aa02", "3 issuance 0b01", "4 token-use aa01", "5 issuance 0b02",
        "6 rejection 1", "7 revocation 0b02", "8 token-revocation aa02",
    ]

    @Test("Migrating a version-2 ledger chains its existing rows in the order they happened, and it verifies")
    func chainsExistingRows() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let path = directory.file("ledger.db")
            try await versionTwoLedger(at: path)

            let ledger = try SQLiteLedger(path: path)
            #expect(try ledger.schemaVersion == LedgerMigrations.latestVersion)
            let raw = try RawDatabase(path: path)
            #expect(
                try raw.strings("SELECT seq || ' ' || kind || ' ' || subject FROM ledger_events ORDER BY seq")
                    == Self.expectedEvents)
            #expect(try raw.integers("SELECT count(*) FROM ledger_events WHERE hash IS NULL") == [0])
            let report = try await ledger.verifyChain()
            #expect(report.isIntact, "\(report.problems)")
            #expect(report.eventCount == 8)

            // Chaining ran once: reopening changes no hash, and new writes continue the chain.
            let hashes = try raw.strings("SELECT hex(hash) FROM ledger_events ORDER BY seq")
            let reopened = try SQLiteLedger(path: path)
            #expect(try raw.strings("SELECT hex(hash) FROM ledger_events ORDER BY seq") == hashes)
            try await reopened.record(.fixture(serial: "0b03", issuedAt: at(50)))
            #expect(try await reopened.verifyChain().eventCount == 9)
            #expect(try await reopened.verifyChain().isIntact)

            // Rows that predate the chain are protected from now on.
            try raw.execute("UPDATE issuances SET requester = 'local:mallory' WHERE serial = '0b01'")
            let problem = try #require(try await reopened.verifyChain().firstProblem)
            #expect(problem.kind == .altered)
            #expect(problem.sequence == 3)
            #expect(problem.subject == "0b01")
        }
    }

    @Test("The first open after the upgrade reports its chaining progress, ending at every event; later opens report nothing")
    func backfillProgress() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let path = directory.file("ledger.db")
            try await versionTwoLedger(at: path)
            let reports = Mutex<[String]>([])
            var configuration = SQLiteLedger.Configuration()
            configuration.backfillProgress = { done, total in reports.withLock { $0.append("\(done)/\(total)") } }
            _ = try SQLiteLedger(path: path, configuration: configuration)
            #expect(reports.withLock { $0 } == ["0/8", "8/8"])
            reports.withLock { $0 = [] }
            _ = try SQLiteLedger(path: path, configuration: configuration)
            #expect(reports.withLock { $0 }.isEmpty)
        }
    }

    @Test("Placeholders left by a migration that committed before chaining are chained on the next open")
    func interruptedChaining() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let path = directory.file("ledger.db")
            try await versionTwoLedger(at: path)
            // What a crash right after the migration's COMMIT leaves behind.
            let migration = try #require(LedgerMigrations.all.first { $0.version == 3 })
            let raw = try RawDatabase(path: path)
            try raw.execute(
                "BEGIN; \(migration.sql); INSERT INTO schema_migrations VALUES (3, '\(migration.fileName)', 0); COMMIT;"
            )
            #expect(try raw.integers("SELECT count(*) FROM ledger_events WHERE hash IS NULL") == [8])

            let ledger = try SQLiteLedger(path: path)
            #expect(try raw.integers("SELECT count(*) FROM ledger_events WHERE hash IS NULL") == [0])
            #expect(
                try raw.strings("SELECT seq || ' ' || kind || ' ' || subject FROM ledger_events ORDER BY seq")
                    == Self.expectedEvents)
            #expect(try await ledger.verifyChain().isIntact)
        }
    }

    @Test("An event whose hash was cleared is reported, not taken for an unfinished migration")
    func clearedHash() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let fixture = try await SixIssuances(in: directory)
            try fixture.raw.execute("UPDATE ledger_events SET hash = NULL WHERE seq = 3")
            _ = try SQLiteLedger(path: fixture.path)

            let problem = try await fixture.firstProblem()
            #expect(problem.sequence == 3)
            #expect(problem.kind == .altered)
        }
    }
}

import Foundation
import MeshCALedger
import MeshCALedgerPostgres
import MeshCATestSupport
import Testing

@Suite("The chain under concurrent writers", .timeLimit(.minutes(2)))
struct LedgerChainConcurrencyTests {
    @Test(
        "Concurrent group-committed issuances and rejections produce one unbroken chain, one event per row",
        arguments: LedgerEngine.all)
    func groupCommit(_ engine: LedgerEngine) async throws {
        try await withLedger(engine, checkpointSigner: InMemoryCheckpointSigner(), checkpointInterval: 25) { ledger async throws in
            let write: @Sendable (Int) async throws -> Void = { index in
                try await ledger.record(.fixture(serial: String(format: "0e%04x", index), issuedAt: at(Double(index))))
            }
            let batched =
                if let sqlite = ledger as? SQLiteLedger { await inOneBatch(sqlite, 40, write) } else {
                    await concurrently(40, write)
                }
            // A duplicate inside a later batch fails alone, without leaving an event behind.
            let mixed = await concurrently(80) { index in
                if index % 4 == 0 {
                    try await ledger.record(
                        RejectionRecord(
                            occurredAt: at(Double(index)), requester: "token:\(index)", authMethod: "token",
                            requestedIdentity: "", reasonCode: "bad-csr", message: "no"))
                } else {
                    try await ledger.record(.fixture(serial: String(format: "0f%04x", index == 1 ? 2 : index)))
                }
            }
            #expect(batched.allSatisfy { $0.succeeded }, "\(batched.failures)")
            #expect(
                mixed.filter { $0.succeeded }.count == 79, "writes 1 and 2 record the same serial; one of them fails")
            let commits = (ledger as? SQLiteLedger)?.commitCount ?? (ledger as? PostgresLedger)?.groupCommitCount ?? 0
            #expect(commits < 120)

            let rows =
                try await ledger.allIssuances().count + (try await ledger.rejections(since: nil, limit: nil).count)
            let report = try await ledger.verifyChain()
            #expect(report.isIntact, "\(report.problems)")
            #expect(report.eventCount == Int64(rows))
            #expect(report.checkpoints.map(\.eventCount) == Array(stride(from: 25, through: Int64(rows), by: 25)))
        }
    }

    @Test(
        "Two connections to one ledger, as two processes would have, append to one chain without forking it",
        arguments: LedgerEngine.all)
    func twoConnections(_ engine: LedgerEngine) async throws {
        try await withLedgers(engine, count: 2) { ledgers async throws in
            let (daemon, cli) = (ledgers[0], ledgers[1])
            let outcomes = await concurrently(60) { index in
                let ledger = index.isMultiple(of: 2) ? daemon : cli
                if index % 10 == 3 {
                    try await ledger.createToken(.fixture(id: String(format: "%04x", index)))
                } else {
                    try await ledger.record(.fixture(serial: String(format: "0d%04x", index)))
                }
            }
            #expect(outcomes.allSatisfy { $0.succeeded }, "\(outcomes.failures)")
            let report = try await cli.verifyChain()
            #expect(report.isIntact, "\(report.problems)")
            #expect(report.eventCount == 60)
        }
    }
}

import Foundation
import MeshCALedger
import MeshCATestSupport
import Testing

@Suite("Signed checkpoints of the chain", .timeLimit(.minutes(1)))
struct LedgerChainCheckpointTests {
    @Test("With a signer, a checkpoint is written every N events and each one verifies", arguments: LedgerEngine.all)
    func automatic(_ engine: LedgerEngine) async throws {
        let signer = InMemoryCheckpointSigner()
        try await withLedger(engine, checkpointSigner: signer, checkpointInterval: 4) { ledger async throws in
            for index in 1...9 { try await ledger.record(.fixture(serial: String(format: "0a%02x", index))) }

            let report = try await ledger.verifyChain()
            #expect(report.isIntact, "\(report.problems)")
            #expect(report.checkpoints.map(\.eventCount) == [4, 8])
            #expect(
                report.checkpoints.allSatisfy { $0.isSigned(by: signer.publicKey) && $0.keyID == signer.publicKey.id })
            #expect(report.eventsSinceLastCheckpoint == 1)
        }
    }

    @Test(
        "checkpoint() signs the head once, returns the same checkpoint while nothing changed, and needs a key",
        arguments: LedgerEngine.all)
    func onDemand(_ engine: LedgerEngine) async throws {
        let signer = InMemoryCheckpointSigner()
        try await withLedger(engine, checkpointSigner: signer) { ledger async throws in
            #expect(try await ledger.checkpoint() == nil, "an empty chain has nothing to sign")
            try await ledger.record(.fixture(serial: "0a01"))
            let first = try #require(try await ledger.checkpoint())
            #expect(try await ledger.checkpoint() == first)
            #expect(first.eventCount == 1)
            let text = String(decoding: first.signedMessage, as: UTF8.self)
            #expect(
                text
                    == "meshca-ledger-checkpoint-v1\nevents=1\nhead=\(first.headHash)\n"
                    + "created=\(Int64(first.createdAt.timeIntervalSince1970))\n"
            )
            #expect(signer.publicKey.isValidSignature(first.signature, for: first.signedMessage))
            #expect(try await ledger.verifyChain().checkpoints == [first])
        }
        try await withLedger(engine) { unsigned async throws in
            let error = try await #require(throws: LedgerError.self) { try await unsigned.checkpoint() }
            #expect(error.code == .ledgerKey)
            #expect(error.message.contains("no ledger key"))
        }
    }

    @Test("Cutting the chain's tail below a checkpoint is reported as the first missing event deleted")
    func truncatedTail() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let fixture = try await SixIssuances(in: directory, signer: InMemoryCheckpointSigner())
            try await fixture.ledger.checkpoint()
            try fixture.raw.execute(
                "DELETE FROM issuances WHERE serial IN ('0a05', '0a06'); DELETE FROM ledger_events WHERE seq >= 5")

            let problem = try await fixture.firstProblem()
            #expect(problem.kind == .deleted)
            #expect(problem.sequence == 5)
            #expect(problem.message.contains("Events #5 to #6 were deleted"), "\(problem.message)")
            #expect(problem.message.contains("the ledger ends at #4"))
        }
    }

    @Test("A checkpoint whose signature was tampered with is reported as a bad checkpoint")
    func forgedSignature() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let fixture = try await SixIssuances(in: directory, signer: InMemoryCheckpointSigner())
            try await fixture.ledger.checkpoint()
            try fixture.raw.execute("UPDATE ledger_checkpoints SET signature = randomblob(64)")

            let problem = try await fixture.firstProblem()
            #expect(problem.kind == .badCheckpoint)
            #expect(problem.sequence == 6)
            #expect(problem.message.contains("does not verify with the ledger key"), "\(problem.message)")
        }
    }

    @Test("A checkpoint signed by some other key is reported, naming both keys")
    func otherKey() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let signer = InMemoryCheckpointSigner()
            let forger = InMemoryCheckpointSigner()
            let fixture = try await SixIssuances(in: directory, signer: signer)
            try await fixture.ledger.checkpoint(signedBy: forger)

            let problem = try await fixture.firstProblem()
            #expect(problem.kind == .badCheckpoint)
            #expect(
                problem.message.contains(
                    "signed by key \(forger.publicKey.id), not by the ledger key \(signer.publicKey.id)"))
        }
    }

    @Test("Checkpoints that cannot be checked for want of a key make verification fail")
    func noKey() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let fixture = try await SixIssuances(in: directory)
            try await fixture.ledger.checkpoint(signedBy: InMemoryCheckpointSigner())

            let problem = try await fixture.firstProblem()
            #expect(problem.kind == .badCheckpoint)
            #expect(problem.message.contains("cannot be checked"))
        }
    }

    @Test("The ledger key file is created once with mode 0600, its public half beside it, and reloaded unchanged")
    func keyFile() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let path = FileCheckpointSigner.path(besideLedgerAt: directory.file("ledger.db"))
            #expect(path == directory.file("ledger-key.pem"))
            #expect(try FileCheckpointSigner.existingPublicKey(at: path) == nil)

            let created = try FileCheckpointSigner(path: path)
            let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
            #expect(mode == 0o600)
            let publicPEM = try String(contentsOfFile: FileCheckpointSigner.publicKeyPath(for: path), encoding: .utf8)
            #expect(try CheckpointPublicKey(pemRepresentation: publicPEM, source: "pub") == created.publicKey)
            #expect(try FileCheckpointSigner(path: path).publicKey == created.publicKey)
            #expect(try FileCheckpointSigner.existingPublicKey(at: path) == created.publicKey)

            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
            let error = try #require(throws: LedgerError.self) { try FileCheckpointSigner(path: path) }
            #expect(error.code == .ledgerKey)
            #expect(error.message.contains("chmod 600 \(path)"))
        }
    }
}

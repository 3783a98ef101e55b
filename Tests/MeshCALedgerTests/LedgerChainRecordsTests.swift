import Foundation
import MeshCALedger
import MeshCATestSupport
import Testing

@Suite("Every ledger write appends to the chain", .timeLimit(.minutes(1)))
struct LedgerChainRecordsTests {
    static let token = JoinTokenRecord.fixture(maxUses: 2)

    /// Events #1...#8: token-creation, token-use + issuance 0a01, rejection 1, issuance + revocation 0a02,
    /// token-revocation, root-change.
    private func withEveryKind(_ body: (SQLiteLedger, RawDatabase) async throws -> Void) async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let path = directory.file("ledger.db")
            let ledger = try SQLiteLedger(path: path)
            try await ledger.createToken(Self.token)
            var first = IssuanceRecord.fixture(serial: "0a01", requestedTTLSeconds: 600)
            first.peer = "ipv4:127.0.0.1:53412"
            try await ledger.record(first, consuming: Self.token.use(at: at(60)))
            try await ledger.record(
                RejectionRecord(
                    occurredAt: at(70), requester: "token:ci", authMethod: "token", requestedIdentity: "",
                    reasonCode: "bad-csr", message: "The CSR signature does not verify."))
            try await ledger.record(
                .fixture(
                    serial: "0a02", issuedAt: at(80), certificateDER: [], revokedAt: at(90),
                    revocationReason: "superseded"))
            #expect(try await ledger.revokeToken(id: Self.token.id, at: at(100)))
            try await ledger.appendEvent(kind: .rootChange, subject: "ab12", fields: [.text("prepare"), .integer(110)])
            try await body(ledger, try RawDatabase(path: path))
        }
    }

    @Test("A ledger with one of every kind of event verifies, with events in the order they were written")
    func everyKind() async throws {
        try await withEveryKind { ledger, raw in
            #expect(
                try raw.strings("SELECT seq || ' ' || kind || ' ' || subject FROM ledger_events ORDER BY seq") == [
                    "1 token-creation 3f9a0c12", "2 token-use 3f9a0c12", "3 issuance 0a01", "4 rejection 1",
                    "5 issuance 0a02", "6 revocation 0a02", "7 token-revocation 3f9a0c12", "8 root-change ab12",
                ])
            let report = try await ledger.verifyChain()
            #expect(report.isIntact, "\(report.problems)")
            #expect(report.eventCount == 8)
            #expect(
                report.headHash.uppercased()
                    == (try raw.strings("SELECT hex(hash) FROM ledger_events WHERE seq = 8")).first)
            #expect(report.checkpoints.isEmpty)
        }
    }

    @Test("Each stored hash is the documented SHA-256 over position, previous hash, kind, subject and content hash")
    func documentedHashes() async throws {
        try await withEveryKind { _, raw in
            var previous = [UInt8](repeating: 0, count: 32)
            let rows = try raw.strings(
                "SELECT seq || '|' || kind || '|' || subject || '|' || hex(content_sha256) || '|' || hex(prev_hash) "
                    + "|| '|' || hex(hash) FROM ledger_events ORDER BY seq")
            for row in rows {
                let parts = row.split(separator: "|").map(String.init)
                #expect(bytes(parts[4]) == previous, "prev_hash of #\(parts[0])")
                let hash = documentedHash(
                    seq: Int64(parts[0])!, previous: previous, kind: parts[1], subject: parts[2],
                    contentSHA256: bytes(parts[3]))
                #expect(bytes(parts[5]) == hash, "hash of #\(parts[0])")
                previous = hash
            }
            // Payload events store their encoded content, whose SHA-256 is the content hash.
            let payload = try raw.strings("SELECT hex(payload) FROM ledger_events WHERE seq = 8").first ?? ""
            #expect(bytes(payload) == LedgerChainField.encode([.text("prepare"), .integer(110)]))
            #expect(
                try raw.strings("SELECT count(*) FROM ledger_events WHERE kind = 'issuance' AND payload IS NOT NULL")
                    == ["0"])
        }
    }

    @Test("A write that fails appends no event, and the chain still verifies")
    func failedWritesAppendNothing() async throws {
        try await withEveryKind { ledger, raw throws in
            await #expect(throws: LedgerError.self) { try await ledger.record(.fixture(serial: "0a01")) }
            await #expect(throws: LedgerError.self) {
                try await ledger.record(.fixture(serial: "0a03"), consuming: Self.token.use(at: at(120)))
            }
            await #expect(throws: LedgerError.self) { try await ledger.createToken(Self.token) }
            #expect(try await ledger.revokeToken(id: Self.token.id, at: at(130)) == false)
            #expect(try raw.integers("SELECT count(*) FROM ledger_events") == [8])
            #expect(try await ledger.verifyChain().isIntact)
        }
    }

    /// An edit made behind the ledger's back, and the event verification must name.
    struct Edit: Sendable, CustomTestStringConvertible {
        let name: String
        let sql: String
        let sequence: Int64
        let eventKind: String
        let message: String
        var testDescription: String { name }
    }

    static let edits = [
        Edit(
            name: "certificate un-revoked",
            sql: "UPDATE issuances SET revoked_at = NULL, revocation_reason = NULL WHERE serial = '0a02'",
            sequence: 6, eventKind: "revocation", message: "now says revoked_at=NULL, revocation_reason=NULL"),
        Edit(
            name: "certificate revoked without a revocation event",
            sql: "UPDATE issuances SET revoked_at = 1 WHERE serial = '0a01'",
            sequence: 3, eventKind: "issuance", message: "no revocation event was ever recorded"),
        Edit(
            name: "token uses reset", sql: "UPDATE join_tokens SET uses = 0",
            sequence: 2, eventKind: "token-use", message: "now says uses=0"),
        Edit(
            name: "token un-revoked", sql: "UPDATE join_tokens SET revoked_at = NULL",
            sequence: 7, eventKind: "token-revocation", message: "now says revoked_at=NULL"),
        Edit(
            name: "token scope widened", sql: "UPDATE join_tokens SET max_uses = 1000",
            sequence: 1, eventKind: "token-creation", message: "no longer matches the content hash"),
        Edit(
            name: "rejection message reworded", sql: "UPDATE rejections SET message = 'ok'",
            sequence: 4, eventKind: "rejection", message: "no longer matches the content hash"),
        Edit(
            name: "root change payload replaced", sql: "UPDATE ledger_events SET payload = X'00000000' WHERE seq = 8",
            sequence: 8, eventKind: "root-change", message: "ledger_events row was edited"),
    ]

    @Test(
        "Editing state columns, tokens, rejections or payloads is reported at the event that covers them",
        arguments: edits)
    func edited(_ edit: Edit) async throws {
        try await withEveryKind { ledger, raw in
            try raw.execute(edit.sql)
            let problem = try #require(try await ledger.verifyChain().firstProblem)
            #expect(problem.kind == .altered)
            #expect(problem.sequence == edit.sequence)
            #expect(problem.eventKind == edit.eventKind)
            #expect(problem.message.contains(edit.message), "\(problem.message)")
        }
    }
}

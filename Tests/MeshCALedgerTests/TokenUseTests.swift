import Foundation
import MeshCALedger
import MeshCATestSupport
import Testing

@Suite("Consuming a join token together with an issuance", .timeLimit(.minutes(1)))
struct TokenUseTests {
    /// Runs `body` with a fresh ledger holding `token`.
    private func withLedger(
        _ engine: LedgerEngine, holding token: JoinTokenRecord, _ body: (any LedgerStore, String) async throws -> Void
    ) async throws {
        try await MeshCALedgerTests.withLedger(engine) { ledger async throws in
            try await ledger.createToken(token)
            try await body(ledger, ledger.location)
        }
    }

    @Test("A valid use records the issuance and consumes exactly one use, noting when", arguments: LedgerEngine.all)
    func validUse(_ engine: LedgerEngine) async throws {
        let token = JoinTokenRecord.fixture(maxUses: 2)
        try await withLedger(engine, holding: token) { ledger, _ in
            let issuance = IssuanceRecord.fixture(serial: "0a01")
            try await ledger.record(issuance, consuming: token.use(at: at(60.5)))

            #expect(try await ledger.allIssuances() == [issuance])
            let stored = try #require(try await ledger.token(id: token.id))
            #expect(stored.uses == 1)
            #expect(stored.lastUsedAt == at(60))
            #expect(stored.state(at: at(61)) == .active)
        }
    }

    @Test("A single-use token used a second time is rejected and nothing more is recorded", arguments: LedgerEngine.all)
    func usedTwice(_ engine: LedgerEngine) async throws {
        let token = JoinTokenRecord.fixture(maxUses: 1)
        try await withLedger(engine, holding: token) { ledger, path in
            try await ledger.record(.fixture(serial: "0a01"), consuming: token.use(at: at(60)))
            let error = try await #require(throws: LedgerError.self) {
                try await ledger.record(.fixture(serial: "0a02"), consuming: token.use(at: at(61)))
            }
            #expect(error.code == .tokenRejected)
            #expect(error.message.contains("is used up"))
            #expect(error.message.contains(token.id))
            #expect(error.message.contains("0a02"))
            #expect(error.message.contains(path))
            #expect(try await ledger.allIssuances().map(\.serial) == ["0a01"])
            #expect(try await ledger.token(id: token.id)?.uses == 1)
            #expect(try await ledger.token(id: token.id)?.lastUsedAt == at(60))
        }
    }

    /// A token made unusable in one way, the use presented, and what the message must name.
    struct Refusal: Sendable, CustomTestStringConvertible {
        let name: String
        let revokedAt: Date?
        let use: TokenUse
        let reason: String
        var testDescription: String { name }
    }

    static let token = JoinTokenRecord.fixture(expiresAt: at(3600), maxUses: 5)
    static let refusals = [
        Refusal(
            name: "expired", revokedAt: nil, use: token.use(at: at(3600)),
            reason: "expired at 2025-06-15T16:06:40Z"),
        Refusal(
            name: "revoked", revokedAt: at(30), use: token.use(at: at(60)),
            reason: "was revoked at 2025-06-15T15:07:10Z"),
        Refusal(
            name: "wrong secret", revokedAt: nil,
            use: TokenUse(id: token.id, secretSHA256: secretHash("00"), at: at(60)),
            reason: "is unknown or its secret does not match"),
        Refusal(
            name: "unknown id", revokedAt: nil,
            use: TokenUse(id: "ffff", secretSHA256: token.secretSHA256, at: at(60)),
            reason: "is unknown or its secret does not match"),
    ]

    @Test(
        "Expired, revoked, wrong-secret and unknown tokens are rejected with the reason, recording nothing",
        arguments: LedgerEngine.all, refusals)
    func refused(_ engine: LedgerEngine, _ refusal: Refusal) async throws {
        try await withLedger(engine, holding: Self.token) { ledger, _ in
            if let revokedAt = refusal.revokedAt {
                #expect(try await ledger.revokeToken(id: Self.token.id, at: revokedAt))
            }
            let error = try await #require(throws: LedgerError.self) {
                try await ledger.record(.fixture(serial: "0a01"), consuming: refusal.use)
            }
            #expect(error.code == .tokenRejected)
            #expect(error.message.contains(refusal.reason), "\(error.message)")
            #expect(try await ledger.allIssuances().isEmpty)
            #expect(try await ledger.token(id: Self.token.id)?.uses == 0)
        }
    }

    @Test("A wrong secret does not reveal that the token is revoked", arguments: LedgerEngine.all)
    func wrongSecretRevealsNothing(_ engine: LedgerEngine) async throws {
        try await withLedger(engine, holding: Self.token) { ledger, _ in
            #expect(try await ledger.revokeToken(id: Self.token.id, at: at(30)))
            let error = try await #require(throws: LedgerError.self) {
                let use = TokenUse(id: Self.token.id, secretSHA256: secretHash("00"), at: at(60))
                try await ledger.record(.fixture(serial: "0a01"), consuming: use)
            }
            #expect(error.message.contains("is unknown or its secret does not match"))
            #expect(!error.message.contains("revoked"))
        }
    }

    @Test("A duplicate serial with a valid token fails as a duplicate and does not consume the use", arguments: LedgerEngine.all)
    func duplicateSerialKeepsUse(_ engine: LedgerEngine) async throws {
        let token = JoinTokenRecord.fixture(maxUses: 1)
        try await withLedger(engine, holding: token) { ledger, _ in
            try await ledger.record(.fixture(serial: "0a01"))
            let error = try await #require(throws: LedgerError.self) {
                try await ledger.record(.fixture(serial: "0a01", issuedAt: at(5)), consuming: token.use(at: at(60)))
            }
            #expect(error.code == .duplicateSerial)
            #expect(try await ledger.token(id: token.id)?.uses == 0)
            // The use is still there for a request with a fresh serial.
            try await ledger.record(.fixture(serial: "0a02"), consuming: token.use(at: at(61)))
            #expect(try await ledger.token(id: token.id)?.uses == 1)
        }
    }

    @Test(
        "20 concurrent requests with one single-use token: exactly one issuance is recorded",
        arguments: LedgerEngine.all, [false, true])
    func concurrentUses(_ engine: LedgerEngine, inOneTransaction: Bool) async throws {
        let token = JoinTokenRecord.fixture(maxUses: 1)
        try await withLedger(engine, holding: token) { ledger, _ async throws in
            let requests = 20
            let use: @Sendable (Int) async throws -> Void = { index in
                let serial = String(format: "0b%02x", index)
                try await ledger.record(.fixture(serial: serial), consuming: token.use(at: at(60)))
            }
            let outcomes: [Result<Void, any Error>]
            if inOneTransaction, let ledger = ledger as? SQLiteLedger {
                outcomes = await inOneBatch(ledger, requests, use)
            } else {
                outcomes = await concurrently(requests, use)
            }

            #expect(outcomes.filter { $0.succeeded }.count == 1)
            #expect(outcomes.compactMap { $0.ledgerError }.filter { $0.code == .tokenRejected }.count == requests - 1)
            #expect(try await ledger.allIssuances().count == 1)
            #expect(try await ledger.token(id: token.id)?.uses == 1)
        }
    }
}

import Foundation
import MeshCALedger
import MeshCATestSupport
import Testing

@Suite("Creating, reading and revoking join tokens")
struct JoinTokenTests {
    @Test("Tokens round trip field for field, list oldest first, and revoke once", arguments: LedgerEngine.all)
    func roundTrip(_ engine: LedgerEngine) async throws {
        try await withLedger(engine) { ledger async throws in
            let newer = JoinTokenRecord.fixture(id: "0b", secretSHA256: secretHash("b0"), createdAt: at(10), maxUses: 3)
            var older = JoinTokenRecord.fixture(
                id: "0a", namespace: "billing", serviceAccount: "worker", createdAt: at(5), expiresAt: at(86_400))
            older.uses = 0
            // Recorded newest first, so the listing shows it sorts by creation time.
            try await ledger.createToken(newer)
            try await ledger.createToken(older)

            #expect(try await ledger.token(id: "0a") == older)
            #expect(try await ledger.token(id: "0b") == newer)
            #expect(try await ledger.token(id: "ff") == nil)
            #expect(try await ledger.tokens() == [older, newer])

            #expect(try await ledger.revokeToken(id: "0a", at: at(100.7)))
            #expect(try await ledger.revokeToken(id: "0a", at: at(200)) == false, "already revoked")
            #expect(try await ledger.revokeToken(id: "ff", at: at(200)) == false, "unknown")
            var revoked = older
            revoked.revokedAt = at(100)  // whole seconds, and the first revocation is kept
            #expect(try await ledger.token(id: "0a") == revoked)
            #expect(try await ledger.tokens() == [revoked, newer])
        }
    }

    @Test("A second token with the same id is refused with .duplicateToken and the first stays intact", arguments: LedgerEngine.all)
    func duplicateID(_ engine: LedgerEngine) async throws {
        try await withLedger(engine) { ledger async throws in
            let path = ledger.location
            let original = JoinTokenRecord.fixture()
            try await ledger.createToken(original)

            let error = try await #require(throws: LedgerError.self) {
                try await ledger.createToken(.fixture(namespace: "billing", maxUses: 5))
            }
            #expect(error.code == .duplicateToken)
            #expect(error.message.contains(original.id))
            #expect(error.message.contains(path))
            #expect(try await ledger.tokens() == [original])
        }
    }

    @Test(
        "Tokens that could not be stored faithfully or never used are refused before anything is written",
        arguments: [
            (JoinTokenRecord.fixture(id: "3F9A"), "lowercase hex"),
            (JoinTokenRecord.fixture(id: ""), "lowercase hex"),
            (JoinTokenRecord.fixture(secretSHA256: "abc"), "64 lowercase hex"),
            (JoinTokenRecord.fixture(secretSHA256: secretHash("AB")), "64 lowercase hex"),
            (JoinTokenRecord.fixture(maxUses: 0), "at least one use"),
        ])
    func invalidTokens(token: JoinTokenRecord, complaint: String) async throws {
        for engine in LedgerEngine.all { try await invalidToken(engine, token: token, complaint: complaint) }
    }

    private func invalidToken(_ engine: LedgerEngine, token: JoinTokenRecord, complaint: String) async throws {
        try await withLedger(engine) { ledger async throws in
            let error = try await #require(throws: LedgerError.self) { try await ledger.createToken(token) }
            #expect(error.message.contains(complaint))
            #expect(try await ledger.tokens().isEmpty)
        }
    }

    @Test("state(at:) lets revoked win over used up, used up over expired, and expires at expiresAt")
    func state() {
        let token = JoinTokenRecord.fixture(expiresAt: at(3600), maxUses: 2)
        #expect(token.state(at: at(0)) == .active)
        #expect(token.state(at: at(3599.9)) == .active)
        #expect(token.state(at: at(3600)) == .expired)

        var usedOnce = token
        usedOnce.uses = 1
        #expect(usedOnce.state(at: at(0)) == .active)

        var usedUp = token
        usedUp.uses = 2
        #expect(usedUp.state(at: at(0)) == .usedUp)
        #expect(usedUp.state(at: at(5000)) == .usedUp)

        var revoked = usedUp
        revoked.revokedAt = at(10)
        #expect(revoked.state(at: at(0)) == .revoked)
        #expect(revoked.state(at: at(5000)) == .revoked)
        #expect(JoinTokenState.usedUp.rawValue == "used-up")
    }
}

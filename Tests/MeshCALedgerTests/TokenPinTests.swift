import Foundation
import MeshCALedger
import MeshCAMigrations
import MeshCATestSupport
import Testing

/// Join tokens record the root they pin (schema version 5), on the hash chain.
@Suite("The root a join token pins")
struct TokenPinTests {
    static let oldRoot = String(repeating: "ef", count: 32)
    static let newRoot = String(repeating: "a1", count: 32)

    @Test("A token keeps the root it pins; one without (as created before schema version 5) reads back nil", arguments: LedgerEngine.all)
    func pinRoundTrip(_ engine: LedgerEngine) async throws {
        try await withLedger(engine) { ledger async throws in
            var pinned = JoinTokenRecord.fixture(id: "0a")
            pinned.pinnedRootSHA256 = Self.newRoot
            let legacy = JoinTokenRecord.fixture(id: "0b")
            try await ledger.createToken(pinned)
            try await ledger.createToken(legacy)
            #expect(try await ledger.token(id: "0a")?.pinnedRootSHA256 == Self.newRoot)
            #expect(try await ledger.token(id: "0b")?.pinnedRootSHA256 == nil)
            #expect(try await ledger.tokens() == [pinned, legacy])

            var malformed = JoinTokenRecord.fixture(id: "0c")
            malformed.pinnedRootSHA256 = "A1B2"
            let error = try await #require(throws: LedgerError.self) { try await ledger.createToken(malformed) }
            #expect(error.message.contains("pinned root must be the 64 lowercase hex digits"))
            #expect(try await ledger.token(id: "0c") == nil)
        }
    }

    @Test("The pin is on the hash chain: a token-pin event at creation, and editing the column is caught")
    func pinIsChained() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let path = directory.file("ledger.db")
            let ledger = try SQLiteLedger(path: path)
            var pinned = JoinTokenRecord.fixture(id: "0a")
            pinned.pinnedRootSHA256 = Self.oldRoot
            try await ledger.createToken(pinned)
            try await ledger.createToken(.fixture(id: "0b"))
            let raw = try RawDatabase(path: path)
            #expect(try raw.strings("SELECT kind || ' ' || subject FROM ledger_events ORDER BY seq") == [
                "token-creation 0a", "token-pin 0a", "token-creation 0b",
            ])
            #expect(try await ledger.verifyChain().isIntact)

            // Re-pinning a token to the new root by hand (so it would no longer hold retire back) is caught...
            try raw.execute("UPDATE join_tokens SET pinned_root_sha256 = '\(Self.newRoot)' WHERE id = '0a'")
            let repinned = try #require(try await ledger.verifyChain().firstProblem)
            #expect(repinned.kind == .altered && repinned.subject == "0a" && repinned.eventKind == "token-pin")
            try raw.execute("UPDATE join_tokens SET pinned_root_sha256 = '\(Self.oldRoot)' WHERE id = '0a'")
            #expect(try await ledger.verifyChain().isIntact)
            // ...and so is giving a token without a recorded pin one.
            try raw.execute("UPDATE join_tokens SET pinned_root_sha256 = '\(Self.newRoot)' WHERE id = '0b'")
            let invented = try #require(try await ledger.verifyChain().firstProblem)
            #expect(invented.kind == .altered && invented.subject == "0b")
            #expect(invented.message.contains("no token-pin event"))
        }
    }

    @Test("Migrating a version-4 ledger keeps its tokens, without a pin, and verifies")
    func migrationFromVersionFour() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let path = directory.file("ledger.db")
            let v4 = try SQLiteLedger(path: path, configuration: .init(), migrations: Array(LedgerMigrations.all.prefix(4)))
            try await v4.createToken(.fixture(id: "0a"))
            let ledger = try SQLiteLedger(path: path)
            #expect(try ledger.schemaVersion == LedgerMigrations.latestVersion)
            #expect(try await ledger.token(id: "0a") == .fixture(id: "0a"))
            #expect(try await ledger.verifyChain().isIntact)
        }
    }
}

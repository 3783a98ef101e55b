import Foundation
import MeshCALedger
import MeshCATestSupport
import Testing

/// The lookup behind repeated requests: the newest certificate for one requester and public key since a moment,
/// read through the public-key index.
@Suite("Finding the certificate already issued for a requester and public key")
struct NewestIssuanceTests {
    func record(_ serial: String, key: String, requester: String, issuedAt: Date) -> IssuanceRecord {
        var record = IssuanceRecord.fixture(serial: serial, issuedAt: issuedAt)
        record.publicKeySHA256 = key
        record.requester = requester
        return record
    }

    @Test("Only the same requester and key, issued since the moment; the newest when several", arguments: LedgerEngine.all)
    func matches(_ engine: LedgerEngine) async throws {
        try await withLedger(engine) { ledger async throws in
            let key = String(repeating: "1a", count: 32)
            let other = String(repeating: "2b", count: 32)
            try await ledger.record(record("0a01", key: key, requester: "token:aa", issuedAt: at(0)))
            try await ledger.record(record("0a02", key: key, requester: "token:aa", issuedAt: at(100)))
            try await ledger.record(record("0a03", key: key, requester: "token:bb", issuedAt: at(200)))
            try await ledger.record(record("0a04", key: other, requester: "token:aa", issuedAt: at(300)))

            #expect(try await ledger.newestIssuance(requester: "token:aa", publicKeySHA256: key, issuedSince: at(0))?.serial == "0a02")
            #expect(try await ledger.newestIssuance(requester: "token:aa", publicKeySHA256: key.uppercased(), issuedSince: at(100))?.serial == "0a02")
            #expect(try await ledger.newestIssuance(requester: "token:aa", publicKeySHA256: key, issuedSince: at(101)) == nil)
            #expect(try await ledger.newestIssuance(requester: "token:bb", publicKeySHA256: key, issuedSince: at(0))?.serial == "0a03")
            #expect(try await ledger.newestIssuance(requester: "token:cc", publicKeySHA256: key, issuedSince: at(0)) == nil)
        }
    }

    @Test("The ledger has the public-key index the lookup needs (migration 0006)")
    func hasIndex() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let path = directory.file("ledger.db")
            _ = try SQLiteLedger(path: path)
            let columns = try RawDatabase(path: path).strings("SELECT name FROM pragma_index_info('issuances_by_public_key') ORDER BY seqno")
            #expect(columns == ["public_key_sha256", "issued_at"])
        }
    }
}

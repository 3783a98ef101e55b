import Foundation
import MeshCALedger
import MeshCATestSupport
import Testing

/// The lookups a request makes before it is signed run on the caller's thread (an event loop's), so they must never
/// wait there: opening the second connection (which can wait for locks) happens on the ledger's read queue.
/// (A read that meets a lock moves there too; SQLite gives a WAL reader SQLITE_BUSY only during recovery or against a
/// connection in exclusive locking mode, which cannot be arranged while the ledger itself has the file open.)
@Suite("Request-path lookups on an SQLite ledger")
struct LookUpTests {
    @Test("The first lookup opens the second connection on the read queue; later ones run where they are called")
    func firstLookUpMoves() async throws {
        try await TemporaryDirectory.with("lookup") { directory in
            let ledger = try SQLiteLedger(path: directory.file("ledger.db"))
            let token = JoinTokenRecord.fixture()
            try await ledger.createToken(token)
            #expect(ledger.movedLookUps == 0)
            #expect(try await ledger.token(id: token.id)?.id == token.id)
            #expect(ledger.movedLookUps == 1, "the first lookup opens the second connection on the read queue")
            #expect(try await ledger.token(id: "absent") == nil)
            #expect(try await ledger.issuance(serial: "0a01") == nil)
            #expect(ledger.movedLookUps == 1, "later ones run where they are called")
        }
    }
}

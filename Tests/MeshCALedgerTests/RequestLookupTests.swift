import Foundation
import MeshCALedger
import MeshCATestSupport
import Testing

/// The lookups every request makes before it is signed (its join token, a renewing certificate's record) read
/// through a second connection, so they do not queue behind a group commit's fsync.
@Suite("Per-request lookups do not wait for writes", .timeLimit(.minutes(1)))
struct RequestLookupTests {
    @Test("A token and a certificate are read while the write queue is held, and reads see each commit at once")
    func lookupsBesideWrites() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let ledger = try SQLiteLedger(path: directory.file("ledger.db"))
            let token = JoinTokenRecord.fixture()
            try await ledger.createToken(token)
            try await ledger.record(.fixture(serial: "0e01"))

            // Hold every write (and the queue's other work): a write started now waits until resume.
            ledger.suspendOperations()
            let pending = Task { try await ledger.record(.fixture(serial: "0e02")) }
            let lookups = Task { () throws -> (JoinTokenRecord?, IssuanceRecord?) in
                (try await ledger.token(id: token.id), try await ledger.issuance(serial: "0e01"))
            }
            // A hang guard, not a speed expectation: the lookups must finish while writes are held.
            let finished = await withTaskGroup(of: Bool.self) { group in
                group.addTask { _ = try? await lookups.value; return true }
                group.addTask { try? await Task.sleep(for: .seconds(20)); return false }
                let first = await group.next() ?? false
                group.cancelAll()
                return first
            }
            ledger.resumeOperations()
            try await pending.value
            #expect(finished, "the lookups waited for the held write queue")
            let (found, certificate) = try await lookups.value
            #expect(found == token)
            #expect(certificate?.serial == "0e01")
            // Once a write has returned, the lookup connection sees it.
            #expect(try await ledger.issuance(serial: "0e02")?.serial == "0e02")
        }
    }

    /// Lookups run on the caller's thread (an event loop's), so they must never wait there: opening the second
    /// connection (which can wait for locks) happens on the read queue, as does a read that meets a lock. (SQLite
    /// gives a WAL reader SQLITE_BUSY only during recovery or against a connection in exclusive locking mode, which
    /// cannot be arranged while the ledger itself has the file open.)
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

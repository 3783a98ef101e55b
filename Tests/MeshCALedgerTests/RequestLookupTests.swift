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
}

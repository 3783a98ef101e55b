import Foundation
import MeshCALedger
import MeshCATestSupport
import Synchronization
import Testing

/// `verifyChain(progress:)` tells a progress display how far the walk over the events has come.
@Suite("Ledger verification progress")
struct LedgerVerifyProgressTests {
    @Test("The walk reports (0, total) at the start and (total, total) at the end, never going back")
    func reportsProgress() async throws {
        let directory = try TemporaryDirectory("progress")
        defer { directory.remove() }
        let fixture = try await SixIssuances(in: directory)
        let calls = Calls()
        let report = try await fixture.ledger.verifyChain(publicKey: nil, progress: { done, total in calls.list.withLock { $0.append([done, total]) } })
        #expect(report.isIntact)
        let seen = calls.list.withLock { $0 }
        #expect(seen.first == [0, 6])
        #expect(seen.last == [6, 6])
        #expect(zip(seen, seen.dropFirst()).allSatisfy { $0[0] <= $1[0] })
    }
}

/// The (done, total) pairs reported.
final class Calls: Sendable {
    let list = Mutex<[[Int64]]>([])
}

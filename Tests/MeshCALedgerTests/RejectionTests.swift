import Foundation
import MeshCALedger
import MeshCATestSupport
import Testing

@Suite("Recording and querying rejections")
struct RejectionTests {
    private static func rejection(_ seconds: TimeInterval, _ reason: String) -> RejectionRecord {
        RejectionRecord(
            occurredAt: at(seconds), requester: "token:ci-runner", authMethod: "token",
            requestedIdentity: "spiffe://mesh.example/ns/payments/sa/api", reasonCode: reason,
            message: "The requested TTL of 30d is longer than the maximum of 24h.")
    }

    @Test("Rejections round trip with ledger-assigned ids, oldest first, and honour since and limit", arguments: LedgerEngine.all)
    func roundTrip(_ engine: LedgerEngine) async throws {
        try await withLedger(engine) { ledger async throws in
            // Recorded out of time order; an id passed in is ignored because the ledger assigns ids.
            var third = Self.rejection(30, "not-authorized")
            third.id = 999
            for rejection in [Self.rejection(20, "ttl-too-long"), Self.rejection(10, "bad-csr"), third, Self.rejection(20, "duplicate")] {
                try await ledger.record(rejection)
            }

            let all = try await ledger.rejections(since: nil, limit: nil)
            #expect(all.map(\.reasonCode) == ["bad-csr", "ttl-too-long", "duplicate", "not-authorized"])
            #expect(all.map(\.id) == [2, 1, 4, 3])
            var expectedFirst = Self.rejection(10, "bad-csr")
            expectedFirst.id = 2
            #expect(all.first == expectedFirst)

            #expect(try await ledger.rejections(since: at(20), limit: nil).map(\.reasonCode) == ["ttl-too-long", "duplicate", "not-authorized"])
            #expect(try await ledger.rejections(since: at(20.5), limit: nil).map(\.reasonCode) == ["not-authorized"])
            #expect(try await ledger.rejections(since: at(31), limit: nil).isEmpty)
            #expect(try await ledger.rejections(since: nil, limit: 2).map(\.reasonCode) == ["duplicate", "not-authorized"])
            #expect(try await ledger.rejections(since: at(0), limit: 0).isEmpty)
        }
    }
}

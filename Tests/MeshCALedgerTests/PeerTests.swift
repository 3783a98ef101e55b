import Foundation
import MeshCALedger
import MeshCATestSupport
import Testing

@Suite("The network peer of a request")
struct PeerTests {
    @Test("An issuance's peer is stored and read back; the default is empty", arguments: LedgerEngine.all)
    func issuancePeer(_ engine: LedgerEngine) async throws {
        try await withLedger(engine) { ledger async throws in
            var remote = IssuanceRecord.fixture(serial: "0a01")
            remote.peer = "ipv4:127.0.0.1:53412"
            var ipv6 = IssuanceRecord.fixture(serial: "0a02", issuedAt: at(1))
            ipv6.peer = "ipv6:[::1]:40000"
            let local = IssuanceRecord.fixture(serial: "0a03", issuedAt: at(2))
            #expect(local.peer == "")

            for record in [remote, ipv6, local] { try await ledger.record(record) }
            #expect(try await ledger.allIssuances().map(\.peer) == ["ipv4:127.0.0.1:53412", "ipv6:[::1]:40000", ""])
            #expect(try await ledger.allIssuances() == [remote, ipv6, local])
        }
    }

    @Test("A rejection's peer is stored and read back; the default is empty", arguments: LedgerEngine.all)
    func rejectionPeer(_ engine: LedgerEngine) async throws {
        try await withLedger(engine) { ledger async throws in
            let remote = RejectionRecord(
                occurredAt: at(1), requester: "token:3f9a0c12", authMethod: "token", requestedIdentity: "",
                reasonCode: "token-rejected", message: "The join token is used up.", peer: "ipv4:10.0.0.7:51000")
            let local = RejectionRecord(
                occurredAt: at(2), requester: "local:root(uid 0)", authMethod: "local", requestedIdentity: "",
                reasonCode: "bad-csr", message: "The CSR signature does not verify.")

            try await ledger.record(remote)
            try await ledger.record(local)
            #expect(try await ledger.rejections(since: nil, limit: nil).map(\.peer) == ["ipv4:10.0.0.7:51000", ""])
        }
    }
}

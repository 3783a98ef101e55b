import Foundation
import GRPCCore
import MeshCACore
import MeshCATestSupport
import MeshCATransport
import Testing
import X509

/// A client that lost the answer to CreateCertificate (its connection closed after the CA had issued) retries
/// with the same single-use token and CSR: it gets the certificate already issued, not "has been used 1 of 1".
@Suite("meshca serve: a repeated request gets the certificate already issued")
struct RepeatedRequestEndToEndTests {
    @Test("Same single-use token and CSR again: same certificate, one issuance, recorded as a repeat; another key is refused")
    func singleUseTokenRetry() async throws {
        let daemon = try await TestDaemon.start()
        defer { daemon.stop() }
        let token = try await daemon.token()
        let csr = try workloadCSR().pem
        let first = try CredentialBundle(istioChain: try await daemon.client().createCertificate(csrPEM: csr, ttl: nil, headers: bearer(token))).leaf
        // A new connection, as a retry after a GOAWAY makes.
        let again = try CredentialBundle(istioChain: try await daemon.client().createCertificate(csrPEM: csr, ttl: nil, headers: bearer(token))).leaf
        #expect(again.serialHex == first.serialHex)
        #expect(again == first)
        let issued = try await daemon.ledger()
        #expect(issued.filter { ($0["spiffe_id"] as? String) == "spiffe://cluster.local/ns/default/sa/was" }.count == 1)
        let repeats = try await daemon.rejections().filter { ($0["reason_code"] as? String) == "repeated-request" }
        #expect(repeats.count == 1)
        #expect((repeats.first?["message"] as? String)?.contains(first.serialHex) == true)

        let otherKey = await RPCResult.failure { _ = try await daemon.client().createCertificate(csrPEM: workloadCSR().pem, ttl: nil, headers: bearer(token)) }
        #expect(otherKey?.code == .unauthenticated)
        #expect(otherKey?.message.contains("has been used 1 of 1 times") == true, "\(String(describing: otherKey))")
        await #expect(try daemon.ledger().filter { ($0["spiffe_id"] as? String) == "spiffe://cluster.local/ns/default/sa/was" }.count == 1)
    }

    @Test("--retry-window off: the same request with a spent token is refused")
    func retryWindowOff() async throws {
        let daemon = try await TestDaemon.start(["--retry-window", "off"])
        defer { daemon.stop() }
        let token = try await daemon.token()
        let csr = try workloadCSR().pem
        _ = try await daemon.client().createCertificate(csrPEM: csr, ttl: nil, headers: bearer(token))
        let refused = await RPCResult.failure { _ = try await daemon.client().createCertificate(csrPEM: csr, ttl: nil, headers: bearer(token)) }
        #expect(refused?.code == .unauthenticated)
        #expect(refused?.message.contains("has been used 1 of 1 times") == true)
    }
}

import Foundation
import GRPCCore
import MeshCACore
import MeshCATestSupport
import MeshCATransport
import SwiftASN1
import Testing
import X509

/// The renewal hole of issue 12: a chain that verifies to the bundle is not enough to renew over mTLS. A leaf
/// minted with the key of an intermediate from `meshca intermediate create` verifies, but this CA never
/// issued it, so it gets nothing; a leaf the CA issued renews until it is revoked.
@Suite("meshca serve: mTLS renewal only for certificates this CA issued")
struct RenewalTrustTests {
    /// A leaf for `spiffe://cluster.local/ns/kube-system/sa/admin` signed with the key of the intermediate in
    /// `directory` (as written by `meshca intermediate create`), presented as [leaf, intermediate].
    func rogueIdentity(intermediateIn directory: String, roots: [Certificate]) throws -> (identity: CAClient.ClientIdentity, intermediate: Certificate) {
        let intermediate = try Certificate(pemEncoded: String(contentsOfFile: directory + "/ca-cert.pem", encoding: .utf8))
        let intermediateKey = try Certificate.PrivateKey(pemEncoded: String(contentsOfFile: directory + "/ca-key.pem", encoding: .utf8))
        let rogue = TestPKI(
            trustDomain: try TrustDomain("cluster.local"),
            signer: try SigningIdentity(certificate: intermediate, privateKey: intermediateKey, bundle: roots))
        let (issuance, key) = try rogue.issue("admin", ns: "kube-system", at: Date())
        return (CAClient.ClientIdentity(chainPEM: issuance.certificate.pem + intermediate.pem, keyPEM: try key.serializeAsPEM().pemString), intermediate)
    }

    @Test("A leaf signed by a meshca intermediate is refused UNAUTHENTICATED and recorded, before and after the intermediate is revoked")
    func intermediateSignedLeaf() async throws {
        let daemon = try await TestDaemon.start()
        defer { daemon.stop() }
        let created = try await daemon.meshca("intermediate", "create", "--out", daemon.directory.file("intermediate"))
        #expect(created.status == 0, "\(created.stderr)")
        let (identity, intermediate) = try rogueIdentity(intermediateIn: daemon.directory.file("intermediate"), roots: daemon.roots())
        let csr = try workloadCSR(sa: "admin", ns: "kube-system").pem

        let unrecorded = await RPCResult.failure { _ = try await daemon.client(identity: identity).createCertificate(csrPEM: csr, ttl: nil) }
        #expect(unrecorded?.code == .unauthenticated)
        #expect(unrecorded?.message.contains("was not issued by this CA") == true, "\(String(describing: unrecorded))")
        await #expect(try daemon.ledger().allSatisfy { ($0["spiffe_id"] as? String) != "spiffe://cluster.local/ns/kube-system/sa/admin" })
        let rejection = try await #require(try daemon.rejections().last)
        #expect(rejection["auth_method"] as? String == "mtls")
        #expect(rejection["reason_code"] as? String == "unauthenticated")
        #expect((rejection["message"] as? String)?.contains("was not issued by this CA") == true)

        let revoked = try await daemon.meshca("revoke", intermediate.serialHex, "--reason", "cACompromise")
        #expect(revoked.status == 0, "\(revoked.stderr)")
        let afterRevocation = await RPCResult.failure { _ = try await daemon.client(identity: identity).createCertificate(csrPEM: csr, ttl: nil) }
        #expect(afterRevocation?.code == .unauthenticated)
        #expect(afterRevocation?.message.contains("chain contains a revoked certificate") == true, "\(String(describing: afterRevocation))")
        #expect(afterRevocation?.message.contains("cACompromise") == true)
        await #expect(try daemon.rejections().filter { ($0["auth_method"] as? String) == "mtls" }.count == 2)
        await #expect(try daemon.ledger().allSatisfy { ($0["spiffe_id"] as? String) != "spiffe://cluster.local/ns/kube-system/sa/admin" })
    }

    @Test("A certificate this CA issued renews over mTLS, and is refused once revoked")
    func issuedLeafRenewsUntilRevoked() async throws {
        let daemon = try await TestDaemon.start()
        defer { daemon.stop() }
        let (key, csr) = try workloadCSR()
        let first = try await daemon.client().createCertificate(csrPEM: csr, ttl: nil, headers: bearer(daemon.token()))
        let leaf = try CredentialBundle(istioChain: first).leaf
        let identity = CAClient.ClientIdentity(chainPEM: first.joined(), keyPEM: try key.serializeAsPEM().pemString)

        let renewed = try await daemon.client(identity: identity).createCertificate(csrPEM: workloadCSR().pem, ttl: nil)
        #expect(try CredentialBundle(istioChain: renewed).leaf.uriSANs == ["spiffe://cluster.local/ns/default/sa/was"])

        #expect(try await daemon.meshca("revoke", leaf.serialHex, "--reason", "keyCompromise").status == 0)
        let refused = await RPCResult.failure { _ = try await daemon.client(identity: identity).createCertificate(csrPEM: workloadCSR().pem, ttl: nil) }
        #expect(refused?.code == .unauthenticated)
        #expect(refused?.message.contains("was revoked at") == true, "\(String(describing: refused))")
        await #expect(try daemon.rejections().last?["auth_method"] as? String == "mtls")
    }
}

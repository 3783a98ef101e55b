import Foundation
import MeshCACore
import MeshCATestSupport
import Testing
import X509

/// `CredentialBundle.accepted`: the one check of a CA's answer, used by the agent and `meshca issue --server`.
@Suite("A CA's answer is used only for the key, the identity and the pinned root the client asked with")
struct CAAnswerTests {
    let pki: TestPKI
    let identity: SPIFFEID
    let key: Certificate.PrivateKey
    let answer: [String]

    init() throws {
        pki = try TestPKI(intermediateTTL: .seconds(30 * 86_400))
        identity = try pki.identity("was")
        key = try KeyType.ecP256.generate()
        answer = try pki.authority.issue(
            IssuanceRequest(csrPEM: TestPKI.csr(for: identity, key: key), identity: identity, requestedTTL: nil), at: Date()
        ).istioCertChain
    }

    @Test("The right key, identity and pinned root: accepted, split into leaf, intermediate and roots")
    func accepted() throws {
        let bundle = try CredentialBundle.accepted(
            istioChain: answer, from: "ca:15012", for: identity, key: key.publicKey, pinnedRootSHA256: pki.root.sha256Fingerprint)
        #expect(bundle.leaf.uriSANs == [identity.uri])
        #expect(bundle.intermediates == [pki.signer.certificate])
        #expect(bundle.roots == [pki.root])
        // Trusted through a root file instead of a pin: no pin to check.
        _ = try CredentialBundle.accepted(istioChain: answer, from: "ca:15012", for: identity, key: key.publicKey, pinnedRootSHA256: nil)
    }

    @Test("Another key, another identity, or a bundle without the pinned root: refused, naming the CA and what was wrong")
    func refused() throws {
        func refusal(for identity: SPIFFEID? = nil, key: Certificate.PublicKey? = nil, pin: String? = nil) -> IssuanceError? {
            do {
                _ = try CredentialBundle.accepted(
                    istioChain: answer, from: "ca:15012", for: identity ?? self.identity, key: key ?? self.key.publicKey,
                    pinnedRootSHA256: pin)
                return nil
            } catch {
                return error as? IssuanceError
            }
        }
        let otherKey = try refusal(key: KeyType.ecP256.generate().publicKey)
        #expect(otherKey?.code == .unacceptableAnswer)
        #expect(otherKey?.message == "The CA at ca:15012 returned a certificate for a different key; it was discarded.")

        let otherIdentity = try refusal(for: pki.identity("api"))
        #expect(otherIdentity?.code == .unacceptableAnswer)
        #expect(otherIdentity?.message.contains("for \(identity.uri), not \(try pki.identity("api").uri)") == true)

        let otherRoot = try TestPKI().root.sha256Fingerprint
        let unpinned = refusal(pin: otherRoot)
        #expect(unpinned?.code == .unacceptableAnswer)
        #expect(unpinned?.message.contains("does not contain the root pinned by the join token") == true)

        // DNS names asked for (the agent's --dns-name) that the answer does not carry.
        do {
            _ = try CredentialBundle.accepted(
                istioChain: answer, from: "ca:15012", for: identity, dnsNames: ["web.example.internal"], key: key.publicKey,
                pinnedRootSHA256: nil)
            Issue.record("an answer without the DNS name asked for was accepted")
        } catch let error as IssuanceError {
            #expect(error.code == .unacceptableAnswer)
            #expect(error.message.contains("answered with no DNS names, not the web.example.internal (--dns-name) asked for"), "\(error)")
        }

        // Not a chain at all.
        #expect(throws: IssuanceError.self) {
            _ = try CredentialBundle.accepted(
                istioChain: [answer[0]], from: "ca:15012", for: identity, key: key.publicKey, pinnedRootSHA256: nil)
        }
    }
}

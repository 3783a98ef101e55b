import Foundation
import MeshCACore
import MeshCATestSupport
import Testing
import X509

/// The fast paths the daemon takes on every request must produce exactly what the plain ones do.
@Suite("Encodings computed once per signer or on bytes")
struct IssuanceEncodingTests {
    @Test("The CA's cached Istio chain equals the issuance's own, under a root and under an intermediate")
    func cachedChainUnderRootAndIntermediate() throws {
        let ca = try TestPKI(createdAt: TestPKI.fixedNow)
        let rootIssuance = try ca.issue(at: TestPKI.fixedNow).issuance
        #expect(ca.authority.istioCertChain(for: rootIssuance) == rootIssuance.istioCertChain)

        let plugIn = try TestPKI(createdAt: TestPKI.fixedNow, intermediateTTL: .seconds(86_400))
        let issuance = try plugIn.issue("api", at: TestPKI.fixedNow).issuance
        let chain = plugIn.authority.istioCertChain(for: issuance)
        #expect(chain == issuance.istioCertChain)
        #expect(chain.count == 3)
    }

    @Test("An issuance signed before the CA switched signers still gets its own chain")
    func chainAfterActivation() throws {
        let ca = try TestPKI(createdAt: TestPKI.fixedNow)
        let before = try ca.issue(at: TestPKI.fixedNow).issuance
        let other = try TestPKI(createdAt: TestPKI.fixedNow)
        ca.authority.activate(other.authority.signingIdentity)
        #expect(ca.authority.istioCertChain(for: before) == before.istioCertChain)
        let after = try ca.issue(at: TestPKI.fixedNow).issuance
        #expect(ca.authority.istioCertChain(for: after) == after.istioCertChain)
        #expect(after.istioCertChain.last == other.root.pem)
    }

    @Test(
        "CSR text around the PEM block is normalized as before: CRLF, ASCII and Unicode whitespace",
        arguments: ["", "\n", "\r\n", "  \t\n", "\u{00A0}\n", "\n\u{2028}", "\u{0085}"]
    )
    func csrNormalization(padding: String) throws {
        let identity = try TestPKI.identity()
        let pem = try TestPKI.csr(for: identity)
        let plain = try WorkloadCSR.check(pem: pem, for: identity)
        let crlf = pem.replacingOccurrences(of: "\n", with: "\r\n")
        for text in [padding + pem + padding, padding + crlf, crlf + padding] {
            let checked = try WorkloadCSR.check(pem: text, for: identity)
            #expect(checked.sha256 == plain.sha256)
        }
    }
}

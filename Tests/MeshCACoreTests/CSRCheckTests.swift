import Crypto
import Foundation
import MeshCACore
import MeshCATestSupport
import SwiftASN1
import Testing
import X509
import _CryptoExtras

@Suite("Checks on incoming CSRs")
struct CSRCheckTests {
    func issue(_ csr: String, as identity: SPIFFEID? = nil) throws -> Issuance {
        let ca = try TestPKI(createdAt: TestPKI.fixedNow)
        return try ca.authority.issue(IssuanceRequest(csrPEM: csr, identity: identity ?? TestPKI.identity()), at: TestPKI.fixedNow)
    }

    @Test("CRLF line ends and a missing final newline are accepted")
    func lenientPEM() throws {
        let pem = try TestPKI.csr(for: TestPKI.identity())
        let crlf = pem.replacingOccurrences(of: "\n", with: "\r\n").trimmingCharacters(in: .newlines)
        #expect(try issue(crlf).identity == TestPKI.identity())
    }

    @Test("A CSR without any SAN gets the authenticated identity, as from istiod")
    func noSAN() throws {
        let csr = try TestPKI.csr(extensions: Certificate.Extensions())
        #expect(try issue(csr).certificate.uriSANs == ["spiffe://cluster.local/ns/default/sa/was"])
    }

    @Test(
        "Malformed input is refused as malformed-csr",
        arguments: ["", "hello", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"]
    )
    func malformed(text: String) {
        #expect(issuanceError { _ = try issue(text) }?.code == .malformedCSR)
    }

    @Test("A certificate or key sent instead of a CSR is named in the refusal")
    func wrongBlock() throws {
        let key = try KeyType.ecP256.generate()
        let error = issuanceError { _ = try issue(try key.serializeAsPEM().pemString) }
        #expect(error?.code == .malformedCSR)
        #expect(error?.message.contains("\"PRIVATE KEY\"") == true)
    }

    @Test("A CSR whose signature was altered is refused")
    func badSignature() throws {
        let pem = try TestPKI.csr(for: TestPKI.identity())
        var der = try PEMDocument(pemString: pem).derBytes
        der[der.count - 1] ^= 0x01
        let tampered = PEMDocument(type: "CERTIFICATE REQUEST", derBytes: der).pemString
        let error = issuanceError { _ = try issue(tampered) }
        #expect(error?.code == .badCSRSignature)
    }

    @Test("RSA keys under 2048 bits and unsupported curves are refused")
    func weakKeys() throws {
        let rsa1024 = Certificate.PrivateKey(try _RSA.Signing.PrivateKey(unsafeKeySize: .init(bitCount: 1024)))
        let id = try TestPKI.identity()
        let weak = issuanceError { _ = try issue(try WorkloadCSR.pem(WorkloadCSR.make(for: id, key: rsa1024))) }
        #expect(weak?.code == .unsupportedKey)
        #expect(weak?.message.contains("1024") == true)
        let p521 = Certificate.PrivateKey(P521.Signing.PrivateKey())
        let csr = try CertificateSigningRequest(
            version: .v1, subject: DistinguishedName(), privateKey: p521,
            attributes: .init(), signatureAlgorithm: .ecdsaWithSHA512
        )
        #expect(issuanceError { _ = try issue(try WorkloadCSR.pem(csr)) }?.code == .unsupportedKey)
    }

    @Test("A CSR for another identity is refused, naming both identities")
    func identityMismatch() throws {
        let csr = try TestPKI.csr(for: TestPKI.identity("admin", ns: "kube-system"))
        let error = issuanceError { _ = try issue(csr) }
        #expect(error?.code == .identityMismatch)
        #expect(error?.message.contains("spiffe://cluster.local/ns/kube-system/sa/admin") == true)
        #expect(error?.message.contains("spiffe://cluster.local/ns/default/sa/was") == true)
    }

    @Test("Two URI SANs, or DNS/IP SANs, are refused as forbidden-san")
    func forbiddenSANs() throws {
        let me = try TestPKI.identity().uri
        let cases: [[GeneralName]] = [
            [.uniformResourceIdentifier(me), .uniformResourceIdentifier("spiffe://cluster.local/ns/default/sa/other")],
            [.uniformResourceIdentifier(me), .dnsName("db.internal")],
            [.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))],
        ]
        for names in cases {
            let csr = try TestPKI.csr(extensions: try Certificate.Extensions { Critical(SubjectAlternativeNames(names)) })
            let error = issuanceError { _ = try issue(csr) }
            #expect(error?.code == .forbiddenSAN, "\(names)")
        }
    }

    @Test("A CSR asking to be a CA is refused")
    func caRequested() throws {
        let csr = try TestPKI.csr(extensions: try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
        })
        #expect(issuanceError { _ = try issue(csr) }?.code == .caRequested)
    }

    @Test("An identity in another trust domain is refused")
    func foreignTrustDomain() throws {
        let foreign = try SPIFFEID(trustDomain: TrustDomain("other.org"), namespace: "default", serviceAccount: "was")
        let error = issuanceError { _ = try issue(try TestPKI.csr(for: foreign), as: foreign) }
        #expect(error?.code == .foreignTrustDomain)
        #expect(error?.message.contains("other.org") == true)
    }

    @Test("The CSR digest and key type are reported for the ledger")
    func facts() throws {
        let pem = try TestPKI.csr(for: TestPKI.identity(), keyType: .ecP384)
        let issuance = try issue(pem)
        let der = try PEMDocument(pemString: pem).derBytes
        #expect(issuance.csrSHA256 == Hex.sha256(der))
        #expect(issuance.keyType == "ec-p384")
    }
}

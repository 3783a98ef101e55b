import Foundation
import MeshCACore
import MeshCATestSupport
import SwiftASN1
import Testing
@_spi(FixedExpiryValidationTime) import X509

@Suite("The X509-SVID profile of issued certificates")
struct CertificateProfileTests {
    /// The top-level fields of the DER tbsCertificate: version, serial, signature, issuer, validity, subject, ...
    func tbsFields(_ certificate: Certificate) throws -> [ASN1Node] {
        let root = try DER.parse(certificate.derBytes)
        guard case .constructed(let outer) = root.content, let tbs = Array(outer).first,
            case .constructed(let fields) = tbs.content
        else { throw IssuanceError(.malformedCSR, "not a certificate") }
        return Array(fields)
    }

    @Test("A leaf carries exactly the istiod-style SVID extensions, with the right criticality")
    func extensions() throws {
        let ca = try TestPKI(createdAt: TestPKI.fixedNow)
        let leaf = try ca.issue(at: TestPKI.fixedNow).issuance.certificate
        #expect(leaf.version == .v3)
        #expect(leaf.uriSANs == ["spiffe://cluster.local/ns/default/sa/was"])
        #expect(leaf.sanStrings.count == 1)
        let ext = leaf.extensions
        #expect(ext[oid: .X509ExtensionID.subjectAlternativeName]?.critical == true)
        #expect(ext[oid: .X509ExtensionID.keyUsage]?.critical == true)
        #expect(ext[oid: .X509ExtensionID.basicConstraints]?.critical == true)
        #expect(ext[oid: .X509ExtensionID.extendedKeyUsage]?.critical == false)
        #expect(try ext.basicConstraints == .notCertificateAuthority)
        let usage = try #require(try ext.keyUsage)
        #expect(usage.digitalSignature)
        #expect(!usage.keyEncipherment, "RFC 5480: no keyEncipherment on EC keys")
        #expect(!usage.keyCertSign && !usage.cRLSign)
        let eku = try #require(try ext.extendedKeyUsage)
        #expect(Array(eku) == [.serverAuth, .clientAuth])
        let rootSKI = try #require(try ca.root.extensions.subjectKeyIdentifier).keyIdentifier
        #expect(try ext.authorityKeyIdentifier?.keyIdentifier == rootSKI)
        #expect(try ext.subjectKeyIdentifier != nil)
        #expect(leaf.issuer == ca.root.subject)
        #expect(leaf.signatureAlgorithm == .ecdsaWithSHA256)
        #expect(ca.root.publicKey.isValidSignature(leaf.signature, for: leaf))
    }

    @Test("The subject is encoded as an empty SEQUENCE, not left out")
    func emptySubject() throws {
        let leaf = try TestPKI(createdAt: TestPKI.fixedNow).issue(at: TestPKI.fixedNow).issuance.certificate
        let fields = try tbsFields(leaf)
        #expect(Array(fields[5].encodedBytes) == [0x30, 0x00])
    }

    @Test("RSA workload keys get keyEncipherment, EC keys do not", arguments: [(KeyType.rsa2048, true), (.ecP384, false), (.ecP256, false)])
    func keyEncipherment(keyType: KeyType, expected: Bool) throws {
        let ca = try TestPKI(createdAt: TestPKI.fixedNow)
        let id = try TestPKI.identity()
        let csr = try TestPKI.csr(for: id, keyType: keyType)
        let issuance = try ca.authority.issue(IssuanceRequest(csrPEM: csr, identity: id), at: TestPKI.fixedNow)
        #expect(try issuance.certificate.extensions.keyUsage?.keyEncipherment == expected)
        #expect(issuance.keyType == keyType.rawValue)
    }

    @Test("Serials are random, positive, 128-bit and minimally DER-encoded")
    func serials() throws {
        let ca = try TestPKI(createdAt: TestPKI.fixedNow)
        var seen = Set<String>()
        for _ in 0..<50 {
            let leaf = try ca.issue(at: TestPKI.fixedNow).issuance.certificate
            let serial = try tbsFields(leaf)[1]
            let content = Array(serial.encodedBytes.dropFirst(2))
            #expect(content.count >= 16 && content.count <= 17)
            #expect(content[0] & 0x80 == 0, "negative serial")
            if content[0] == 0 { #expect(content[1] & 0x80 != 0, "non-minimal leading zero") }
            seen.insert(leaf.serialHex)
        }
        #expect(seen.count == 50)
    }

    @Test("The signature algorithm follows the CA key", arguments: [(KeyType.ecP256, Certificate.SignatureAlgorithm.ecdsaWithSHA256), (.ecP384, .ecdsaWithSHA384), (.rsa2048, .sha256WithRSAEncryption)])
    func signatureAlgorithm(caKey: KeyType, expected: Certificate.SignatureAlgorithm) throws {
        let ca = try TestPKI(keyType: caKey, createdAt: TestPKI.fixedNow)
        #expect(ca.root.signatureAlgorithm == expected)
        #expect(try ca.issue(at: TestPKI.fixedNow).issuance.certificate.signatureAlgorithm == expected)
    }

    @Test("The self-signed root is O=<trust domain>, CA=true critical, keyCertSign+cRLSign critical, with an SKI")
    func rootProfile() throws {
        let root = try TestPKI(createdAt: TestPKI.fixedNow).root
        #expect(root.subject == root.issuer)
        #expect(root.subject.description == "O=cluster.local")
        #expect(try root.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: nil))
        #expect(root.extensions[oid: .X509ExtensionID.basicConstraints]?.critical == true)
        let usage = try #require(try root.extensions.keyUsage)
        #expect(usage.keyCertSign && usage.cRLSign && !usage.digitalSignature)
        #expect(root.extensions[oid: .X509ExtensionID.keyUsage]?.critical == true)
        #expect(try root.extensions.subjectKeyIdentifier != nil)
        #expect(try root.extensions.subjectAlternativeNames == nil)
    }

    @Test("The Istio response chain is [leaf, root bundle], each element one PEM ending in a newline")
    func istioChain() throws {
        let issuance = try TestPKI(createdAt: TestPKI.fixedNow).issue(at: TestPKI.fixedNow).issuance
        let chain = issuance.istioCertChain
        #expect(chain.count == 2)
        #expect(chain.allSatisfy { $0.hasSuffix("-----END CERTIFICATE-----\n") })
        #expect(try Certificate.parseAll(pem: chain[0]) == [issuance.certificate])
        #expect(chain[1] == issuance.bundlePEM)
        #expect(issuance.certChainPEM == chain.joined())
    }

    @Test("The checked leaf passes the SPIFFE verifier policy with a critical SAN")
    func verifies() async throws {
        let ca = try TestPKI(createdAt: TestPKI.fixedNow)
        let leaf = try ca.issue(at: TestPKI.fixedNow).issuance.certificate
        var verifier = Verifier(rootCertificates: CertificateStore([ca.root])) {
            RFC5280Policy(fixedExpiryValidationTime: TestPKI.fixedNow)
            SPIFFEVerifierPolicy(trustDomain: ca.trustDomain, expectedID: try! ca.identity())
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore())
        guard case .validCertificate = result else {
            Issue.record("did not validate: \(result)")
            return
        }
        var wrongID = Verifier(rootCertificates: CertificateStore([ca.root])) {
            RFC5280Policy(fixedExpiryValidationTime: TestPKI.fixedNow)
            SPIFFEVerifierPolicy(trustDomain: ca.trustDomain, expectedID: try! ca.identity("other"))
        }
        guard case .couldNotValidate = await wrongID.validate(leaf: leaf, intermediates: CertificateStore()) else {
            Issue.record("a leaf for another identity validated")
            return
        }
    }
}

import MeshCACore
import MeshCATestSupport
import SwiftASN1
import Testing
import X509

@Suite("CSR extensions that cannot be decoded are refused, not skipped")
struct CSRExtensionParsingTests {
    /// Bodies that are not the DER the extension requires: an OCTET STRING, a BOOLEAN, a SEQUENCE cut short,
    /// and a well-formed SEQUENCE followed by a stray byte.
    static let garbage: [[UInt8]] = [[0x04, 0x00], [0x01, 0x01, 0xFF], [0x30, 0x05, 0x86, 0x03, 0x61], [0x30, 0x00, 0x00]]

    func refusal(_ oid: ASN1ObjectIdentifier, body: [UInt8], critical: Bool) throws -> IssuanceError? {
        let raw = Certificate.Extension(oid: oid, critical: critical, value: body[...])
        let csr = try TestPKI.csr(extensions: try Certificate.Extensions([raw]))
        return issuanceError { _ = try TestPKI(createdAt: TestPKI.fixedNow).authority.issue(IssuanceRequest(csrPEM: csr, identity: TestPKI.identity()), at: TestPKI.fixedNow) }
    }

    @Test("A SubjectAlternativeName extension that does not parse is refused as malformed-csr, naming it", arguments: garbage)
    func subjectAlternativeName(body: [UInt8]) throws {
        for critical in [true, false] {
            let error = try refusal(.X509ExtensionID.subjectAlternativeName, body: body, critical: critical)
            #expect(error?.code == .malformedCSR)
            #expect(error?.message.contains("SubjectAlternativeName extension (2.5.29.17) could not be parsed") == true)
            #expect(error?.message.contains("spiffe://cluster.local/ns/default/sa/was") == true)
        }
    }

    @Test("A BasicConstraints extension that does not parse is refused as malformed-csr, naming it", arguments: garbage)
    func basicConstraints(body: [UInt8]) throws {
        for critical in [true, false] {
            let error = try refusal(.X509ExtensionID.basicConstraints, body: body, critical: critical)
            #expect(error?.code == .malformedCSR)
            #expect(error?.message.contains("BasicConstraints extension (2.5.29.19) could not be parsed") == true)
        }
    }

    @Test("A well-formed CA=false BasicConstraints is still accepted")
    func notCA() throws {
        let csr = try TestPKI.csr(extensions: try Certificate.Extensions { BasicConstraints.notCertificateAuthority })
        let issued = try TestPKI(createdAt: TestPKI.fixedNow).authority.issue(IssuanceRequest(csrPEM: csr, identity: TestPKI.identity()), at: TestPKI.fixedNow)
        #expect(issued.certificate.uriSANs == ["spiffe://cluster.local/ns/default/sa/was"])
    }
}

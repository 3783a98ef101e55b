import Crypto
import MeshCACore
import SwiftASN1
import X509

/// CSRs as `CreateCertificate` delivers them: PEM text through the CA's whole issuance path
/// (`CertificateAuthority.issue`, which runs `WorkloadCSR.check`: PEM, PKCS#10, signature, key type, SANs,
/// BasicConstraints), then signing.
///
/// Each input is tried three ways: as PEM text; as DER wrapped in a `CERTIFICATE REQUEST` block; and, when
/// the DER parses as PKCS#10, re-signed with a fixed key so its attributes and extensions reach the checks
/// behind the signature (a mutated CSR almost never keeps a valid signature).
enum CSRFuzz {
    static let resigningKey = Certificate.PrivateKey(Fixtures.p256("meshca fuzz csr"))

    static func run(_ bytes: [UInt8]) {
        issue(String(decoding: bytes, as: UTF8.self))
        issue(PEMDocument(type: "CERTIFICATE REQUEST", derBytes: bytes).pemString)
        guard let parsed = try? CertificateSigningRequest(derEncoded: bytes) else { return }
        let resigned = try? CertificateSigningRequest(
            version: parsed.version, subject: parsed.subject, privateKey: resigningKey, attributes: parsed.attributes,
            signatureAlgorithm: .ecdsaWithSHA256)
        if let resigned, let pem = try? WorkloadCSR.pem(resigned) { issue(pem) }
    }

    private static func issue(_ pem: String) {
        guard let issuance = try? Fixtures.authority.issue(IssuanceRequest(csrPEM: pem, identity: Fixtures.identity), at: Fixtures.now)
        else { return }
        // An issued certificate carries the caller's identity and nothing else, whatever the CSR held.
        precondition(issuance.certificate.uriSANs == [Fixtures.identity.uri], "issued \(issuance.certificate.sanStrings)")
    }
}

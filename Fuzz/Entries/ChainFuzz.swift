import MeshCACore
import SwiftASN1
import X509

/// Certificate chains and bundles: PEM files read from disk (`cert-chain.pem`, `root-cert.pem`, a plug-in CA's
/// files, the agent's bundle) with `Certificate.parseAll(pem:)`, Istio's `cert_chain` answer
/// (`CredentialBundle`), and DER certificates as a TLS peer sends them; then what the daemon and agent do with
/// parsed certificates: fingerprints and SANs, the X509-SVID leaf rules, and path validation with the same
/// policies as the daemon's client-chain check (the first certificate as leaf, the others as roots and
/// intermediates).
enum ChainFuzz {
    static func run(_ bytes: [UInt8]) async {
        let text = String(decoding: bytes, as: UTF8.self)
        var certificates = (try? Certificate.parseAll(pem: text)) ?? []
        if certificates.isEmpty, let single = try? Certificate(derEncoded: bytes) { certificates = [single] }
        for certificate in certificates { inspect(certificate) }
        _ = try? CredentialBundle(istioChain: [text, text])
        guard let leaf = certificates.first else { return }
        var verifier = Verifier(rootCertificates: CertificateStore(certificates.dropFirst())) {
            RFC5280Policy()
            SPIFFEVerifierPolicy(trustDomain: Fixtures.trustDomain)
        }
        _ = await verifier.validate(leaf: leaf, intermediates: CertificateStore(certificates))
    }

    private static func inspect(_ certificate: Certificate) {
        // A parsed certificate serializes (Certificate.derBytes traps otherwise) and reads back as itself.
        let der = certificate.derBytes
        precondition((try? Certificate(derEncoded: der)) == certificate, "a parsed certificate does not survive DER")
        _ = certificate.pem
        _ = certificate.sha256Fingerprint
        _ = certificate.publicKey.sha256Fingerprint
        _ = certificate.serialHex
        _ = certificate.uriSANs
        _ = certificate.sanStrings
        _ = KeyType.of(certificate.publicKey)
        _ = SPIFFEVerifierPolicy.evaluate(leaf: certificate, trustDomain: Fixtures.trustDomain, expectedID: nil)
        _ = SPIFFEVerifierPolicy.evaluate(leaf: certificate, trustDomain: Fixtures.trustDomain, expectedID: Fixtures.identity)
    }
}

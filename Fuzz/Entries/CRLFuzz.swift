import MeshCACore
import X509

/// CRLs as the agent fetches them (`--crl-url`) and `meshca handshake --crl` reads them: one DER CRL or every
/// `X509 CRL` block of a PEM text (`CertificateRevocationList.all(in:)`), and the first block alone
/// (`init(pemEncoded:)`). Each CRL's signature is checked against every `CERTIFICATE` block in the same input
/// (the seeds carry the CA that signed them), as the agent checks against its roots.
enum CRLFuzz {
    static func run(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        _ = try? CertificateRevocationList(pemEncoded: text)
        guard let lists = try? CertificateRevocationList.all(in: bytes) else { return }
        let authorities = (try? Certificate.parseAll(pem: text)) ?? []
        for list in lists {
            // What was parsed is what is kept and served again: the same bytes, readable again.
            precondition((try? CertificateRevocationList(derEncoded: list.derBytes)) == list, "a parsed CRL does not read back")
            precondition((try? CertificateRevocationList(pemEncoded: list.pem)) == list, "a parsed CRL does not survive PEM")
            for entry in list.entries { precondition(list.entry(for: entry.serialNumber) != nil) }
            for authority in authorities + [Fixtures.authority.signingIdentity.certificate] {
                _ = list.isSigned(by: authority)
            }
        }
    }
}

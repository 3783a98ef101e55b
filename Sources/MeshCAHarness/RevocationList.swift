import COpenSSL
import Foundation
import MeshCACore
import X509

/// The CRLs `meshca handshake --crl FILE` checks peers against: every `X509 CRL` block of a PEM file, or one
/// DER CRL. Loading reads them with meshca's parser (for the explanations: when and why a serial was revoked)
/// and OpenSSL checks them in the handshake (`X509_V_FLAG_CRL_CHECK`: the peer's leaf must be covered by a CRL
/// from its issuer that is current and not list it).
public struct RevocationList: Sendable {
    /// The file the CRLs came from, for messages.
    public let path: String
    /// The CRLs, in file order.
    public let crls: [CertificateRevocationList]

    /// Loads `path`. Throws ``HandshakeFailure`` ``HandshakeFailure/Code/crlUnusable`` when the file is missing,
    /// unreadable, or holds no CRL meshca and OpenSSL can read; `role` is the side that would use it.
    public static func load(from path: String, role: HandshakeReport.Role) throws -> RevocationList {
        let fix =
            "Fetch the CA's current CRL: `meshca crl --out \(path)` on the CA host, or "
            + "`curl -o \(path) http://MONITORING/crl.pem` from a running `meshca serve`."
        guard let data = FileManager.default.contents(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw HandshakeFailure(
                .crlUnusable, detectedBy: role,
                cause: exists
                    ? "The CRL file \(path) cannot be read (permissions?)." : "The CRL file \(path) does not exist.",
                fix: fix)
        }
        var crls: [CertificateRevocationList] = []
        var problem = ""
        do {
            crls = try CertificateRevocationList.all(in: [UInt8](data))
        } catch {
            problem = "\(error)"
        }
        guard !crls.isEmpty, problem.isEmpty,
            crls.allSatisfy({
                OpenSSLLibrary.crl(der: $0.derBytes).map {
                    X509_CRL_free($0)
                    return true
                } ?? false
            })
        else {
            throw HandshakeFailure(
                .crlUnusable, detectedBy: role,
                cause:
                    "\(path) is not an X.509 v2 CRL (PEM `-----BEGIN X509 CRL-----` or DER) that meshca and OpenSSL can read.",
                fix: fix, rawReason: problem)
        }
        return RevocationList(path: path, crls: crls)
    }

    /// The entry revoking `serialHex` (lowercase hex, as `CertificateSummary.serial`) in any of the CRLs.
    func entry(forSerial serialHex: String) -> CertificateRevocationList.Entry? {
        guard let serial = Certificate.SerialNumber(hex: serialHex) else { return nil }
        return crls.lazy.compactMap { $0.entry(for: serial) }.first
    }
}

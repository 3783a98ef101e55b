import COpenSSL
import Foundation
import MeshCACore

extension PeerVerifier {
    /// Explains a refusal from the CRL check (`meshca handshake --crl`): a revoked peer, or a CRL that cannot
    /// vouch for the peer (from another CA, expired, not yet valid, badly signed).
    static func revocationFailure(
        _ verdict: Verdict, certificate: CertificateSummary?, verifier: HandshakeReport.Role,
        revocations: RevocationList?, raw: String, clock: String
    ) -> HandshakeFailure {
        let peer = verifier.peer
        let path = revocations?.path ?? "the --crl file"
        let refetch =
            "Fetch the CA's current CRL (`meshca crl --out \(path)` on the CA host, or `curl -o \(path) "
            + "http://MONITORING/crl.pem` from `meshca serve`), then retry."
        let nextUpdates = (revocations?.crls ?? []).map { CertificateSummary.timestamp($0.nextUpdate) }
            .joined(separator: ", ")
        switch verdict.verifyError {
        case X509_V_ERR_CERT_REVOKED:
            let serial = certificate?.serial ?? verdict.peerChain.first?.serial ?? "unknown"
            let name = certificate?.name ?? "certificate"
            var cause = "The \(peer)'s certificate \(name) (serial \(serial)) is revoked"
            if let entry = revocations?.entry(forSerial: serial) {
                cause +=
                    " since \(CertificateSummary.timestamp(entry.revocationDate)) (reason: \(entry.reason))"
            }
            cause += ", according to the CRL \(path)."
            return HandshakeFailure(
                .certificateRevoked, detectedBy: verifier, cause: cause,
                fix:
                    "The \(peer) must get a new certificate: a revoked certificate cannot renew, so its agent must "
                    + "bootstrap again with a new join token (`meshca token create`). See the revocation with "
                    + "`meshca audit show \(serial)` on the CA host.",
                rawReason: raw)
        case X509_V_ERR_UNABLE_TO_GET_CRL:
            return HandshakeFailure(
                .crlUnusable, detectedBy: verifier,
                cause:
                    "The CRL \(path) is not from the CA that issued the \(peer)'s certificate (issuer "
                    + "\(certificate?.issuer ?? "unknown")), so revocation cannot be checked and the \(peer) is refused.",
                fix: "Give --crl the CRL of the \(peer)'s CA. " + refetch, rawReason: raw)
        case X509_V_ERR_CRL_HAS_EXPIRED:
            return HandshakeFailure(
                .crlUnusable, detectedBy: verifier,
                cause:
                    "The CRL \(path) has expired (nextUpdate \(nextUpdates)); \(clock). A stale CRL could miss revocations, so the \(peer) is refused.",
                fix: refetch, rawReason: raw)
        case X509_V_ERR_CRL_NOT_YET_VALID:
            return HandshakeFailure(
                .crlUnusable, detectedBy: verifier,
                cause: "The CRL \(path) is not valid yet; \(clock). The CA's clock is ahead of this host's.",
                fix: "Synchronize the clocks (NTP/chrony), then retry.", rawReason: raw)
        default:
            return HandshakeFailure(
                .crlUnusable, detectedBy: verifier,
                cause:
                    "The CRL \(path) does not verify against the \(verifier)'s root-cert.pem (bad signature or damaged).",
                fix: refetch, rawReason: raw)
        }
    }
}

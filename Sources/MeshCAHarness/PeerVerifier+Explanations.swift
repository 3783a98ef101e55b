import COpenSSL
import Foundation

extension PeerVerifier {
    /// Explains why OpenSSL's path validation refused the peer's chain, naming the certificate, the times
    /// or the roots involved.
    static func failure(
        for verdict: Verdict, verifier: HandshakeReport.Role, trustedRoots: [CertificateSummary],
        revocations: RevocationList? = nil, now: Date
    ) -> HandshakeFailure {
        let peer = verifier.peer
        let depth = verdict.errorDepth
        let certificate =
            verdict.errorCertificate ?? (verdict.peerChain.indices.contains(depth) ? verdict.peerChain[depth] : nil)
        let which = certificate.map { "\($0.kind(atDepth: depth)) \($0.name)" } ?? "certificate at depth \(depth)"
        let raw = "X509_V_ERR \(verdict.verifyError): \(verdict.verifyErrorText) (depth \(depth))"
        let clock = "the \(verifier)'s clock says \(CertificateSummary.timestamp(now))"
        switch verdict.verifyError {
        case X509_V_ERR_CERT_HAS_EXPIRED, X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
            let when =
                certificate.map { "expired at \(CertificateSummary.timestamp($0.notAfter)) (\($0.timeLeftText))" }
                ?? "has expired"
            let fix =
                depth == 0
                ? "Renew it: issue the \(peer)'s files again (`meshca issue`), and check why its agent stopped renewing (workload certificates live 24h by default)."
                : "Rotate the expired CA: issue a new root or intermediate, add it to every root-cert.pem, then re-issue the workloads' certificates."
            return HandshakeFailure(
                .certificateExpired, detectedBy: verifier,
                cause: "The \(peer)'s \(which) \(when); \(clock).", fix: fix, rawReason: raw
            )
        case X509_V_ERR_CERT_NOT_YET_VALID, X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
            let when =
                certificate.map {
                    "is not valid until \(CertificateSummary.timestamp($0.notBefore)) (\($0.timeLeftText))"
                } ?? "is not valid yet"
            return HandshakeFailure(
                .certificateNotYetValid, detectedBy: verifier,
                cause:
                    "The \(peer)'s \(which) \(when); \(clock). The CA's clock is ahead of this host's (clock skew), or the certificate was issued for a later time.",
                fix:
                    "Synchronize the clocks of the CA and both hosts (NTP/chrony); meshca backdates notBefore by 2 minutes, so only larger skew fails. Then retry, or re-issue the certificate.",
                rawReason: raw
            )
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
            X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN,
            X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, X509_V_ERR_CERT_SIGNATURE_FAILURE:
            return untrustedChain(verdict, verifier: verifier, trustedRoots: trustedRoots, raw: raw)
        case X509_V_ERR_CERT_REVOKED, X509_V_ERR_UNABLE_TO_GET_CRL, X509_V_ERR_CRL_HAS_EXPIRED,
            X509_V_ERR_CRL_NOT_YET_VALID, X509_V_ERR_CRL_SIGNATURE_FAILURE, X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE,
            X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD, X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
            return revocationFailure(
                verdict, certificate: certificate, verifier: verifier, revocations: revocations, raw: raw, clock: clock)
        default:
            return HandshakeFailure(
                .handshakeFailed, detectedBy: verifier,
                cause: "The \(peer)'s \(which) failed OpenSSL's path validation: \(verdict.verifyErrorText).",
                fix:
                    "Check the \(peer)'s files with `meshca inspect DIR`, and issue them again with `meshca issue` if they are not meshca's profile.",
                rawReason: raw
            )
        }
    }

    /// The chain leads to no root the verifying side trusts: a different CA, or a root rotation that has
    /// not reached the verifying side.
    private static func untrustedChain(
        _ verdict: Verdict, verifier: HandshakeReport.Role, trustedRoots: [CertificateSummary], raw: String
    ) -> HandshakeFailure {
        let peer = verifier.peer
        let top = verdict.peerChain.last
        let issuerName: String
        if let top, top.isSelfIssued {
            issuerName =
                "\(top.subject.isEmpty ? "an unnamed root" : top.subject) (root sha256:\(top.sha256.prefix(16)))"
        } else {
            issuerName =
                top.map { "\($0.issuer.isEmpty ? "an unnamed CA" : $0.issuer) (not included in its chain)" }
                ?? "an unknown CA"
        }
        let trusted = trustedRoots.map {
            "\($0.subject.isEmpty ? "(unnamed)" : $0.subject) (sha256:\($0.sha256.prefix(16)))"
        }
        .joined(separator: ", ")
        var cause =
            "The \(peer)'s certificate chain does not verify against the \(verifier)'s root-cert.pem: it was issued by \(issuerName), but the \(verifier) trusts only \(trusted)."
        let sameName =
            top.map { candidate in
                trustedRoots.contains {
                    $0.subject == (candidate.isSelfIssued ? candidate.subject : candidate.issuer)
                        && $0.sha256 != candidate.sha256
                }
            } ?? false
        cause +=
            sameName
            ? " Same name, different key: two CAs for one trust domain, or a root rotation that has not reached the \(verifier) yet."
            : " The two workloads have different CAs."
        return HandshakeFailure(
            .untrustedChain, detectedBy: verifier, cause: cause,
            fix:
                "Give the \(verifier) the root that issued the \(peer)'s certificate (during a root rotation, every root-cert.pem must hold the old and the new root), or issue the \(peer)'s certificate from the CA the \(verifier) trusts.",
            rawReason: raw
        )
    }
}

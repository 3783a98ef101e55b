import COpenSSL
import Foundation
import MeshCACore
import SwiftASN1
import X509

/// The check one side runs on its peer's certificate chain, installed with
/// `SSL_CTX_set_cert_verify_callback` so that it runs inside the handshake, as a sidecar's would: OpenSSL's
/// own path validation (`X509_verify_cert`) against the trusted roots, then the SPIFFE rules in Swift.
/// A refusal fails the handshake and OpenSSL sends the peer the matching alert.
///
/// One verifier belongs to one TLS context, and each context serves one connection, so what it records
/// describes that connection. It is used only on the thread that runs the handshake.
final class PeerVerifier {
    /// What the verifier saw and decided.
    struct Verdict: Sendable {
        /// The chain the peer sent, leaf first.
        var peerChain: [CertificateSummary] = []
        /// OpenSSL's verify result (`X509_V_OK` when the path validated).
        var verifyError: Int32 = Int32(X509_V_OK)
        /// OpenSSL's text for ``verifyError``.
        var verifyErrorText: String = "ok"
        /// The depth of the certificate OpenSSL complained about (0 = leaf).
        var errorDepth: Int = 0
        /// The certificate OpenSSL complained about.
        var errorCertificate: CertificateSummary?
        /// The peer's SPIFFE ID, once path validation and the SPIFFE checks passed.
        var peerID: SPIFFEID?
        /// Why the peer was refused; `nil` when it was accepted.
        var failure: HandshakeFailure?
    }

    let identityCheck: PeerIdentityCheck
    let trustedRoots: [CertificateSummary]
    /// The CRLs given with `--crl`, to explain a revoked peer; nil when none were given.
    let revocations: RevocationList?
    /// Set once the callback ran; `nil` when the peer sent no certificate.
    private(set) var verdict: Verdict?

    init(identityCheck: PeerIdentityCheck, trustedRoots: [CertificateSummary], revocations: RevocationList? = nil) {
        self.identityCheck = identityCheck
        self.trustedRoots = trustedRoots
        self.revocations = revocations
    }

    /// The C callback. `argument` is this verifier, unretained: the ``TLSContext`` that installs it keeps it alive.
    static let callback: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?) -> Int32 = {
        storeContext, argument in
        guard let storeContext, let argument else { return 0 }
        let verifier = Unmanaged<PeerVerifier>.fromOpaque(argument).takeUnretainedValue()
        return verifier.verify(storeContext) ? 1 : 0
    }

    /// Runs path validation and the SPIFFE checks on the chain in `storeContext`; `true` accepts the peer.
    private func verify(_ storeContext: OpaquePointer) -> Bool {
        let now = Date()
        var verdict = Verdict()
        let sent = OpenSSLLibrary.derChain(of: X509_STORE_CTX_get0_untrusted(storeContext))
        verdict.peerChain = sent.compactMap { CertificateSummary(der: $0, now: now) }
        let valid = X509_verify_cert(storeContext) == 1
        // Drop whatever X509_verify_cert queued: the store context holds the reason, and the handshake's own
        // errors, queued after this callback returns, are the ones the diagnosis reads.
        _ = OpenSSLErrors.drain()
        if !valid {
            verdict.verifyError = X509_STORE_CTX_get_error(storeContext)
            verdict.verifyErrorText = OpenSSLLibrary.verifyErrorText(verdict.verifyError)
            verdict.errorDepth = Int(X509_STORE_CTX_get_error_depth(storeContext))
            if let current = X509_STORE_CTX_get_current_cert(storeContext) {
                verdict.errorCertificate = CertificateSummary(der: OpenSSLLibrary.der(of: current), now: now)
            }
            verdict.failure = PeerVerifier.failure(
                for: verdict, verifier: identityCheck.verifier, trustedRoots: trustedRoots, revocations: revocations,
                now: now)
            self.verdict = verdict
            return false
        }
        guard let leafPointer = X509_STORE_CTX_get0_cert(storeContext),
            let leaf = try? Certificate(derEncoded: OpenSSLLibrary.der(of: leafPointer))
        else {
            verdict.failure = HandshakeFailure(
                .notAnSVID, detectedBy: identityCheck.verifier,
                cause:
                    "The \(identityCheck.verifier.peer)'s certificate passed OpenSSL's checks but swift-certificates cannot parse it.",
                fix: "Issue the \(identityCheck.verifier.peer)'s certificate again with `meshca issue`.",
                rawReason: "Certificate(derEncoded:) failed"
            )
            return reject(verdict, storeContext)
        }
        switch identityCheck.evaluate(leaf) {
        case .success(let id):
            verdict.peerID = id
            self.verdict = verdict
            return true
        case .failure(let failure):
            verdict.failure = failure
            return reject(verdict, storeContext)
        }
    }

    /// Records a SPIFFE refusal and marks the store context failed, so OpenSSL aborts the handshake.
    private func reject(_ verdict: Verdict, _ storeContext: OpaquePointer) -> Bool {
        var verdict = verdict
        verdict.verifyError = Int32(X509_V_ERR_APPLICATION_VERIFICATION)
        verdict.verifyErrorText = "SPIFFE check failed"
        self.verdict = verdict
        X509_STORE_CTX_set_error(storeContext, Int32(X509_V_ERR_APPLICATION_VERIFICATION))
        return false
    }
}

import COpenSSL
import Foundation
import MeshCACore
import X509

/// An OpenSSL `SSL_CTX` for one side of one connection, freed on deinit: the side's certificate chain and
/// key (when it has them), the roots it trusts, and the ``PeerVerifier`` that checks the peer.
///
/// A fresh context per connection is cheap and means a listener picks up renewed files on its next
/// connection. Used only on the thread that created it.
final class TLSContext {
    /// Everything needed to build a context; a Sendable value that can cross to a handshake thread.
    struct Configuration: Sendable {
        /// Which side this context is for.
        var role: HandshakeReport.Role
        /// This side's files; `nil` for a client that presents no certificate.
        var credentials: HandshakeCredentials?
        /// The roots the peer's chain must lead to.
        var trustedRoots: [Certificate]
        /// The SPIFFE rules for the peer.
        var identityCheck: PeerIdentityCheck
        /// For a server: whether a client certificate is required (STRICT) or only requested (PERMISSIVE).
        var requireClientCertificate: Bool = true
        /// CRLs the peer's leaf is checked against (`--crl`); nil checks no revocation.
        var revocations: RevocationList? = nil
    }

    let pointer: OpaquePointer
    let verifier: PeerVerifier

    /// The TLS 1.2 suites a harness server offers, in OpenSSL's spelling (the list `meshca serve` offers too).
    static let serverCipherSuites =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
        + "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

    /// Builds the context. Throws ``HandshakeFailure`` when OpenSSL refuses the key
    /// (``HandshakeFailure/Code/malformedFile``) or the key does not match the leaf (``HandshakeFailure/Code/keyMismatch``).
    init(_ configuration: Configuration) throws {
        _ = OpenSSLLibrary.prepared
        let role = configuration.role
        guard let context = SSL_CTX_new(role == .server ? TLS_server_method() : TLS_client_method()) else {
            throw Self.internalFailure(role, "SSL_CTX_new failed")
        }
        pointer = context
        let now = Date()
        verifier = PeerVerifier(
            identityCheck: configuration.identityCheck,
            trustedRoots: configuration.trustedRoots.map { CertificateSummary($0, now: now) },
            revocations: configuration.revocations
        )
        // Istio's sidecars accept TLS 1.2 and 1.3; so does the harness.
        _ = meshca_SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION)
        // As a server, only the TLS 1.2 suites Istio's listeners offer (ECDHE with AEAD: no CBC, no SHA-1 MAC), as the
        // CA's own listener does; TLS 1.3 suites are all AEAD.
        if role == .server { _ = SSL_CTX_set_cipher_list(context, Self.serverCipherSuites) }
        // No session tickets: every connection is a full handshake with a full certificate check.
        _ = SSL_CTX_set_num_tickets(context, 0)
        if let credentials = configuration.credentials {
            try useCredentials(credentials, role: role)
        }
        let store = SSL_CTX_get_cert_store(context)
        for root in configuration.trustedRoots {
            guard let x509 = OpenSSLLibrary.x509(der: root.derBytes) else { continue }
            X509_STORE_add_cert(store, x509)
            X509_free(x509)
        }
        if let revocations = configuration.revocations {
            for crl in revocations.crls {
                guard let x509CRL = OpenSSLLibrary.crl(der: crl.derBytes) else { continue }
                X509_STORE_add_crl(store, x509CRL)
                X509_CRL_free(x509CRL)
            }
            // The leaf only (as a sidecar checks workload certificates): it must be covered by a current CRL
            // from its issuer and not be listed in it.
            X509_STORE_set_flags(store, UInt(X509_V_FLAG_CRL_CHECK))
        }
        var mode = SSL_VERIFY_PEER
        if role == .server && configuration.requireClientCertificate { mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT }
        SSL_CTX_set_verify(context, mode, nil)
        SSL_CTX_set_cert_verify_callback(context, PeerVerifier.callback, Unmanaged.passUnretained(verifier).toOpaque())
    }

    deinit { SSL_CTX_free(pointer) }

    /// Installs the leaf, the rest of `cert-chain.pem` as the chain to send, and the key, checking that
    /// the key belongs to the leaf.
    private func useCredentials(_ credentials: HandshakeCredentials, role: HandshakeReport.Role) throws {
        let keyPath = credentials.directory + "/" + HandshakeCredentials.keyFile
        let chainPath = credentials.directory + "/" + HandshakeCredentials.chainFile
        _ = OpenSSLErrors.drain()
        guard let leaf = OpenSSLLibrary.x509(der: credentials.leaf.derBytes) else {
            throw HandshakeFailure(
                .malformedFile, detectedBy: role,
                cause: "OpenSSL cannot read the leaf certificate in the \(role)'s \(chainPath).",
                fix: "Issue the \(role)'s files again (`meshca issue --out \(credentials.directory)`).",
                rawReason: OpenSSLErrors.drain().text
            )
        }
        defer { X509_free(leaf) }
        guard let key = OpenSSLLibrary.privateKey(pem: credentials.keyPEM) else {
            throw HandshakeFailure(
                .malformedFile, detectedBy: role,
                cause:
                    "OpenSSL cannot read the private key in the \(role)'s \(keyPath) (damaged, encrypted, or an unsupported type).",
                fix:
                    "Restore key.pem, or issue the \(role)'s files again (`meshca issue --out \(credentials.directory)`); meshca writes unencrypted PKCS#8.",
                rawReason: OpenSSLErrors.drain().text
            )
        }
        defer { EVP_PKEY_free(key) }
        guard X509_check_private_key(leaf, key) == 1 else {
            let leafID = credentials.leaf.uriSANs.first ?? credentials.leaf.subject.description
            throw HandshakeFailure(
                .keyMismatch, detectedBy: role,
                cause:
                    "The \(role)'s \(keyPath) is not the private key of the leaf certificate (\(leafID)) in \(chainPath); the files come from different issuances.",
                fix:
                    "Issue the \(role)'s files again so key and certificate are written together (`meshca issue --out \(credentials.directory)`), or restore the key.pem that belongs to this certificate.",
                rawReason: OpenSSLErrors.drain().text
            )
        }
        guard SSL_CTX_use_certificate(pointer, leaf) == 1, SSL_CTX_use_PrivateKey(pointer, key) == 1 else {
            throw Self.internalFailure(role, OpenSSLErrors.drain().text)
        }
        for certificate in credentials.chain.dropFirst() {
            guard let x509 = OpenSSLLibrary.x509(der: certificate.derBytes) else { continue }
            _ = meshca_SSL_CTX_add1_chain_cert(pointer, x509)
            X509_free(x509)
        }
    }

    /// A failure of OpenSSL itself (out of memory, a broken library), not of the files.
    private static func internalFailure(_ role: HandshakeReport.Role, _ raw: String) -> HandshakeFailure {
        HandshakeFailure(
            .handshakeFailed, detectedBy: role,
            cause: "OpenSSL could not set up the \(role)'s TLS context.",
            fix:
                "Check the system OpenSSL installation (`openssl version`); this is not caused by the certificate files.",
            rawReason: raw
        )
    }
}

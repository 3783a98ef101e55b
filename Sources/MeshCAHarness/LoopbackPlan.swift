import MeshCACore
import X509

/// Who trusts what in a ``LoopbackHandshake``: each side's TLS settings, the roots it verifies its peer
/// against, and the trust domain the SPIFFE checks demand.
///
/// The server trusts its own `root-cert.pem` and demands its own trust domain. The client does the same
/// with its files; a client without a certificate borrows the server's `root-cert.pem` (it is "in the mesh"
/// but has no identity), and takes the trust domain from `--expect-server-id` or else the server's.
struct LoopbackPlan: Sendable {
    let serverKind: HandshakeServer.Kind
    let clientKind: HandshakeClient.Kind
    private let bothPlaintext: Bool

    init(handshake: LoopbackHandshake, serverCredentials: HandshakeCredentials?, clientCredentials: HandshakeCredentials?)
    {
        let serverID = serverCredentials?.identity
        let serverCheck = PeerIdentityCheck(
            verifier: .server, trustDomain: serverID?.trustDomain,
            trustDomainSource: serverID.map { "its own SPIFFE ID \($0.uri)" }
                ?? "nowhere: the server's leaf has no SPIFFE ID",
            expectedID: handshake.expectedClientID
        )
        if handshake.server == .plaintext {
            serverKind = .plaintext
        } else {
            serverKind = .tls(
                TLSContext.Configuration(
                    role: .server, credentials: serverCredentials, trustedRoots: serverCredentials?.roots ?? [],
                    identityCheck: serverCheck, requireClientCertificate: handshake.mode == .strict,
                    revocations: handshake.revocations
                ),
                mode: handshake.mode
            )
        }
        let clientTrustDomain: TrustDomain?
        let source: String
        if let clientID = clientCredentials?.identity {
            (clientTrustDomain, source) = (clientID.trustDomain, "its own SPIFFE ID \(clientID.uri)")
        } else if let expected = handshake.expectedServerID {
            (clientTrustDomain, source) = (expected.trustDomain, "--expect-server-id \(expected.uri)")
        } else {
            (clientTrustDomain, source) = (serverID?.trustDomain, "the server's root-cert.pem, which it borrows")
        }
        let clientCheck = PeerIdentityCheck(
            verifier: .client, trustDomain: clientTrustDomain, trustDomainSource: source,
            expectedID: handshake.expectedServerID
        )
        if handshake.client == .plaintext {
            clientKind = .plaintext(host: "127.0.0.1")
        } else {
            clientKind = .tls(
                TLSContext.Configuration(
                    role: .client, credentials: clientCredentials,
                    trustedRoots: clientCredentials?.roots ?? serverCredentials?.roots ?? [], identityCheck: clientCheck,
                    revocations: handshake.revocations
                ),
                serverName: nil
            )
        }
        bothPlaintext = handshake.server == .plaintext && handshake.client == .plaintext
    }

    /// Builds each TLS context once, before any socket exists, so a key that does not match its
    /// certificate is reported as such rather than as a handshake error.
    func validate() -> HandshakeFailure? {
        if bothPlaintext {
            return HandshakeFailure(
                .handshakeFailed, detectedBy: .client,
                cause: "Both the server and the client are plaintext, so there is no TLS to test.",
                fix: "Give at least one side its credentials directory (--server DIR or --client DIR)."
            )
        }
        do {
            if case .tls(let configuration, _) = serverKind { _ = try TLSContext(configuration) }
            if case .tls(let configuration, _) = clientKind { _ = try TLSContext(configuration) }
        } catch {
            return error as? HandshakeFailure
        }
        return nil
    }
}

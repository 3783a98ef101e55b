import COpenSSL
import Foundation
import MeshCACore

/// Turns what the two sides observed into the one failure a person should fix first, or none.
///
/// Either observation may be missing: with `--connect` the server is a real peer, with `--listen` the
/// client is. The verifying side's own verdict always wins, because it knows the precise reason; the
/// other side only ever sees an alert or a reset.
struct HandshakeDiagnosis {
    /// The server's mode, when known.
    var mode: HandshakeMode?
    /// Whether the server is a plaintext server (loopback `--server plaintext`).
    var serverIsPlaintext = false
    /// Whether the client presented (or had) a certificate.
    var clientHasCertificate = true
    /// The client ID the server expects, checked here when the client had no certificate to check.
    var expectedClientID: SPIFFEID?
    /// The bound every read and write had, for the timeout message.
    var timeout: Duration
    var server: SideObservation?
    var client: SideObservation?

    /// The failure, with both sides' raw reasons appended; `nil` when everything held.
    func failure() -> HandshakeFailure? {
        guard let found = primaryFailure() else { return nil }
        let sides = [server, client].compactMap { $0 }
        let raws = sides.compactMap { side in side.rawText.map { "\(side.role): \($0)" } }
        return raws.reduce(found) { $0.addingRawReason($1) }
    }

    private func primaryFailure() -> HandshakeFailure? {
        if let setup = server?.setupFailure ?? client?.setupFailure { return setup }
        if let refusal = server?.verdict?.failure ?? client?.verdict?.failure { return refusal }
        if let server, server.spokeTLS == false, server.servedPlaintext, !serverIsPlaintext {
            return expectedClientID.map { plaintextClientNotExpected($0) } ?? plaintextAnswerCheck()
        }
        if let server, !serverIsPlaintext, !server.firstBytes.isEmpty, !server.firstBytesAreTLS {
            return plaintextToTLSServer(server)
        }
        if serverIsPlaintext || client?.errors.contains(sslReason: SSL_R_WRONG_VERSION_NUMBER) == true
            || client?.errors.contains(sslReason: SSL_R_PACKET_LENGTH_TOO_LONG) == true
        {
            return tlsToPlaintextServer()
        }
        if server?.errors.contains(sslReason: SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) == true
            || client?.errors.receivedAlert?.number == 116
        {
            return clientCertificateRequired(detectedBy: server != nil ? .server : .client)
        }
        if let alert = client?.errors.receivedAlert, clientHasCertificate {
            return rejectedByPeer(alert, detectedBy: .client)
        }
        if let alert = server?.errors.receivedAlert {
            return rejectedByPeer(alert, detectedBy: .server)
        }
        if let stuck = [client, server].compactMap({ $0 }).first(where: { $0.timedOut }) {
            return HandshakeFailure(
                .timeout, detectedBy: stuck.role,
                cause:
                    "The \(stuck.role.peer) did not answer the \(stuck.role) within \(HumanDuration.format(timeout)).",
                fix:
                    "Check the address and that a TLS server is listening there (a firewall may drop packets silently); a plaintext server that waits for a request line (a ClientHello has none) also looks like this. Raise --timeout for a slow network."
            )
        }
        let sides = [client, server].compactMap { $0 }
        if let closed = sides.first(where: { !$0.handshakeCompleted && ($0.peerClosed || $0.systemError == ECONNRESET) }
        ) {
            return HandshakeFailure(
                .connectionClosed, detectedBy: closed.role,
                cause: "The \(closed.role.peer) closed the connection during the handshake without a TLS alert.",
                fix:
                    "Look at the \(closed.role.peer)'s log: a server that does not speak TLS on this port, or a proxy that refuses this address, closes connections like this."
            )
        }
        if let failed = sides.first(where: { $0.spokeTLS && !$0.handshakeCompleted }) {
            return HandshakeFailure(
                .handshakeFailed, detectedBy: failed.role,
                cause:
                    "The TLS handshake failed on the \(failed.role)'s side: \(failed.errors.entries.last?.text ?? "no OpenSSL reason").",
                fix:
                    "Compare both sides' TLS settings (versions, key types); the raw reason below names what OpenSSL refused."
            )
        }
        if let client, client.refusedAfterHandshake {
            return HandshakeFailure(
                .connectionClosed, detectedBy: .client,
                cause: "The server ended the connection right after the handshake.",
                fix:
                    "Look at the server's log; an authorization policy refusing this client's SPIFFE ID ends connections this way."
            )
        }
        if let expectedClientID, server != nil, server?.peerSentCertificate == false {
            return HandshakeFailure(
                .unexpectedPeerID, detectedBy: .server,
                cause:
                    "The server expects the client to be \(expectedClientID.uri) (--expect-client-id), but the client presented no certificate (PERMISSIVE accepted it without an identity).",
                fix:
                    "Give the client its cert-chain.pem and key.pem (a sidecar, or --client DIR), or drop --expect-client-id."
            )
        }
        return nil
    }

    /// PERMISSIVE served a plaintext client: a success, as long as the client got the answer.
    private func plaintextAnswerCheck() -> HandshakeFailure? {
        guard let client else { return nil }
        if String(decoding: client.firstBytes, as: UTF8.self).hasPrefix("HTTP/1.1 200") { return nil }
        return HandshakeFailure(
            .connectionClosed, detectedBy: .client,
            cause: "The PERMISSIVE server accepted the plaintext client, but the client did not receive its answer.",
            fix: "Retry with a longer --timeout; if it persists, report it with the raw reason below."
        )
    }

    private func plaintextClientNotExpected(_ expected: SPIFFEID) -> HandshakeFailure {
        HandshakeFailure(
            .unexpectedPeerID, detectedBy: .server,
            cause:
                "The server expects the client to be \(expected.uri) (--expect-client-id), but the client sent plaintext and has no identity (PERMISSIVE accepted it).",
            fix: "Make the client speak mTLS with its own certificate (a sidecar), or drop --expect-client-id."
        )
    }

    private func plaintextToTLSServer(_ server: SideObservation) -> HandshakeFailure {
        let strict = mode == .strict ? "STRICT and speaks only mTLS" : "a TLS server"
        return HandshakeFailure(
            .plaintextToTLSServer, detectedBy: .server,
            cause:
                "The client sent plaintext (\(server.firstBytesText)) to the server, which is \(strict); the server dropped the connection, so the client sees \"connection reset by peer\" or an empty reply.",
            fix:
                "Make the client speak mTLS (inject a sidecar, or run it with its own certificate: --client DIR), or set the server to PERMISSIVE while clients without sidecars migrate."
        )
    }

    private func tlsToPlaintextServer() -> HandshakeFailure {
        let answer =
            serverIsPlaintext
            ? "it answered in plaintext (\"HTTP/1.1 400 Bad Request\")"
            : "it answered with bytes that are not a TLS record"
        return HandshakeFailure(
            .tlsToPlaintextServer, detectedBy: .client,
            cause:
                "The client sent a TLS ClientHello, but the server does not speak TLS on this port (no sidecar, or mTLS disabled for it): \(answer).",
            fix:
                "Give the server a sidecar or its own TLS certificate (cert-chain.pem, key.pem), or make the client send plaintext to it (in Istio, a DestinationRule with tls.mode DISABLE for that host)."
        )
    }

    private func clientCertificateRequired(detectedBy role: HandshakeReport.Role) -> HandshakeFailure {
        let mode = self.mode.map { "\($0)" } ?? "STRICT"
        return HandshakeFailure(
            .clientCertificateRequired, detectedBy: role,
            cause:
                "The server is \(mode) and requires a client certificate, but the client presented none; the server ended the handshake (alert certificate_required).",
            fix:
                "Give the client its cert-chain.pem and key.pem (inject a sidecar, or --client DIR / --certs DIR), or set the server to PERMISSIVE while clients without certificates migrate."
        )
    }

    private func rejectedByPeer(_ alert: TLSAlert, detectedBy role: HandshakeReport.Role) -> HandshakeFailure {
        HandshakeFailure(
            .certificateRejectedByPeer, detectedBy: role,
            cause: "The \(role.peer) refused the \(role)'s certificate: \(alert.meaningForOurCertificate).",
            fix:
                "Check the \(role.peer)'s root-cert.pem, clock and allowed identities against the \(role)'s files (`meshca inspect DIR`); the \(role.peer)'s own log or `meshca handshake --\(role == .client ? "listen" : "connect")` with its files gives the exact reason."
        )
    }
}

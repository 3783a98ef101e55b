import Foundation
import MeshCACore

extension HandshakeReport.Side {
    /// A side run by this process: its own files, and what it saw of its peer.
    static func local(
        _ role: HandshakeReport.Role, directory: String?, transport: String,
        credentials: HandshakeCredentials?, observation: SideObservation?, now: Date
    ) -> Self {
        var side = Self(role: role, directory: directory, transport: transport)
        if let credentials {
            side.spiffeID = credentials.identity?.uri ?? credentials.leaf.uriSANs.first
            side.presentedChain = credentials.chain.map { CertificateSummary($0, now: now) }
        }
        if let verdict = observation?.verdict {
            side.peerChain = verdict.peerChain
            side.verifiedPeerID = verdict.failure == nil ? verdict.peerID?.uri : nil
            side.peerVerification = verdict.failure == nil ? "ok" : verdict.verifyErrorText
        }
        side.error = observation?.rawText
        return side
    }

    /// The real peer of `--connect` or `--listen`, described from what `observer` saw of it.
    static func remote(_ role: HandshakeReport.Role, seenBy observer: SideObservation?) -> Self {
        var side = Self(role: role, transport: "remote")
        if let verdict = observer?.verdict {
            side.presentedChain = verdict.peerChain
            side.spiffeID = verdict.peerChain.first?.spiffeID
        }
        return side
    }
}

extension HandshakeReport {
    /// Builds the report from both sides and the diagnosis, adding the notes a person should see even
    /// on success (what PERMISSIVE let through).
    static func assemble(
        kind: Kind, mode: HandshakeMode?, address: String?, server: Side, client: Side,
        serverObservation: SideObservation?, clientObservation: SideObservation?,
        failure: HandshakeFailure?
    ) -> HandshakeReport {
        let completed = [clientObservation, serverObservation].compactMap { $0 }.first { $0.handshakeCompleted }
        let acceptedPlaintext = serverObservation?.servedPlaintext == true && mode == .permissive
        var notes: [String] = []
        if failure == nil, mode == .permissive, let serverObservation {
            if acceptedPlaintext {
                notes.append(
                    "PERMISSIVE: accepted a plaintext connection (first bytes \(serverObservation.firstBytesText)); the client has no TLS and no identity. STRICT would refuse it."
                )
            } else if serverObservation.handshakeCompleted && !serverObservation.peerSentCertificate {
                notes.append(
                    "PERMISSIVE: accepted a TLS client without a certificate; its identity is unknown. STRICT would refuse it."
                )
            }
        }
        return HandshakeReport(
            kind: kind, mode: mode, address: address,
            tlsVersion: completed?.tlsVersion, cipher: completed?.cipher,
            server: server, client: client, failure: failure, acceptedPlaintext: acceptedPlaintext, notes: notes
        )
    }
}

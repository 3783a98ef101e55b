import Foundation

extension HandshakeReport {
    /// The report for a person: a verdict line; on failure `cause:`, `fix:` and `raw:` lines; `note:` lines;
    /// then each side's identity, what it verified of its peer, and the chain it presented with time left.
    public func renderText() -> String {
        var lines: [String] = []
        let modeText =
            (mode.map { "\($0) server" } ?? "server") + (address.map { " on \($0)" } ?? ", no connection made")
        switch outcome {
        case .succeeded:
            lines.append(
                "OK      mTLS handshake succeeded: \(tlsVersion ?? "TLS"), \(cipher ?? "unknown cipher") (\(modeText))")
        case .acceptedPlaintext:
            lines.append("OK      PERMISSIVE: accepted a plaintext connection, no TLS (\(modeText))")
        case .failed:
            lines.append("FAILED  mTLS handshake (\(modeText))")
        }
        if let failure {
            lines.append("cause:  \(failure.cause)")
            lines.append("fix:    \(failure.fix)")
            if !failure.rawReason.isEmpty { lines.append("raw:    \(failure.rawReason)") }
            lines.append("code:   \(failure.code) (detected by the \(failure.detectedBy))")
        }
        lines += notes.map { "note:   \($0)" }
        lines += describe(server)
        lines += describe(client)
        lines.append("stack:  system \(library)")
        return lines.joined(separator: "\n") + "\n"
    }

    /// The report as JSON (`--json`): snake_case keys, RFC 3339 times, `null`-free (absent fields are omitted).
    public func jsonText(pretty: Bool = true) -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting =
            pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        // Encoding plain strings, numbers and dates cannot fail.
        let data = (try? encoder.encode(self)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    private func describe(_ side: Side) -> [String] {
        let label = side.role.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)
        var lines: [String] = []
        switch side.transport {
        case "remote":
            let who =
                side.spiffeID ?? (side.presentedChain.isEmpty ? "no certificate" : "a certificate without a SPIFFE ID")
            lines.append("\(label)remote peer, presented \(who)")
        case "plaintext":
            lines.append("\(label)plaintext (no TLS, no identity)")
        default:
            if let directory = side.directory, side.presentedChain.isEmpty {
                lines.append("\(label)files in \(directory) (not usable, see the cause)")
            } else {
                let who =
                    side.spiffeID
                    ?? (side.presentedChain.isEmpty ? "no certificate" : "a certificate without a SPIFFE ID")
                lines.append("\(label)\(who)" + (side.directory.map { " (files in \($0))" } ?? ""))
            }
        }
        let indent = String(repeating: " ", count: 8)
        if let peerID = side.verifiedPeerID {
            lines.append("\(indent)verified the \(side.role.peer) as \(peerID)")
        } else if let verdict = side.peerVerification {
            let claimed = side.peerChain.first.map { " (it presented \($0.name))" } ?? ""
            lines.append("\(indent)did NOT accept the \(side.role.peer): \(verdict)\(claimed)")
        } else if side.transport != "remote" && side.transport != "plaintext" && outcome != .acceptedPlaintext
            && failure == nil
        {
            lines.append("\(indent)the \(side.role.peer) presented no certificate")
        }
        for (depth, certificate) in side.presentedChain.enumerated() {
            let lead = depth == 0 ? "chain   " : "        "
            lines.append(
                "\(indent)\(lead)\(certificate.kind(atDepth: depth)) \(certificate.name), valid until "
                    + "\(CertificateSummary.timestamp(certificate.notAfter)) (\(certificate.timeLeftText))")
        }
        return lines
    }
}

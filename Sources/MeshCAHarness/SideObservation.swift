import Foundation

/// What one side of a connection saw, before anyone interprets it: how far the handshake got, what was
/// negotiated, what its verifier decided, and the raw errors. ``HandshakeDiagnosis`` turns a pair of these
/// into the one failure to report.
struct SideObservation: Sendable {
    /// Which side this is.
    var role: HandshakeReport.Role
    /// A failure found before any byte was exchanged (its context could not be built).
    var setupFailure: HandshakeFailure?
    /// Whether this side spoke TLS (false for a plaintext client or server).
    var spokeTLS = true
    /// Whether this side's TLS handshake call returned success.
    var handshakeCompleted = false
    /// The negotiated protocol and cipher, once the handshake completed.
    var tlsVersion: String?
    var cipher: String?
    /// What this side's ``PeerVerifier`` decided; `nil` when the peer sent no certificate.
    var verdict: PeerVerifier.Verdict?
    /// Whether the peer presented a certificate.
    var peerSentCertificate = false
    /// The OpenSSL errors of the failing call.
    var errors = OpenSSLErrors()
    /// The errno of a failing socket call (reset, refused, timeout).
    var systemError: Int32?
    /// Whether a timeout ended the exchange.
    var timedOut = false
    /// Whether the peer closed the connection without a TLS alert before this side was done.
    var peerClosed = false
    /// Server: the first bytes the client sent. Plaintext client: the start of the server's answer.
    var firstBytes: [UInt8] = []
    /// Whether this server answered in plaintext (PERMISSIVE with a plaintext client, or a plaintext server).
    var servedPlaintext = false
    /// Whether a client's handshake completed and the server refused it right afterwards (TLS 1.3 client certificates).
    var refusedAfterHandshake = false

    init(role: HandshakeReport.Role) { self.role = role }

    /// Records a failed OpenSSL step.
    mutating func record(_ step: TLSConnection.Step) {
        errors.append(step.errors)
        if let code = step.systemError, code != 0 { systemError = code }
        timedOut = timedOut || step.timedOut
        peerClosed = peerClosed || step.peerClosed
    }

    /// Records this side's handshake call, `step` on `connection`: what the verifier decided, and the failure or
    /// what was negotiated. Returns whether the handshake completed.
    mutating func recordHandshake(_ step: TLSConnection.Step, on connection: TLSConnection) -> Bool {
        verdict = connection.peerVerdict
        peerSentCertificate = verdict != nil
        guard step.succeeded else {
            record(step)
            return false
        }
        handshakeCompleted = true
        tlsVersion = connection.version
        cipher = connection.cipher
        return true
    }

    /// Whether the first bytes look like a TLS handshake record (content type 22, version 3.x).
    var firstBytesAreTLS: Bool { firstBytes.count >= 2 && firstBytes[0] == 0x16 && firstBytes[1] == 0x03 }

    /// The first bytes as text when printable, up to the first line end (`"GET / HTTP/1.1"`), else as hex.
    var firstBytesText: String {
        let head = Array(firstBytes.prefix(64))
        let printable = head.allSatisfy { (0x20..<0x7f).contains($0) || $0 == 0x0d || $0 == 0x0a }
        guard printable else { return head.prefix(16).map { String(format: "%02x", $0) }.joined(separator: " ") }
        let line = String(decoding: head, as: UTF8.self).split(whereSeparator: \.isNewline).first ?? ""
        return "\"" + line.prefix(40) + (line.count > 40 ? "..." : "") + "\""
    }

    /// Everything raw this side hit, for the report's `error` field and the failure's raw reason.
    var rawText: String? {
        var parts: [String] = []
        if !errors.isEmpty { parts.append(errors.text) }
        if timedOut {
            parts.append("timed out waiting for the peer")
        } else if let systemError, !errors.text.contains(OpenSSLLibrary.systemErrorText(systemError)) {
            parts.append("\(OpenSSLLibrary.systemErrorText(systemError)) (errno \(systemError))")
        }
        if peerClosed && errors.isEmpty && systemError == nil { parts.append("connection closed by peer") }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }
}

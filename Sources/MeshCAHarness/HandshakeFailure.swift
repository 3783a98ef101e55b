@_exported import MeshCAErrors

/// Why a handshake failed, said for a person: one line naming the cause, one naming the fix, and the
/// raw OpenSSL (or system) reason for someone who wants to look it up.
///
/// ``code`` is stable and machine-readable; tests and `--json` consumers compare it against the static
/// members of ``Code``. The sentences may be reworded; the codes are never renamed.
public struct HandshakeFailure: CodedError, Codable, Equatable {
    /// The closed list of reasons; each `rawValue` is a stable kebab-case name.
    public enum Code: String, ErrorCode, Codable {
        /// A STRICT server asked for a client certificate and the client presented none.
        case clientCertificateRequired = "client-certificate-required"
        /// The client sent plaintext (e.g. HTTP) to a server that speaks only TLS.
        case plaintextToTLSServer = "plaintext-to-tls-server"
        /// The client sent a TLS ClientHello to a server that answered in plaintext.
        case tlsToPlaintextServer = "tls-to-plaintext-server"
        /// A certificate in the peer's chain is past its notAfter.
        case certificateExpired = "certificate-expired"
        /// A certificate in the peer's chain is before its notBefore (often clock skew).
        case certificateNotYetValid = "certificate-not-yet-valid"
        /// The peer's chain does not lead to a root in the verifying side's `root-cert.pem`.
        case untrustedChain = "untrusted-chain"
        /// The peer's SPIFFE ID is in another trust domain than the verifying side's bundle.
        case wrongTrustDomain = "wrong-trust-domain"
        /// The peer's SPIFFE ID is not the one expected (`--expect-server-id` / `--expect-client-id`).
        case unexpectedPeerID = "unexpected-peer-id"
        /// The peer's leaf is not an X509-SVID: no or several URI SANs, not a SPIFFE ID, or a CA certificate.
        case notAnSVID = "not-an-svid"
        /// The peer refused this side's certificate and said so with a TLS alert (the peer's reason is in the alert).
        case certificateRejectedByPeer = "certificate-rejected-by-peer"
        /// `key.pem` does not hold the private key of the leaf in `cert-chain.pem`.
        case keyMismatch = "key-mismatch"
        /// One of `cert-chain.pem`, `key.pem`, `root-cert.pem` does not exist.
        case missingFile = "missing-file"
        /// A credential file exists but cannot be read (permissions, a directory in its place).
        case unreadableFile = "unreadable-file"
        /// A credential file was read but holds no usable PEM certificate or key.
        case malformedFile = "malformed-file"
        /// The TCP connection could not be made or accepted (refused, unreachable, address in use).
        case connectionFailed = "connection-failed"
        /// The peer closed the connection in the middle of the handshake without saying why.
        case connectionClosed = "connection-closed"
        /// The peer did not answer within the timeout.
        case timeout = "timeout"
        /// The peer's certificate is listed as revoked in the CRL given with `--crl`.
        case certificateRevoked = "certificate-revoked"
        /// The CRL given with `--crl` cannot be used: missing, unreadable, not a CRL, from another CA, expired or
        /// not yet valid, or its signature does not verify.
        case crlUnusable = "crl-unusable"
        /// Any other handshake error; the raw reason says what OpenSSL reported.
        case handshakeFailed = "handshake-failed"
    }

    /// The machine-readable cause.
    public var code: Code
    /// The side that noticed the failure (the verifying side for certificate problems).
    public var detectedBy: HandshakeReport.Role
    /// One line naming the cause, with the values involved (IDs, times, file paths).
    public var cause: String
    /// One line naming the fix.
    public var fix: String
    /// What OpenSSL (or the system) reported, for experts; may be empty.
    public var rawReason: String

    /// Creates a failure.
    public init(_ code: Code, detectedBy: HandshakeReport.Role, cause: String, fix: String, rawReason: String = "") {
        self.code = code
        self.detectedBy = detectedBy
        self.cause = cause
        self.fix = fix
        self.rawReason = rawReason
    }

    /// The cause and the fix, one per line.
    public var description: String { "\(cause)\n\(fix)" }

    /// The cause and the fix in one line (``CodedError``).
    public var message: String { "\(cause) \(fix)" }

    /// A copy with `more` appended to the raw reason.
    func addingRawReason(_ more: String) -> HandshakeFailure {
        guard !more.isEmpty else { return self }
        var copy = self
        copy.rawReason = rawReason.isEmpty ? more : rawReason + "; " + more
        return copy
    }
}

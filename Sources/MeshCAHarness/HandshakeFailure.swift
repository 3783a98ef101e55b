/// Why a handshake failed, said for a person: one line naming the cause, one naming the fix, and the
/// raw OpenSSL (or system) reason for someone who wants to look it up.
///
/// ``code`` is stable and machine-readable; tests and `--json` consumers compare it against the static
/// members of ``Code``. The sentences may be reworded; the codes are never renamed.
public struct HandshakeFailure: Error, Sendable, Codable, Equatable, CustomStringConvertible {
    /// An extensible set of failure causes. Compare against the static members; new ones may be added.
    public struct Code: Hashable, Sendable, Codable, CustomStringConvertible {
        /// The stable kebab-case name, e.g. `client-certificate-required`.
        public let rawValue: String
        private init(_ rawValue: String) { self.rawValue = rawValue }
        /// The kebab-case name.
        public var description: String { rawValue }

        /// Decodes the kebab-case name.
        public init(from decoder: any Decoder) throws {
            rawValue = try decoder.singleValueContainer().decode(String.self)
        }

        /// Encodes the kebab-case name as a JSON string.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(rawValue)
        }

        /// A STRICT server asked for a client certificate and the client presented none.
        public static let clientCertificateRequired = Code("client-certificate-required")
        /// The client sent plaintext (e.g. HTTP) to a server that speaks only TLS.
        public static let plaintextToTLSServer = Code("plaintext-to-tls-server")
        /// The client sent a TLS ClientHello to a server that answered in plaintext.
        public static let tlsToPlaintextServer = Code("tls-to-plaintext-server")
        /// A certificate in the peer's chain is past its notAfter.
        public static let certificateExpired = Code("certificate-expired")
        /// A certificate in the peer's chain is before its notBefore (often clock skew).
        public static let certificateNotYetValid = Code("certificate-not-yet-valid")
        /// The peer's chain does not lead to a root in the verifying side's `root-cert.pem`.
        public static let untrustedChain = Code("untrusted-chain")
        /// The peer's SPIFFE ID is in another trust domain than the verifying side's bundle.
        public static let wrongTrustDomain = Code("wrong-trust-domain")
        /// The peer's SPIFFE ID is not the one expected (`--expect-server-id` / `--expect-client-id`).
        public static let unexpectedPeerID = Code("unexpected-peer-id")
        /// The peer's leaf is not an X509-SVID: no or several URI SANs, not a SPIFFE ID, or a CA certificate.
        public static let notAnSVID = Code("not-an-svid")
        /// The peer refused this side's certificate and said so with a TLS alert (the peer's reason is in the alert).
        public static let certificateRejectedByPeer = Code("certificate-rejected-by-peer")
        /// `key.pem` does not hold the private key of the leaf in `cert-chain.pem`.
        public static let keyMismatch = Code("key-mismatch")
        /// One of `cert-chain.pem`, `key.pem`, `root-cert.pem` does not exist.
        public static let missingFile = Code("missing-file")
        /// A credential file exists but cannot be read (permissions, a directory in its place).
        public static let unreadableFile = Code("unreadable-file")
        /// A credential file was read but holds no usable PEM certificate or key.
        public static let malformedFile = Code("malformed-file")
        /// The TCP connection could not be made or accepted (refused, unreachable, address in use).
        public static let connectionFailed = Code("connection-failed")
        /// The peer closed the connection in the middle of the handshake without saying why.
        public static let connectionClosed = Code("connection-closed")
        /// The peer did not answer within the timeout.
        public static let timeout = Code("timeout")
        /// The peer's certificate is listed as revoked in the CRL given with `--crl`.
        public static let certificateRevoked = Code("certificate-revoked")
        /// The CRL given with `--crl` cannot be used: missing, unreadable, not a CRL, from another CA, expired or
        /// not yet valid, or its signature does not verify.
        public static let crlUnusable = Code("crl-unusable")
        /// Any other handshake error; the raw reason says what OpenSSL reported.
        public static let handshakeFailed = Code("handshake-failed")
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

    /// A copy with `more` appended to the raw reason.
    func addingRawReason(_ more: String) -> HandshakeFailure {
        guard !more.isEmpty else { return self }
        var copy = self
        copy.rawReason = rawReason.isEmpty ? more : rawReason + "; " + more
        return copy
    }
}

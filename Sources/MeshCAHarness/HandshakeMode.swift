/// How a server treats its clients, named after Istio's PeerAuthentication modes.
public enum HandshakeMode: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// mTLS only. The client must present a certificate that verifies against the server's
    /// `root-cert.pem` (OpenSSL `SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT`); plaintext is refused.
    case strict
    /// mTLS or plaintext. A client whose first bytes are not a TLS ClientHello is served in plaintext, and
    /// a TLS client without a certificate is accepted; a certificate that is presented must still verify.
    case permissive

    /// `STRICT` or `PERMISSIVE`, as Istio writes them.
    public var description: String { rawValue.uppercased() }

    /// Parses `strict` or `permissive` (any case); `nil` for anything else.
    public init?(parsing text: String) {
        self.init(rawValue: text.lowercased())
    }
}

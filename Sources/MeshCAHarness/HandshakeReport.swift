import Foundation

/// What happened when two workloads tried mTLS: the outcome, the negotiated parameters, what each side
/// presented and verified, and, when it failed, the one cause to fix first.
///
/// A report is a plain value: ``LoopbackHandshake``, ``ClientHandshake`` and ``HandshakeListener`` make
/// them, `meshca handshake` prints them (``renderText()``, or ``jsonText()`` for `--json`), and tests
/// assert on ``failure``'s code. Times are taken when the report is made.
public struct HandshakeReport: Sendable, Codable, Equatable {
    /// How the connection ended.
    public enum Outcome: String, Sendable, Codable {
        /// The TLS handshake completed and every check and expectation held.
        case succeeded
        /// A PERMISSIVE server accepted a plaintext client (no TLS, no identity).
        case acceptedPlaintext = "accepted-plaintext"
        /// Something failed; ``HandshakeReport/failure`` says what.
        case failed
    }

    /// The two ends of a connection.
    public enum Role: String, Sendable, Codable, CustomStringConvertible {
        /// The side that accepted the connection.
        case server
        /// The side that opened the connection.
        case client
        /// `server` or `client`.
        public var description: String { rawValue }
        /// The other side.
        public var peer: Role { self == .server ? .client : .server }
    }

    /// Which command shape produced the report.
    public enum Kind: String, Sendable, Codable {
        /// Both sides ran in this process over loopback (`--server` and `--client`).
        case loopback
        /// This process was the client of a real server (`--connect`).
        case connect
        /// This process was the server for a real client (`--listen`).
        case listen
    }

    /// One side of the connection as that side saw it.
    public struct Side: Sendable, Codable, Equatable {
        /// `server` or `client`.
        public var role: Role
        /// The credentials directory this side used, `nil` for a side without certificate or a remote peer.
        public var directory: String?
        /// `tls`, `plaintext`, or `remote` for the real peer of `--connect` / `--listen`.
        public var transport: String
        /// This side's own SPIFFE ID (from its `cert-chain.pem`), when it has one.
        public var spiffeID: String?
        /// The chain this side presented (its `cert-chain.pem`), leaf first.
        public var presentedChain: [CertificateSummary]
        /// The SPIFFE ID of the peer, set only when the peer's certificate verified and passed the SPIFFE checks.
        public var verifiedPeerID: String?
        /// The chain the peer sent, leaf first (present even when it did not verify).
        public var peerChain: [CertificateSummary]
        /// OpenSSL's verdict on the peer's chain (`ok`, or e.g. `certificate has expired`); `nil` when none was checked.
        public var peerVerification: String?
        /// The raw OpenSSL / system error this side hit, `nil` when none.
        public var error: String?

        /// Creates a side; the chains default to empty.
        public init(
            role: Role, directory: String? = nil, transport: String, spiffeID: String? = nil,
            presentedChain: [CertificateSummary] = [], verifiedPeerID: String? = nil,
            peerChain: [CertificateSummary] = [], peerVerification: String? = nil, error: String? = nil
        ) {
            self.role = role
            self.directory = directory
            self.transport = transport
            self.spiffeID = spiffeID
            self.presentedChain = presentedChain
            self.verifiedPeerID = verifiedPeerID
            self.peerChain = peerChain
            self.peerVerification = peerVerification
            self.error = error
        }
    }

    /// Which command shape produced the report.
    public var kind: Kind
    /// How the connection ended.
    public var outcome: Outcome
    /// The server's mode; `nil` for `--connect`, where the remote server's mode is unknown.
    public var mode: HandshakeMode?
    /// The server address, `host:port`; `nil` when no connection was attempted (a side's files were refused first).
    public var address: String?
    /// The negotiated protocol (`TLSv1.3`), when the handshake got that far.
    public var tlsVersion: String?
    /// The negotiated cipher suite (`TLS_AES_256_GCM_SHA384`), when the handshake got that far.
    public var cipher: String?
    /// The server side. For `--connect` it describes the remote server as the client saw it.
    public var server: Side
    /// The client side. For `--listen` it describes the remote client as the server saw it.
    public var client: Side
    /// Why it failed; `nil` exactly when ``outcome`` is not ``Outcome/failed``.
    public var failure: HandshakeFailure?
    /// Facts worth knowing that are not failures, e.g. "PERMISSIVE: accepted a plaintext connection".
    public var notes: [String]
    /// The TLS library both sides ran on, e.g. `OpenSSL 3.0.19 27 Jan 2026`.
    public var library: String
    /// When the report was made.
    public var time: Date

    /// Assembles a report; ``outcome`` follows from `failure` and `plaintext`.
    public init(
        kind: Kind, mode: HandshakeMode?, address: String?, tlsVersion: String? = nil, cipher: String? = nil,
        server: Side, client: Side, failure: HandshakeFailure?, acceptedPlaintext: Bool = false,
        notes: [String] = [], time: Date = Date()
    ) {
        self.kind = kind
        self.outcome = failure != nil ? .failed : (acceptedPlaintext ? .acceptedPlaintext : .succeeded)
        self.mode = mode
        self.address = address
        self.tlsVersion = tlsVersion
        self.cipher = cipher
        self.server = server
        self.client = client
        self.failure = failure
        self.notes = notes
        self.library = OpenSSLLibrary.version
        self.time = time
    }

    /// Whether a caller should treat this as success: the handshake succeeded, or PERMISSIVE accepted plaintext.
    public var isSuccess: Bool { failure == nil }
}

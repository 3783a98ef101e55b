import Foundation
import MeshCACore

/// This process as the client of a real server (`meshca handshake --connect HOST:PORT --certs DIR`):
/// presents the certificate in `certificates`, verifies the server against that directory's
/// `root-cert.pem` and the SPIFFE rules, and reports what the server did.
///
/// Use it against a workload, a sidecar's inbound port, or `openssl s_server`. Only the client's view is
/// known, so a server's refusal is explained from the TLS alert it sent.
public struct ClientHandshake: Sendable {
    /// The server's host name or address.
    public var host: String
    /// The server's port.
    public var port: UInt16
    /// The client's credentials directory.
    public var certificates: String
    /// When set, only a server with this SPIFFE ID is accepted.
    public var expectedServerID: SPIFFEID?
    /// The bound on connecting and on each read and write.
    public var timeout: Duration
    /// How long to wait after the handshake for the server to refuse the client's certificate (TLS 1.3
    /// servers do that after the client's side of the handshake has finished).
    public var settle: Duration
    /// When set, the server's leaf is also checked against these CRLs (`--crl`).
    public var revocations: RevocationList?

    /// Describes a connection; nothing happens until ``run()``.
    public init(
        host: String, port: UInt16, certificates: String, expectedServerID: SPIFFEID? = nil,
        timeout: Duration = .seconds(5), settle: Duration = .seconds(1), revocations: RevocationList? = nil
    ) {
        self.revocations = revocations
        self.host = host
        self.port = port
        self.certificates = certificates
        self.expectedServerID = expectedServerID
        self.timeout = timeout
        self.settle = settle
    }

    /// Connects, runs the handshake and reports. Never throws.
    public func run() -> HandshakeReport {
        _ = OpenSSLLibrary.prepared
        let now = Date()
        let address = HostPort(host: host, port: Int(port)).description
        var credentials: HandshakeCredentials?
        var observation: SideObservation?
        var failure: HandshakeFailure?
        do {
            let loaded = try HandshakeCredentials.load(from: certificates, role: .client)
            credentials = loaded
            let check = PeerIdentityCheck(
                verifier: .client,
                trustDomain: loaded.identity?.trustDomain ?? expectedServerID?.trustDomain,
                trustDomainSource: loaded.identity.map { "its own SPIFFE ID \($0.uri)" } ?? "--expect-server-id",
                expectedID: expectedServerID
            )
            let configuration = TLSContext.Configuration(
                role: .client, credentials: loaded, trustedRoots: loaded.roots, identityCheck: check,
                revocations: revocations)
            _ = try TLSContext(configuration)
            let socket = try connect(address: address)
            let client = HandshakeClient(kind: .tls(configuration, serverName: host), timeout: timeout, settle: settle)
            let seen = client.run(socket)
            observation = seen
            failure = HandshakeDiagnosis(mode: nil, timeout: timeout, server: nil, client: seen).failure()
        } catch {
            failure = error as? HandshakeFailure
        }
        return .assemble(
            kind: .connect, mode: nil, address: address,
            server: .remote(.server, seenBy: observation),
            client: .local(
                .client, directory: certificates, transport: "tls", credentials: credentials, observation: observation,
                now: now),
            serverObservation: nil, clientObservation: observation, failure: failure
        )
    }

    private func connect(address: String) throws -> TCPSocket {
        do {
            return try TCPSocket.connect(host: host, port: port, timeout: timeout)
        } catch let error as TCPSocket.Failure {
            throw HandshakeFailure(
                .connectionFailed, detectedBy: .client,
                cause:
                    "The client could not connect to \(address): \(error.systemError == ETIMEDOUT ? "no answer within \(HumanDuration.format(timeout))" : OpenSSLLibrary.systemErrorText(error.systemError)).",
                fix:
                    "Check that the server is running and listening on that address and port (`ss -ltnp` on its host), and that no firewall is in between.",
                rawReason: error.description
            )
        }
    }
}

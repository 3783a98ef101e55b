import Foundation
import MeshCACore
import Synchronization

/// This process as the server for real clients (`meshca handshake --listen HOST:PORT --certs DIR`):
/// accepts connections one at a time, runs each handshake in STRICT or PERMISSIVE mode, and reports each.
///
/// The credentials are read again for every connection, so renewed files are picked up by the next
/// connection, as a sidecar does. ``serve(limit:onReport:)`` blocks the calling thread until
/// ``stop()`` (from any thread, e.g. a signal handler's queue) or until `limit` connections were served.
public final class HandshakeListener: Sendable {
    /// The address actually bound, `host:port` (the port is the real one when 0 was asked for).
    public let address: String
    /// The port actually bound.
    public let port: UInt16
    private let socket: TCPSocket
    private let certificates: String
    private let mode: HandshakeMode
    private let expectedClientID: SPIFFEID?
    private let timeout: Duration
    private let revocations: RevocationList?
    private let stopped = Atomic<Bool>(false)

    /// Checks the credentials once and binds `host:port` (port 0 picks a free one).
    ///
    /// Throws ``HandshakeFailure``: a file problem or key mismatch, or ``HandshakeFailure/Code/connectionFailed``
    /// when the address cannot be bound.
    public init(
        host: String, port: UInt16, certificates: String, mode: HandshakeMode = .strict,
        expectedClientID: SPIFFEID? = nil, timeout: Duration = .seconds(5), revocations: RevocationList? = nil
    ) throws {
        _ = OpenSSLLibrary.prepared
        self.revocations = revocations
        self.certificates = certificates
        self.mode = mode
        self.expectedClientID = expectedClientID
        self.timeout = timeout
        _ = try TLSContext(
            Self.configuration(
                HandshakeCredentials.load(from: certificates, role: .server), mode: mode,
                expectedClientID: expectedClientID, revocations: revocations))
        do {
            socket = try TCPSocket.listen(host: host, port: port)
        } catch let error as TCPSocket.Failure {
            throw HandshakeFailure(
                .connectionFailed, detectedBy: .server,
                cause: "Cannot listen on \(host):\(port): \(OpenSSLLibrary.systemErrorText(error.systemError)).",
                fix: "Choose another port (0 picks a free one), or stop the process that holds it (`ss -ltnp`).",
                rawReason: error.description
            )
        }
        self.port = socket.localPort
        self.address = HostPort(host: host, port: Int(self.port)).description
    }

    /// Serves connections one after another, calling `onReport` after each, until ``stop()`` is called
    /// or `limit` connections were served. Returns the number served.
    @discardableResult
    public func serve(limit: Int? = nil, onReport: (HandshakeReport) -> Void) -> Int {
        var served = 0
        while !stopped.load(ordering: .relaxed) && served < (limit ?? .max) {
            // A short accept timeout keeps the loop responsive to stop().
            let connection: TCPSocket?
            do {
                connection = try socket.accept(timeout: .milliseconds(200))
            } catch {
                // accept(2) failed (e.g. out of descriptors): pause instead of spinning, then try again.
                Thread.sleep(forTimeInterval: 0.1)
                continue
            }
            guard let connection else { continue }
            onReport(handle(connection))
            served += 1
        }
        return served
    }

    /// Makes ``serve(limit:onReport:)`` return after the connection in progress, if any.
    public func stop() {
        stopped.store(true, ordering: .relaxed)
    }

    /// Runs one connection with freshly read credentials.
    private func handle(_ connection: TCPSocket) -> HandshakeReport {
        let now = Date()
        var credentials: HandshakeCredentials?
        var observation: SideObservation?
        var failure: HandshakeFailure?
        do {
            let loaded = try HandshakeCredentials.load(from: certificates, role: .server)
            credentials = loaded
            let configuration = Self.configuration(
                loaded, mode: mode, expectedClientID: expectedClientID, revocations: revocations)
            let seen = HandshakeServer(kind: .tls(configuration, mode: mode), timeout: timeout).serve(connection)
            observation = seen
            failure = HandshakeDiagnosis(
                mode: mode, expectedClientID: expectedClientID, timeout: timeout, server: seen, client: nil
            ).failure()
        } catch {
            failure = error as? HandshakeFailure
        }
        return .assemble(
            kind: .listen, mode: mode, address: address,
            server: .local(
                .server, directory: certificates, transport: "tls", credentials: credentials, observation: observation,
                now: now),
            client: .remote(.client, seenBy: observation),
            serverObservation: observation, clientObservation: nil, failure: failure
        )
    }

    private static func configuration(
        _ credentials: HandshakeCredentials, mode: HandshakeMode, expectedClientID: SPIFFEID?,
        revocations: RevocationList?
    ) -> TLSContext.Configuration {
        let id = credentials.identity
        let check = PeerIdentityCheck(
            verifier: .server, trustDomain: id?.trustDomain,
            trustDomainSource: id.map { "its own SPIFFE ID \($0.uri)" }
                ?? "nowhere: the server's leaf has no SPIFFE ID",
            expectedID: expectedClientID
        )
        return TLSContext.Configuration(
            role: .server, credentials: credentials, trustedRoots: credentials.roots, identityCheck: check,
            requireClientCertificate: mode == .strict, revocations: revocations
        )
    }
}

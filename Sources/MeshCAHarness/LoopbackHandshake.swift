import COpenSSL
import Foundation
import MeshCACore
import Synchronization

/// Two workloads' credentials meeting over loopback: a TLS server with one identity's files and a client
/// with the other's, both on the system OpenSSL, in one process (`meshca handshake --server --client`).
///
/// The server listens on 127.0.0.1, port 0, and serves one connection on its own thread; the client runs
/// on the caller's thread. Every read and write is bounded by ``timeout``, so ``run()`` always returns.
public struct LoopbackHandshake: Sendable {
    /// What the server runs with.
    public enum Server: Sendable, Equatable {
        /// TLS with the files in this directory.
        case credentials(directory: String)
        /// No TLS at all: a workload without a sidecar (answers with a plaintext HTTP response).
        case plaintext
    }

    /// What the client runs with.
    public enum Client: Sendable, Equatable {
        /// TLS, presenting the certificate in this directory and trusting its `root-cert.pem`.
        case credentials(directory: String)
        /// TLS without a client certificate, trusting the server's `root-cert.pem`.
        case noCertificate
        /// A plaintext HTTP request.
        case plaintext
    }

    /// The server's files, or plaintext.
    public var server: Server
    /// The client's files, no certificate, or plaintext.
    public var client: Client
    /// STRICT requires a client certificate; PERMISSIVE also accepts plaintext and certificate-less clients.
    public var mode: HandshakeMode
    /// When set, the client accepts only a server with this SPIFFE ID.
    public var expectedServerID: SPIFFEID?
    /// When set, the server accepts only a client with this SPIFFE ID.
    public var expectedClientID: SPIFFEID?
    /// The bound on each read, write and accept.
    public var timeout: Duration
    /// When set, each side also checks its peer's leaf against these CRLs (`--crl`).
    public var revocations: RevocationList?

    /// Describes a handshake; nothing happens until ``run()``.
    public init(
        server: Server, client: Client, mode: HandshakeMode = .strict, expectedServerID: SPIFFEID? = nil,
        expectedClientID: SPIFFEID? = nil, timeout: Duration = .seconds(5), revocations: RevocationList? = nil
    ) {
        self.revocations = revocations
        self.server = server
        self.client = client
        self.mode = mode
        self.expectedServerID = expectedServerID
        self.expectedClientID = expectedClientID
        self.timeout = timeout
    }

    /// Loads both sides' files, runs the handshake and reports. Never throws: every failure, including a
    /// missing file, is the report's ``HandshakeReport/failure``.
    public func run() -> HandshakeReport {
        _ = OpenSSLLibrary.prepared
        let now = Date()
        let serverDirectory: String? = if case .credentials(let directory) = server { directory } else { nil }
        let clientDirectory: String? = if case .credentials(let directory) = client { directory } else { nil }
        var serverCredentials: HandshakeCredentials?
        var clientCredentials: HandshakeCredentials?
        var setupFailure: HandshakeFailure?
        do {
            serverCredentials = try serverDirectory.map { try HandshakeCredentials.load(from: $0, role: .server) }
            clientCredentials = try clientDirectory.map { try HandshakeCredentials.load(from: $0, role: .client) }
        } catch {
            setupFailure = error as? HandshakeFailure
        }
        let plan = LoopbackPlan(
            handshake: self, serverCredentials: serverCredentials, clientCredentials: clientCredentials)
        if setupFailure == nil { setupFailure = plan.validate() }
        func side(_ role: HandshakeReport.Role, _ observation: SideObservation?) -> HandshakeReport.Side {
            role == .server
                ? .local(
                    .server, directory: serverDirectory, transport: server == .plaintext ? "plaintext" : "tls",
                    credentials: serverCredentials, observation: observation, now: now)
                : .local(
                    .client, directory: clientDirectory, transport: client == .plaintext ? "plaintext" : "tls",
                    credentials: clientCredentials, observation: observation, now: now)
        }
        if let setupFailure {
            return .assemble(
                kind: .loopback, mode: mode, address: nil, server: side(.server, nil), client: side(.client, nil),
                serverObservation: nil, clientObservation: nil, failure: setupFailure)
        }
        let (address, serverObservation, clientObservation) = exchange(plan)
        let diagnosis = HandshakeDiagnosis(
            mode: mode, serverIsPlaintext: server == .plaintext, clientHasCertificate: clientCredentials != nil,
            expectedClientID: expectedClientID, timeout: timeout, server: serverObservation, client: clientObservation
        )
        return .assemble(
            kind: .loopback, mode: mode, address: address,
            server: side(.server, serverObservation), client: side(.client, clientObservation),
            serverObservation: serverObservation, clientObservation: clientObservation, failure: diagnosis.failure())
    }

    /// Listens, serves one connection on a thread, connects from this thread, and collects both observations.
    private func exchange(_ plan: LoopbackPlan) -> (address: String, server: SideObservation, client: SideObservation) {
        var serverObservation = SideObservation(role: .server)
        var clientObservation = SideObservation(role: .client)
        let listener: TCPSocket
        do {
            listener = try TCPSocket.listen(host: "127.0.0.1", port: 0)
        } catch {
            serverObservation.systemError = (error as? TCPSocket.Failure)?.systemError
            clientObservation.systemError = serverObservation.systemError
            return ("127.0.0.1:0", serverObservation, clientObservation)
        }
        let address = "127.0.0.1:\(listener.localPort)"
        let mailbox = Mailbox()
        let server = HandshakeServer(kind: plan.serverKind, timeout: timeout)
        let timeout = self.timeout
        let thread = Thread {
            var observation = SideObservation(role: .server)
            if let socket = try? listener.accept(timeout: timeout) {
                observation = server.serve(socket)
            } else {
                observation.timedOut = true
            }
            // This thread's OpenSSL state (its error queue among it) is freed here, before the caller has the
            // report and can exit, not by the thread's destructor racing with the process's exit.
            OPENSSL_thread_stop()
            mailbox.deliver(observation)
        }
        thread.start()
        do {
            let socket = try TCPSocket.connect(host: "127.0.0.1", port: listener.localPort, timeout: timeout)
            clientObservation = HandshakeClient(kind: plan.clientKind, timeout: timeout, settle: timeout).run(socket)
        } catch {
            clientObservation.systemError = (error as? TCPSocket.Failure)?.systemError
        }
        // The server's own reads are bounded by `timeout`; this bound only guards against a bug.
        serverObservation = mailbox.wait(timeout: timeout * 4) ?? serverObservation
        return (address, serverObservation, clientObservation)
    }

    /// Hands the server thread's observation to the caller.
    private final class Mailbox: Sendable {
        private let value = Mutex<SideObservation?>(nil)
        private let ready = DispatchSemaphore(value: 0)

        func deliver(_ observation: SideObservation) {
            value.withLock { $0 = observation }
            ready.signal()
        }

        func wait(timeout: Duration) -> SideObservation? {
            let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
            guard ready.wait(timeout: .now() + seconds) == .success else { return nil }
            return value.withLock { $0 }
        }
    }
}

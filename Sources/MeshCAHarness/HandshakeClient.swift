import COpenSSL
import Foundation
import MeshCAPlatform

/// The client side of one connection: a TLS client on OpenSSL (with or without a certificate), or a
/// plaintext client sending an HTTP request, as a workload without a sidecar would. It never throws;
/// what happened is in the returned ``SideObservation``.
struct HandshakeClient: Sendable {
    /// What kind of client this is.
    enum Kind: Sendable {
        /// TLS with these settings; `serverName` is sent as SNI when it is a host name.
        case tls(TLSContext.Configuration, serverName: String?)
        /// A plaintext HTTP request.
        case plaintext(host: String)
    }

    let kind: Kind
    /// The bound on every read and write of the handshake.
    let timeout: Duration
    /// How long to wait after the handshake for the server's first bytes or its refusal. A TLS 1.3 server
    /// refuses a client certificate only after the client's handshake call returned.
    let settle: Duration

    /// Runs the client over a connected socket.
    func run(_ socket: TCPSocket) -> SideObservation {
        var observation = SideObservation(role: .client)
        switch kind {
        case .plaintext(let host):
            observation.spokeTLS = false
            let request = "GET / HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: meshca-handshake\r\nConnection: close\r\n\r\n"
            if let error = socket.send(Array(request.utf8)) {
                observation.systemError = error
                return observation
            }
            let (answer, error) = socket.receive(limit: 16_384) { _ in false }
            observation.firstBytes = Array(answer.prefix(64))
            observation.systemError = error
            observation.timedOut = error == EAGAIN || error == EWOULDBLOCK
            observation.peerClosed = answer.isEmpty && error == nil
            return observation
        case .tls(let configuration, let serverName):
            return runTLS(socket, configuration: configuration, serverName: serverName, observation)
        }
    }

    private func runTLS(
        _ socket: TCPSocket, configuration: TLSContext.Configuration, serverName: String?,
        _ start: SideObservation
    ) -> SideObservation {
        var observation = start
        let connection: TLSConnection
        do {
            connection = try TLSConnection(context: TLSContext(configuration), socket: socket, serverName: serverName)
        } catch {
            observation.setupFailure = error as? HandshakeFailure
            return observation
        }
        guard observation.recordHandshake(connection.connect(), on: connection) else { return observation }
        try? socket.setTimeouts(settle)
        let (greeting, read) = connection.read()
        observation.firstBytes = Array(greeting.prefix(64))
        // Data, a clean close_notify, or silence until `settle`: the server kept the connection. An alert
        // or a reset: it refused us after all.
        if !read.succeeded && !read.timedOut && !(read.sslError == SSL_ERROR_ZERO_RETURN) && !read.peerClosed {
            observation.refusedAfterHandshake = true
            observation.record(read)
        }
        connection.shutdown()
        return observation
    }
}

import Foundation
import MeshCACore
import MeshCAPlatform

/// The server side of one connection: a TLS server on OpenSSL in STRICT or PERMISSIVE mode, or a
/// plaintext server (a workload without a sidecar). It never throws; what happened is in the
/// returned ``SideObservation``.
struct HandshakeServer: Sendable {
    /// What kind of server this is.
    enum Kind: Sendable {
        /// TLS with these settings, in this mode.
        case tls(TLSContext.Configuration, mode: HandshakeMode)
        /// Plaintext only: answers whatever arrives with a short HTTP response.
        case plaintext
    }

    let kind: Kind
    /// The bound on every read and write.
    let timeout: Duration

    /// The body a PERMISSIVE server answers a plaintext client with.
    static let permissiveBody =
        "meshca handshake: PERMISSIVE accepted a plaintext connection (no TLS, no client identity)\n"
    /// The body a plaintext server answers with.
    static let plaintextBody = "meshca handshake: this port speaks plaintext, not TLS\n"

    /// Serves one accepted connection.
    func serve(_ socket: TCPSocket) -> SideObservation {
        var observation = SideObservation(role: .server)
        do { try socket.setTimeouts(timeout) } catch { observation.systemError = (error as? TCPSocket.Failure)?.systemError }
        // Peek, do not read: a TLS ClientHello must stay in the socket for OpenSSL.
        let (head, peekError) = socket.peek(count: 2, deadline: .now + timeout)
        observation.firstBytes = head
        if !head.isEmpty && !observation.firstBytesAreTLS {
            // Not TLS: look a little further, so the report can show what the client sent ("GET / HTTP/1.1").
            observation.firstBytes = socket.peek(count: 24, deadline: .now + .milliseconds(50)).bytes
        }
        switch kind {
        case .plaintext:
            observation.spokeTLS = false
            return servePlaintext(socket, observation, status: "400 Bad Request", body: Self.plaintextBody)
        case .tls(let configuration, let mode):
            if head.isEmpty {
                observation.systemError = peekError
                observation.timedOut = peekError == EAGAIN || peekError == EWOULDBLOCK
                observation.peerClosed = peekError == nil
                return observation
            }
            if mode == .permissive && !observation.firstBytesAreTLS {
                observation.spokeTLS = false
                return servePlaintext(socket, observation, status: "200 OK", body: Self.permissiveBody)
            }
            return serveTLS(socket, observation, configuration: configuration)
        }
    }

    private func serveTLS(_ socket: TCPSocket, _ start: SideObservation, configuration: TLSContext.Configuration)
        -> SideObservation
    {
        var observation = start
        let connection: TLSConnection
        do {
            connection = try TLSConnection(context: TLSContext(configuration), socket: socket)
        } catch {
            observation.setupFailure = error as? HandshakeFailure
            return observation
        }
        guard observation.recordHandshake(connection.accept(), on: connection) else {
            // Whatever the client sent after the failure stays unread, so closing resets the connection,
            // exactly as a real TLS server's close does.
            return observation
        }
        observation.peerSentCertificate = connection.peerSentCertificate
        let peer = observation.verdict?.peerID?.uri ?? "a client without certificate"
        connection.write(Array("meshca handshake: mTLS ok, you are \(peer)\n".utf8))
        connection.shutdown()
        return observation
    }

    /// Reads the request (up to its first line) and answers with a short HTTP response, then closes
    /// gracefully so the client reads the answer rather than a reset.
    private func servePlaintext(_ socket: TCPSocket, _ start: SideObservation, status: String, body: String)
        -> SideObservation
    {
        var observation = start
        observation.servedPlaintext = true
        let isTLS = observation.firstBytesAreTLS
        let (request, error) = socket.receive(limit: 16_384) { data in
            // A ClientHello arrives in one piece and has no line end; a plaintext request ends its first line.
            isTLS ? !data.isEmpty : data.contains(0x0a)
        }
        if !request.isEmpty { observation.firstBytes = Array(request.prefix(64)) }
        if let error { observation.systemError = error }
        let response =
            "HTTP/1.1 \(status)\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        if let error = socket.send(Array(response.utf8)) { observation.systemError = error }
        socket.finish()
        return observation
    }
}

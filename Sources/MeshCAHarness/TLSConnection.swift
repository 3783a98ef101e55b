import COpenSSL
import Foundation
import MeshCAPlatform

/// One OpenSSL `SSL` over a ``TCPSocket``, freed on deinit. Blocking; every call is bounded by the
/// socket's timeouts. Used only on the thread that created it.
final class TLSConnection {
    /// How a handshake or read step ended.
    struct Step: Sendable {
        /// Whether the call succeeded.
        var succeeded: Bool
        /// `SSL_get_error`'s verdict (`SSL_ERROR_NONE` on success).
        var sslError: Int32 = SSL_ERROR_NONE
        /// The OpenSSL error queue after the call.
        var errors = OpenSSLErrors()
        /// errno when the failure came from the socket (`SSL_ERROR_SYSCALL`, or EAGAIN on a timeout).
        var systemError: Int32?

        /// Whether the socket's timeout ended the call.
        var timedOut: Bool {
            sslError == SSL_ERROR_WANT_READ || sslError == SSL_ERROR_WANT_WRITE
                || systemError == EAGAIN || systemError == EWOULDBLOCK
        }
        /// Whether the peer closed the TCP connection without a TLS alert.
        var peerClosed: Bool {
            (sslError == SSL_ERROR_SYSCALL && errors.isEmpty && (systemError ?? 0) == 0)
                || errors.contains(sslReason: SSL_R_UNEXPECTED_EOF_WHILE_READING)
        }
    }

    private let ssl: OpaquePointer
    /// Kept so the context and the socket outlive the `SSL` that points at them.
    private let context: TLSContext
    private let socket: TCPSocket

    /// Creates the `SSL` for `socket`. `serverName` is sent as SNI when it is a host name.
    init(context: TLSContext, socket: TCPSocket, serverName: String? = nil) throws {
        guard let ssl = SSL_new(context.pointer) else {
            throw HandshakeFailure(
                .handshakeFailed, detectedBy: context.verifier.identityCheck.verifier,
                cause: "OpenSSL could not create a connection object.",
                fix: "Check the system OpenSSL installation.", rawReason: OpenSSLErrors.drain().text)
        }
        self.ssl = ssl
        self.context = context
        self.socket = socket
        SSL_set_fd(ssl, socket.descriptor)
        if let serverName, !serverName.isEmpty, !serverName.contains(":"),
            Double(serverName.replacingOccurrences(of: ".", with: "")) == nil
        {
            _ = meshca_SSL_set_tlsext_host_name(ssl, serverName)
        }
    }

    deinit { SSL_free(ssl) }

    /// `SSL_accept`: the server's handshake.
    func accept() -> Step { run { SSL_accept(ssl) } }

    /// `SSL_connect`: the client's handshake.
    func connect() -> Step { run { SSL_connect(ssl) } }

    /// Reads up to `limit` bytes of application data. A TLS 1.3 server refuses a client certificate only
    /// after the client's handshake returned, so a client learns of it here, as an alert.
    func read(limit: Int = 4096) -> (bytes: [UInt8], step: Step) {
        var buffer = [UInt8](repeating: 0, count: limit)
        var count: Int32 = 0
        let result = run {
            count = buffer.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
            return count
        }
        return (count > 0 ? Array(buffer[0..<Int(count)]) : [], result)
    }

    /// Writes `bytes`; returns the step (a failure here after a completed handshake is not a handshake failure).
    @discardableResult
    func write(_ bytes: [UInt8]) -> Step {
        run { bytes.withUnsafeBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) } }
    }

    /// Sends close_notify (best effort) so the peer sees a clean end.
    func shutdown() {
        _ = SSL_shutdown(ssl)
        _ = OpenSSLErrors.drain()
    }

    /// The negotiated protocol, e.g. `TLSv1.3`.
    var version: String { SSL_get_version(ssl).map { String(cString: $0) } ?? "unknown" }

    /// The negotiated cipher suite, e.g. `TLS_AES_256_GCM_SHA384`.
    var cipher: String {
        SSL_get_current_cipher(ssl).flatMap { SSL_CIPHER_get_name($0) }.map { String(cString: $0) } ?? "unknown"
    }

    /// What this side's verifier decided about the peer; `nil` when the peer sent no certificate.
    var peerVerdict: PeerVerifier.Verdict? { context.verifier.verdict }

    /// Whether the peer sent a certificate.
    var peerSentCertificate: Bool {
        guard let certificate = SSL_get1_peer_certificate(ssl) else { return false }
        X509_free(certificate)
        return true
    }

    /// Makes one OpenSSL call and interprets its return value right after it, on this thread.
    private func run(_ call: () -> Int32) -> Step {
        _ = OpenSSLErrors.drain()
        errno = 0
        let result = call()
        guard result <= 0 else { return Step(succeeded: true) }
        let savedErrno = errno
        let sslError = SSL_get_error(ssl, result)
        let errors = OpenSSLErrors.drain()
        let system: Int32? =
            (sslError == SSL_ERROR_SYSCALL || sslError == SSL_ERROR_WANT_READ || sslError == SSL_ERROR_WANT_WRITE)
            ? savedErrno : nil
        return Step(succeeded: false, sslError: sslError, errors: errors, systemError: system)
    }
}

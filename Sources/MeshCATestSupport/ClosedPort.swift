import Foundation
import MeshCAPlatform

/// A loopback TCP port that refuses connections for as long as this value lives: bound (so no other process
/// gets it) but never listening, so a connection to it fails at once with "connection refused", the way a CA
/// that is down looks to a client.
public final class ClosedPort: Sendable {
    /// The port number.
    public let port: Int
    private let socket: Int32

    /// Binds a fresh port on 127.0.0.1.
    public init() throws {
        (socket, port) = try LoopbackSocket.make()
    }

    deinit { close(socket) }
}

/// A loopback TCP port whose connections the kernel completes into the listen backlog and nobody ever answers: a
/// server that stopped responding, as a client sees it (its TLS handshake waits until its own timeout).
public final class UnansweredPort: Sendable {
    /// The port number.
    public let port: Int
    private let socket: Int32

    /// Binds a fresh port on 127.0.0.1 and listens on it.
    public init() throws {
        (socket, port) = try LoopbackSocket.make()
        guard listen(socket, 16) == 0 else {
            close(socket)
            throw BackgroundProcessError("cannot listen on a loopback port: errno \(errno)")
        }
    }

    deinit { close(socket) }
}

/// A TCP socket bound on 127.0.0.1: to a fresh port the kernel chooses, or to `port`.
enum LoopbackSocket {
    static func make(port: Int = 0) throws -> (socket: Int32, port: Int) {
        #if canImport(Glibc)
            let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let socket = Musl.socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard socket >= 0 else { throw BackgroundProcessError("socket() failed: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0
            }
        }
        guard bound else {
            let error = errno
            close(socket)
            throw BackgroundProcessError("cannot bind loopback port \(port): errno \(error)")
        }
        return (socket, Int(UInt16(bigEndian: address.sin_port)))
    }
}

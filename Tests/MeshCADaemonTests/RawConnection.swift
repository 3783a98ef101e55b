import Foundation
import MeshCACore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A fresh workload key's CSR for `spiffe://cluster.local/ns/default/sa/<sa>`.
func workloadCSRPEM(sa: String = "was") throws -> String {
    let id = try SPIFFEID(trustDomain: TrustDomain("cluster.local"), namespace: "default", serviceAccount: sa)
    return try WorkloadCSR.pem(WorkloadCSR.make(for: id, key: KeyType.ecP256.generate()))
}

/// A plain TCP connection that the test controls byte by byte.
final class RawConnection: @unchecked Sendable {  // the socket is only read by one wait at a time
    let socket: Int32

    /// Connects to 127.0.0.1:`port`.
    init(port: Int) throws {
        socket = try RawHTTP.connect(port: port)
    }

    deinit { close(socket) }

    /// Sends `bytes` as they are.
    func send(_ bytes: [UInt8]) throws {
        var rest = bytes[...]
        while !rest.isEmpty {
            let written = rest.withUnsafeBytes { buffer in
                #if canImport(Glibc)
                    Glibc.send(socket, buffer.baseAddress, buffer.count, 0)
                #else
                    Darwin.send(socket, buffer.baseAddress, buffer.count, 0)
                #endif
            }
            guard written > 0 else { throw RawHTTP.Failure.io(errno) }
            rest = rest.dropFirst(written)
        }
    }

    /// Sends text as it is.
    func send(_ text: String) throws {
        try RawHTTP.write(text, to: socket)
    }

    /// Whether the server has closed the connection (end of stream or reset), checked without waiting and
    /// without consuming what it sent.
    var isClosed: Bool {
        var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, 0) > 0 else { return false }
        if descriptor.revents & Int16(POLLHUP | POLLERR) != 0 { return true }
        var byte: UInt8 = 0
        let count = recv(socket, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        return count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
    }

    /// Waits until the server closes the connection (end of stream or reset), reading and dropping whatever it
    /// sends meanwhile; true when it closed before `timeout` passed. The wait blocks a thread of its own, not one
    /// of the cooperative pool the in-process daemon needs.
    func waitForClose(timeout: Duration) async -> Bool {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: self.blockingWaitForClose(timeout: timeout)) }
        }
    }

    private func blockingWaitForClose(timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now < deadline {
            let left = deadline - ContinuousClock.now
            var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            let milliseconds = Int32(max(1, min(1000, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)))
            let ready = poll(&descriptor, 1, milliseconds)
            if ready < 0 && errno != EINTR { return true }
            guard ready > 0 else { continue }
            let count = recv(socket, &buffer, buffer.count, 0)
            if count == 0 { return true }
            if count < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK { return true }
        }
        return false
    }
}

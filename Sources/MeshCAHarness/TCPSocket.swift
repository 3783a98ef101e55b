import Foundation
import MeshCAErrors
import MeshCAPlatform

/// A blocking TCP socket with send and receive timeouts (SO_SNDTIMEO / SO_RCVTIMEO), so no read or write
/// in the harness can wait forever. Closed on deinit.
///
/// Sendable because its only stored property is an immutable descriptor; the system calls made on it are
/// thread-safe, and the harness hands a socket to one thread at a time.
final class TCPSocket: Sendable {
    /// A failed socket call: which call, on which address, and the errno.
    ///
    /// Not a ``HandshakeFailure``: the harness explains it as one (cause and fix) once it knows which side failed.
    struct Failure: CodedError {
        let operation: String
        let address: String
        let systemError: Int32
        /// Always `connection-failed`.
        var code: HandshakeFailure.Code { .connectionFailed }
        var message: String {
            if operation == "resolve" { return "cannot resolve \(address)" }
            return "\(operation) \(address): \(OpenSSLLibrary.systemErrorText(systemError)) (errno \(systemError))"
        }
    }

    /// The file descriptor, handed to OpenSSL with `SSL_set_fd`.
    let descriptor: Int32

    private init(descriptor: Int32) { self.descriptor = descriptor }

    deinit { close(descriptor) }

    /// Binds and listens on `host:port` (port 0 picks a free one); `host` may be a name or an IPv4/IPv6 literal.
    static func listen(host: String, port: UInt16) throws -> TCPSocket {
        let address = "\(host):\(port)"
        return try withAddress(host: host, port: port, passive: true) { info in
            let descriptor = socket(info.ai_family, info.ai_socktype, info.ai_protocol)
            guard descriptor >= 0 else { throw Failure(operation: "socket", address: address, systemError: errno) }
            let socket = TCPSocket(descriptor: descriptor)
            var one: Int32 = 1
            setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            guard bind(descriptor, info.ai_addr, info.ai_addrlen) == 0 else {
                throw Failure(operation: "bind", address: address, systemError: errno)
            }
            guard Glibc.listen(descriptor, 16) == 0 else {
                throw Failure(operation: "listen", address: address, systemError: errno)
            }
            return socket
        }
    }

    /// Connects to `host:port`, giving up after `timeout`.
    static func connect(host: String, port: UInt16, timeout: Duration) throws -> TCPSocket {
        let address = "\(host):\(port)"
        return try withAddress(host: host, port: port, passive: false) { info in
            let descriptor = socket(info.ai_family, info.ai_socktype, info.ai_protocol)
            guard descriptor >= 0 else { throw Failure(operation: "socket", address: address, systemError: errno) }
            let socket = TCPSocket(descriptor: descriptor)
            // Non-blocking connect plus poll(2) bounds the wait; the socket is blocking again afterwards.
            let flags = fcntl(descriptor, F_GETFL)
            _ = fcntl(descriptor, F_SETFL, flags | O_NONBLOCK)
            if Glibc.connect(descriptor, info.ai_addr, info.ai_addrlen) != 0 {
                guard errno == EINPROGRESS else { throw Failure(operation: "connect", address: address, systemError: errno) }
                guard try socket.wait(for: Int16(POLLOUT), timeout: timeout) else {
                    throw Failure(operation: "connect", address: address, systemError: ETIMEDOUT)
                }
                var result: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &result, &length)
                guard result == 0 else { throw Failure(operation: "connect", address: address, systemError: result) }
            }
            _ = fcntl(descriptor, F_SETFL, flags)
            try socket.setTimeouts(timeout)
            return socket
        }
    }

    /// Accepts one connection, or returns `nil` when none arrives within `timeout`.
    func accept(timeout: Duration) throws -> TCPSocket? {
        guard try wait(for: Int16(POLLIN), timeout: timeout) else { return nil }
        let descriptor = Glibc.accept(self.descriptor, nil, nil)
        guard descriptor >= 0 else { throw Failure(operation: "accept", address: "port \(localPort)", systemError: errno) }
        return TCPSocket(descriptor: descriptor)
    }

    /// The locally bound port.
    var localPort: UInt16 {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) == 0 }
        }
        guard ok else { return 0 }
        let family = storage.ss_family
        return withUnsafePointer(to: &storage) { pointer -> UInt16 in
            if family == sa_family_t(AF_INET6) {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                    UInt16(bigEndian: $0.pointee.sin6_port)
                }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                UInt16(bigEndian: $0.pointee.sin_port)
            }
        }
    }

    /// Sets both SO_RCVTIMEO and SO_SNDTIMEO; a blocked read or write then fails with EAGAIN.
    func setTimeouts(_ timeout: Duration) throws {
        let (seconds, attoseconds) = timeout.components
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        for option in [SO_RCVTIMEO, SO_SNDTIMEO] {
            guard setsockopt(descriptor, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<timeval>.size)) == 0 else {
                throw Failure(operation: "setsockopt", address: "fd \(descriptor)", systemError: errno)
            }
        }
    }

    /// Looks at up to `count` bytes without consuming them, waiting until that many arrived, the peer
    /// closed, or the receive timeout passed. Returns what is there (empty on close or timeout) and the errno, if any.
    func peek(count: Int, deadline: ContinuousClock.Instant) -> (bytes: [UInt8], error: Int32?) {
        var buffer = [UInt8](repeating: 0, count: count)
        while true {
            let received = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, count, Int32(MSG_PEEK)) }
            if received < 0 { return ([], errno) }
            if received == 0 || received >= count || ContinuousClock.now >= deadline {
                return (Array(buffer[0..<received]), nil)
            }
            // Fewer bytes than asked for are already here: wait briefly for the rest instead of spinning.
            _ = try? wait(for: Int16(POLLIN), timeout: .milliseconds(10))
            usleep(1_000)
        }
    }

    /// Reads until `isComplete` says the data is enough, the peer closes, `limit` bytes arrived, or the
    /// receive timeout passes. Returns the bytes and the errno that ended it (`nil` for a clean close or completion).
    func receive(limit: Int = 16_384, until isComplete: ([UInt8]) -> Bool) -> (bytes: [UInt8], error: Int32?) {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while data.count < limit && !isComplete(data) {
            let received = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if received < 0 { return (data, errno) }
            if received == 0 { break }
            data += buffer[0..<received]
        }
        return (data, nil)
    }

    /// Writes all of `bytes` (MSG_NOSIGNAL: a closed peer is an error, not a signal). Returns the errno on failure.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Int32? {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes {
                Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 { return errno }
            offset += sent
        }
        return nil
    }

    /// Ends a plaintext exchange gracefully: no more writes, then read and drop what the peer still sends
    /// (for at most half a second), so the peer reads our answer instead of a reset.
    func finish() {
        Glibc.shutdown(descriptor, Int32(SHUT_WR))
        try? setTimeouts(.milliseconds(500))
        _ = receive(limit: 1 << 20) { _ in false }
    }

    /// poll(2) for `events`; `false` on timeout.
    private func wait(for events: Int16, timeout: Duration) throws -> Bool {
        var entry = pollfd(fd: descriptor, events: events, revents: 0)
        let milliseconds = Int32(
            clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        let result = poll(&entry, 1, max(milliseconds, 0))
        if result < 0 && errno != EINTR { throw Failure(operation: "poll", address: "fd \(descriptor)", systemError: errno) }
        return result > 0
    }

    /// Resolves `host:port` (numeric or by name) and tries each address until `body` succeeds.
    private static func withAddress(host: String, port: UInt16, passive: Bool, _ body: (addrinfo) throws -> TCPSocket)
        throws -> TCPSocket
    {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = passive ? AI_PASSIVE : 0
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            let reason = status == 0 ? "no address" : String(cString: gai_strerror(status))
            throw Failure(operation: "resolve", address: "\(host) (\(reason))", systemError: EADDRNOTAVAIL)
        }
        defer { freeaddrinfo(list) }
        var lastError: any Error = Failure(operation: "connect", address: "\(host):\(port)", systemError: EADDRNOTAVAIL)
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            do { return try body(entry.pointee) } catch { lastError = error }
            cursor = entry.pointee.ai_next
        }
        throw lastError
    }
}

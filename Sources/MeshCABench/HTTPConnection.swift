import Foundation

import MeshCAErrors
import MeshCAPlatform

/// A minimal blocking HTTP/1.1 client on one keep-alive TCP connection, enough to POST JSON to `cfssl serve`.
///
/// One connection carries one request at a time (HTTP/1.1 has no multiplexing), so each load-generator
/// worker owns one, on its own thread. Responses are read by `Content-Length` or chunked transfer coding.
final class HTTPConnection {
    private let socket: Int32
    private let hostHeader: String
    private var buffer: [UInt8] = []

    /// Connects to `host` (dotted IPv4) on `port`.
    init(host: String, port: Int) throws {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BenchError(.requestFailed, "socket() failed: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            close(fd)
            throw BenchError(.requestFailed, "\(host) is not an IPv4 address")
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let code = errno
            close(fd)
            throw BenchError(.requestFailed, "could not connect to \(host):\(port): errno \(code)")
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        self.socket = fd
        self.hostHeader = "\(host):\(port)"
    }

    deinit { close(socket) }

    /// POSTs `body` as JSON to `path` and returns the status code and the response body.
    func post(_ path: String, json body: [UInt8]) throws -> (status: Int, body: [UInt8]) {
        let head = "POST \(path) HTTP/1.1\r\nHost: \(hostHeader)\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n"
        try send(Array(head.utf8) + body)
        let headerEnd = try readUntil([13, 10, 13, 10])
        let header = String(decoding: buffer[..<headerEnd], as: UTF8.self)
        buffer.removeFirst(headerEnd + 4)
        let lines = header.split(separator: "\r\n")
        guard let statusLine = lines.first, let status = statusLine.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else {
            throw BenchError(.badResponse, "malformed HTTP response: \(header.prefix(80))")
        }
        var contentLength: Int?
        var chunked = false
        for line in lines.dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let name = parts[0].lowercased()
            let value = parts[1].trimmingCharacters(in: .whitespaces)
            if name == "content-length" { contentLength = Int(value) }
            if name == "transfer-encoding", value.lowercased().contains("chunked") { chunked = true }
        }
        if chunked { return (status, try readChunked()) }
        guard let contentLength else { throw BenchError(.badResponse, "HTTP response without Content-Length or chunked coding") }
        return (status, try take(contentLength))
    }

    private func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(socket, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw BenchError(.requestFailed, "send failed: errno \(errno)") }
            sent += n
        }
    }

    /// Reads more bytes into the buffer; throws at end of stream.
    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 16_384)
        let n = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { throw BenchError(.requestFailed, n == 0 ? "the server closed the connection" : "recv failed: errno \(errno)") }
        buffer.append(contentsOf: chunk[..<n])
    }

    /// The index in the buffer where `marker` starts, reading until it arrives.
    private func readUntil(_ marker: [UInt8]) throws -> Int {
        var from = 0
        while true {
            if buffer.count >= marker.count {
                for start in from...(buffer.count - marker.count) where buffer[start..<(start + marker.count)].elementsEqual(marker) {
                    return start
                }
                from = buffer.count - marker.count + 1
            }
            try fill()
        }
    }

    /// Removes and returns the next `count` bytes.
    private func take(_ count: Int) throws -> [UInt8] {
        while buffer.count < count { try fill() }
        let bytes = Array(buffer[..<count])
        buffer.removeFirst(count)
        return bytes
    }

    private func readChunked() throws -> [UInt8] {
        var body: [UInt8] = []
        while true {
            let end = try readUntil([13, 10])
            let sizeText = String(decoding: buffer[..<end], as: UTF8.self).split(separator: ";").first ?? ""
            buffer.removeFirst(end + 2)
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else { throw BenchError(.badResponse, "malformed chunk size") }
            if size == 0 {
                _ = try readUntil([13, 10])  // the (empty) trailer
                buffer.removeFirst(2)
                return body
            }
            body += try take(size)
            _ = try take(2)
        }
    }
}

import Foundation
import Logging
import MeshCACore
import MeshCATestSupport
import MeshCADaemon
import MeshCAIO
import ServiceLifecycle
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite("The monitoring endpoint serves metrics, health and readiness over HTTP", .timeLimit(.minutes(1)))
struct MonitoringServerTests {
    /// A readiness answer the test can change while the server runs.
    final class Readiness: Sendable {
        let reason = Mutex<String?>("the gRPC listener is not serving")
    }

    /// Runs a server on 127.0.0.1 port 0 in a ServiceGroup, hands its port to `body`, then shuts the
    /// group down gracefully and returns the port, now closed.
    @discardableResult
    func withServer(
        metrics: CAMetrics = CAMetrics(),
        readiness: Readiness = Readiness(),
        crl: (@Sendable () -> CertificateRevocationList?)? = nil,
        _ body: (Int) async throws -> Void
    ) async throws -> Int {
        let logger = Logger(label: "meshca.test.monitoring", factory: { _ in SwiftLogNoOpLogHandler() })
        let server = MonitoringServer(
            host: "127.0.0.1", port: 0, metrics: metrics,
            readiness: { readiness.reason.withLock { $0 } }, crl: crl, logger: logger
        )
        let group = ServiceGroup(configuration: .init(services: [server], logger: logger))
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let address = try await server.boundAddress
            #expect(address.host == "127.0.0.1" && address.port > 0)
            do {
                try await body(address.port)
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return address.port
        }
    }

    @Test("GET /healthz answers 200 ok")
    func healthz() async throws {
        try await withServer { port in
            let response = try RawHTTP.send("GET /healthz HTTP/1.1", port: port)
            #expect(response.status == 200)
            #expect(response.body == "ok\n")
        }
    }

    @Test("GET /crl answers 503 until a CRL is published, then the DER as application/pkix-crl; /crl.pem the PEM")
    func crl() async throws {
        let published = try CertificateRevocationList.sign(
            entries: [], issuer: TestPKI(createdAt: Date(), rootTTL: .seconds(86_400)).signer, number: 1,
            thisUpdate: Date(), nextUpdate: Date().addingTimeInterval(3600))
        let current = Mutex<CertificateRevocationList?>(nil)
        try await withServer(crl: { current.withLock { $0 } }) { port in
            let before = try RawHTTP.send("GET /crl HTTP/1.1", port: port)
            #expect(before.status == 503)
            #expect(before.body.contains("no CRL published yet"))
            current.withLock { $0 = published }
            let der = try RawHTTP.send("GET /crl HTTP/1.1", port: port)
            #expect(der.status == 200)
            #expect(der.headers["content-type"] == "application/pkix-crl")
            #expect(der.headers["content-length"] == String(published.derBytes.count))
            let pem = try RawHTTP.send("GET /crl.pem HTTP/1.1", port: port)
            #expect(pem.status == 200)
            #expect(try CertificateRevocationList(pemEncoded: pem.body) == published)
        }
    }

    @Test("GET /metrics shows the counters and histogram buckets the CA has moved")
    func metrics() async throws {
        let metrics = CAMetrics()
        metrics.csrReceived()
        metrics.csrReceived()
        metrics.issued(duration: .milliseconds(3))
        metrics.rejected(reason: IssuanceError.Code.malformedCSR)
        metrics.setRootExpiry(Date(timeIntervalSince1970: 2_000_000_000))
        try await withServer(metrics: metrics) { port in
            let response = try RawHTTP.send("GET /metrics HTTP/1.1", port: port)
            #expect(response.status == 200)
            #expect(response.headers["content-type"]?.contains("version=0.0.4") == true)
            let lines = Set(response.body.split(separator: "\n").map(String.init))
            #expect(lines.contains("citadel_server_csr_count 2"))
            #expect(lines.contains("citadel_server_success_cert_issuance_count 1"))
            #expect(lines.contains(#"meshca_issuance_duration_seconds_bucket{le="0.0025"} 0"#))
            #expect(lines.contains(#"meshca_issuance_duration_seconds_bucket{le="0.005"} 1"#))
            #expect(lines.contains(#"meshca_rejections_total{reason="malformed-csr"} 1"#))
            #expect(lines.contains("citadel_server_csr_parsing_err_count 1"))
            #expect(lines.contains("citadel_server_root_cert_expiry_timestamp 2000000000.0"))
        }
    }

    @Test("GET /readyz answers 503 with the reason until the daemon is ready, then 200")
    func readyz() async throws {
        let readiness = Readiness()
        try await withServer(readiness: readiness) { port in
            let before = try RawHTTP.send("GET /readyz HTTP/1.1", port: port)
            #expect(before.status == 503)
            #expect(before.body == "not ready: the gRPC listener is not serving\n")
            readiness.reason.withLock { $0 = nil }
            let after = try RawHTTP.send("GET /readyz HTTP/1.1", port: port)
            #expect(after.status == 200)
            #expect(after.body == "ready\n")
        }
    }

    @Test("An unknown path is 404 and a known path with another method is 405")
    func unknownPathAndMethod() async throws {
        try await withServer { port in
            #expect(try RawHTTP.send("GET /nope HTTP/1.1", port: port).status == 404)
            #expect(try RawHTTP.send("GET /metricsx HTTP/1.1", port: port).status == 404)
            let post = try RawHTTP.send("POST /metrics HTTP/1.1", port: port, body: "x=1")
            #expect(post.status == 405)
            #expect(post.headers["allow"] == "GET")
            #expect(try RawHTTP.send("GET /healthz?verbose=1 HTTP/1.1", port: port).status == 200)
        }
    }

    @Test("After graceful shutdown the port refuses connections")
    func refusesAfterShutdown() async throws {
        let port = try await withServer { port in
            let response = try RawHTTP.send("GET /healthz HTTP/1.1", port: port)
            #expect(response.status == 200)
        }
        #expect(throws: RawHTTP.Failure.connect(ECONNREFUSED)) { try RawHTTP.connect(port: port) }
    }

    @Test("Shutdown closes an idle keep-alive connection")
    func closesIdleConnections() async throws {
        var socket: Int32 = -1
        try await withServer { port in
            socket = try RawHTTP.connect(port: port)
            try RawHTTP.write("GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n", to: socket)
            #expect(try RawHTTP.readUntil("ok\n", from: socket).hasPrefix("HTTP/1.1 200"))
        }
        defer { close(socket) }
        #expect(try RawHTTP.readUntil(nil, from: socket).isEmpty)  // end of stream: the server closed it
    }

    @Test("A port that is taken fails run() with an error naming the monitoring key")
    func portInUse() async throws {
        try await withServer { port in
            let second = MonitoringServer(
                host: "127.0.0.1", port: port, metrics: CAMetrics(), readiness: { nil },
                logger: Logger(label: "meshca.test.monitoring", factory: { _ in SwiftLogNoOpLogHandler() })
            )
            let error = await #expect(throws: DaemonError.self) { try await second.run() }
            #expect(error?.description.contains("monitoring: cannot listen on 127.0.0.1:\(port)") == true)
            await #expect(throws: DaemonError.self) { _ = try await second.boundAddress }
        }
    }
}

/// A blocking HTTP/1.1 client on a raw socket, so a test controls every byte it sends and sees
/// "connection refused" as itself. Reads time out after 5 seconds rather than hang.
enum RawHTTP {
    enum Failure: Error, Equatable {
        case connect(Int32)
        case io(Int32)
        case malformed(String)
    }

    struct Response {
        var status: Int
        /// Header names lowercased.
        var headers: [String: String]
        var body: String
    }

    /// Sends one request with `Connection: close` and reads the whole response.
    static func send(_ requestLine: String, port: Int, body: String = "") throws -> Response {
        let socket = try connect(port: port)
        defer { close(socket) }
        let request =
            "\(requestLine)\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        try write(request, to: socket)
        let raw = try readUntil(nil, from: socket)
        guard let split = raw.range(of: "\r\n\r\n") else { throw Failure.malformed(raw) }
        let lines = raw[..<split.lowerBound].components(separatedBy: "\r\n")
        let statusWords = lines[0].split(separator: " ")
        guard statusWords.count >= 2, let status = Int(statusWords[1]) else { throw Failure.malformed(raw) }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces)
        }
        return Response(status: status, headers: headers, body: String(raw[split.upperBound...]))
    }

    /// A connected TCP socket to 127.0.0.1:`port`.
    static func connect(port: Int) throws -> Int32 {
        #if canImport(Glibc)
            let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let socket = Darwin.socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard socket >= 0 else { throw Failure.io(errno) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                #if canImport(Glibc)
                    Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                #else
                    Darwin.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                #endif
            }
        }
        guard result == 0 else {
            let code = errno
            close(socket)
            throw Failure.connect(code)
        }
        return socket
    }

    static func write(_ text: String, to socket: Int32) throws {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { buffer in
                #if canImport(Glibc)
                    Glibc.send(socket, buffer.baseAddress, buffer.count, 0)
                #else
                    Darwin.send(socket, buffer.baseAddress, buffer.count, 0)
                #endif
            }
            guard written > 0 else { throw Failure.io(errno) }
            bytes = bytes.dropFirst(written)
        }
    }

    /// Reads until the text received so far contains `marker`, or until end of stream when `marker` is nil.
    static func readUntil(_ marker: String?, from socket: Int32) throws -> String {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            if let marker, String(decoding: received, as: UTF8.self).contains(marker) { break }
            let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if count == 0 { break }
            guard count > 0 else { throw Failure.io(errno) }
            received += chunk[..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }
}

import Foundation
import Logging
import MeshCACore
import MeshCADaemon
import MeshCATestSupport
import MeshCATransport
import Synchronization
import X509

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Every line a logger wrote, for tests that check what the daemon logs.
final class CapturedLog: Sendable {
    private let lines = Mutex<[String]>([])

    /// A logger writing here (everything from `trace` up).
    func logger(_ label: String = "meshca.test") -> Logger {
        Logger(label: label) { _ in Handler(log: self) }
    }

    /// The lines so far, `LEVEL message`.
    var all: [String] { lines.withLock { $0 } }

    /// The first line containing `text`, waiting for one until `timeout` passes.
    func waitForLine(containing text: String, timeout: Duration = .seconds(30)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let line = all.first(where: { $0.contains(text) }) { return line }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw BackgroundProcessError("no log line contains \"\(text)\" within \(timeout); the log:\n\(all.joined(separator: "\n"))")
    }

    /// Runs `body`; when it throws, the error is thrown again with the log's warnings and errors attached.
    func explainingFailure<Result>(_ body: () async throws -> Result) async throws -> Result {
        do {
            return try await body()
        } catch {
            let notable = all.filter { $0.hasPrefix("warning") || $0.hasPrefix("error") || $0.hasPrefix("notice") }
            throw BackgroundProcessError("\(error); the daemon logged:\n\(notable.joined(separator: "\n"))")
        }
    }

    private struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let extra = (event.metadata ?? [:]).merging(metadata) { new, _ in new }
            let suffix = extra.isEmpty ? "" : " " + extra.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            log.lines.withLock { $0.append("\(event.level) \(event.message)\(suffix)") }
        }
    }
}

/// `meshca serve` run in this process (``Daemon``) on loopback ports chosen by the kernel, with its own state
/// directory and a captured log; join tokens come from the real `meshca token create`.
final class InProcessDaemon: Sendable {
    let directory: TemporaryDirectory
    let log: CapturedLog
    /// The gRPC/TLS port.
    let grpcPort: Int
    /// The monitoring port.
    let monitoringPort: Int
    private let task: Task<Void, any Error>

    var stateDir: String { directory.file("state") }
    var grpcAddress: String { "127.0.0.1:\(grpcPort)" }

    /// Creates a CA with `meshca token create` (so `token` is ready to use), then starts a daemon on it with
    /// `configure` applied to a configuration without rate limits, and waits until both listeners are bound.
    static func start(tokenUses: Int = 1, _ configure: (inout DaemonConfiguration) -> Void = { _ in }) async throws -> (
        InProcessDaemon, token: String
    ) {
        let directory = try TemporaryDirectory("daemon")
        let state = directory.file("state")
        let created = try await Command.meshca(["token", "create", "--sa", "was", "--uses", String(tokenUses), "--state-dir", state])
        guard created.status == 0 else { throw BackgroundProcessError("token create failed: \(created.stderr)") }
        var configuration = DaemonConfiguration()
        configuration.listen = .init(host: "127.0.0.1", port: 0)
        configuration.monitoring = .init(host: "127.0.0.1", port: 0)
        configuration.stateDirectory = state
        configuration.dnsNames = ["localhost"]
        configuration.rateLimit = nil
        configuration.authFailureLimit = nil
        configure(&configuration)
        let log = CapturedLog()
        let ready = AsyncStream<(String, String)>.makeStream()
        let daemon = Daemon(configuration: configuration, logger: log.logger()) { grpc, monitoring in
            ready.continuation.yield((grpc, monitoring))
            ready.continuation.finish()
        }
        let task = Task { try await daemon.run() }
        let deadline = Task {
            try await Task.sleep(for: .seconds(60))
            ready.continuation.finish()
        }
        defer { deadline.cancel() }
        var iterator = ready.stream.makeAsyncIterator()
        guard let (grpc, monitoring) = await iterator.next(),
            let grpcPort = grpc.split(separator: ":").last.flatMap({ Int($0) }),
            let monitoringPort = monitoring.split(separator: ":").last.flatMap({ Int($0) })
        else {
            task.cancel()
            throw BackgroundProcessError("the daemon did not become ready; its log:\n\(log.all.joined(separator: "\n"))")
        }
        let token = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return (InProcessDaemon(directory: directory, log: log, grpcPort: grpcPort, monitoringPort: monitoringPort, task: task), token)
    }

    private init(directory: TemporaryDirectory, log: CapturedLog, grpcPort: Int, monitoringPort: Int, task: Task<Void, any Error>) {
        self.directory = directory
        self.log = log
        self.grpcPort = grpcPort
        self.monitoringPort = monitoringPort
        self.task = task
    }

    /// The CA's roots.
    func roots() throws -> [Certificate] {
        try Certificate.parseAll(pem: String(contentsOfFile: directory.file("state/root-cert.pem"), encoding: .utf8))
    }

    /// A client trusting this CA's roots.
    func client() throws -> CAClient {
        try CAClient(address: grpcAddress, trust: .roots(roots()))
    }

    /// Stops the daemon (as a cancelled service group does) and removes its directory.
    func stop() async {
        task.cancel()
        _ = try? await task.value
        directory.remove()
    }
}

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

import Foundation
import Logging
import MeshCACore
import MeshCADaemon
import MeshCAIO
import MeshCATransport
import Synchronization
import X509

/// Every line a logger wrote, for tests that check what the daemon or the agent logs.
public final class CapturedLog: Sendable {
    /// One log call: its level, message and metadata (the logger's and the call's, each value as text).
    public struct Entry: Sendable {
        public let level: Logger.Level
        public let message: String
        public let metadata: [String: String]

        /// `LEVEL message key=value...`, keys sorted.
        public var line: String {
            let suffix = metadata.isEmpty ? "" : " " + metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            return "\(level) \(message)\(suffix)"
        }
    }

    private let captured = Mutex<[Entry]>([])

    public init() {}

    /// A logger writing here (everything from `trace` up).
    public func logger(_ label: String = "meshca.test") -> Logger {
        Logger(label: label) { _ in Handler(log: self) }
    }

    /// The lines so far, `LEVEL message key=value...`.
    public var all: [String] { entries.map(\.line) }

    /// The entries so far, oldest first.
    public var entries: [Entry] { captured.withLock { $0 } }

    /// The first line containing `text`, waiting for one until `timeout` passes (a hang guard).
    public func waitForLine(containing text: String, timeout: Duration = .seconds(60)) async throws -> String {
        do {
            return try await Wait.value("a log line contains \"\(text)\"", timeout: timeout) {
                all.first(where: { $0.contains(text) })
            }
        } catch let error as WaitError {
            throw WaitError("\(error); the log:\n\(all.joined(separator: "\n"))")
        }
    }

    /// Runs `body`; when it throws, the error is thrown again with the log's warnings and errors attached.
    public func explainingFailure<Result>(_ body: () async throws -> Result) async throws -> Result {
        do {
            return try await body()
        } catch {
            let notable = all.filter { $0.hasPrefix("warning") || $0.hasPrefix("error") || $0.hasPrefix("notice") }
            throw BackgroundProcessError("\(error); the log:\n\(notable.joined(separator: "\n"))")
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
            let all = (event.metadata ?? [:]).merging(metadata) { new, _ in new }
            let entry = Entry(level: event.level, message: "\(event.message)", metadata: all.mapValues { "\($0)" })
            log.captured.withLock { $0.append(entry) }
        }
    }
}

/// `meshca serve` run in this process (``Daemon``) on loopback ports chosen by the kernel, with its own state
/// directory and a captured log; join tokens come from the real `meshca token create`. Its periodic services run
/// on the ``ServiceTime`` given (a ``TestClock`` for tests of renewal, CRL refresh and expiry gauges).
public final class InProcessDaemon: Sendable {
    public let directory: TemporaryDirectory
    public let log: CapturedLog
    /// The gRPC/TLS port.
    public let grpcPort: Int
    /// The monitoring port.
    public let monitoringPort: Int
    private let task: Task<Void, any Error>

    /// The CA's state directory: in ``directory``, or a first daemon's for a ``replica(time:_:)``.
    public let stateDir: String
    /// What the `meshca` commands run for this daemon get in their environment (e.g. `MESHCA_LEDGER`).
    public let environment: [String: String]
    /// `127.0.0.1:PORT` of the gRPC listener.
    public var grpcAddress: String { "127.0.0.1:\(grpcPort)" }

    /// Creates a CA with `meshca token create` (so `token` is ready to use), then starts a daemon on it with
    /// `configure` applied to a configuration without rate limits, its periodic services on `time`, and returns
    /// once both listeners are bound. With `initArguments`, the CA is made first by `meshca init` with them (e.g.
    /// `--key pkcs11:...`), the commands running with `environment` added.
    public static func start(
        tokenUses: Int = 1, time: ServiceTime = .system, initArguments: [String]? = nil, environment: [String: String] = [:],
        _ configure: (inout DaemonConfiguration) -> Void = { _ in }
    ) async throws -> (InProcessDaemon, token: String) {
        let directory = try TemporaryDirectory("daemon")
        let state = directory.file("state")
        if let initArguments {
            let initialized = try await Command.meshca(["init"] + initArguments + ["--state-dir", state], environment: environment)
            guard initialized.status == 0 else { throw BackgroundProcessError("init failed: \(initialized.stderr)") }
        }
        let created = try await Command.meshca(
            ["token", "create", "--sa", "was", "--uses", String(tokenUses), "--state-dir", state], environment: environment)
        guard created.status == 0 else { throw BackgroundProcessError("token create failed: \(created.stderr)") }
        let token = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        do {
            return (try await launch(directory: directory, state: state, environment: environment, time: time, configure), token)
        } catch {
            directory.remove()
            throw error
        }
    }

    /// Another daemon on this one's state directory, so on the same CA files and ledger: a replica that can renew
    /// what this one issued and use its tokens. It has its own ports, log and (empty) ``directory``; stopping it
    /// leaves the shared state directory to this daemon, which must outlive it.
    public func replica(
        time: ServiceTime = .system, _ configure: (inout DaemonConfiguration) -> Void = { _ in }
    ) async throws -> InProcessDaemon {
        let directory = try TemporaryDirectory("replica")
        do {
            return try await Self.launch(directory: directory, state: stateDir, environment: environment, time: time, configure)
        } catch {
            directory.remove()
            throw error
        }
    }

    /// Starts a daemon on the CA in `state` and returns once both listeners are bound.
    private static func launch(
        directory: TemporaryDirectory, state: String, environment: [String: String], time: ServiceTime,
        _ configure: (inout DaemonConfiguration) -> Void
    ) async throws -> InProcessDaemon {
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
        let daemon = Daemon(configuration: configuration, logger: log.logger(), time: time) { grpc, monitoring in
            ready.continuation.yield((grpc, monitoring))
            ready.continuation.finish()
        }
        let task = Task {
            defer { ready.continuation.finish() }
            try await daemon.run()
        }
        var iterator = ready.stream.makeAsyncIterator()
        guard let (grpc, monitoring) = await iterator.next(),
            let grpcPort = grpc.split(separator: ":").last.flatMap({ Int($0) }),
            let monitoringPort = monitoring.split(separator: ":").last.flatMap({ Int($0) })
        else {
            task.cancel()
            let failure = await task.result
            throw BackgroundProcessError("the daemon stopped before it was ready (\(failure)); its log:\n\(log.all.joined(separator: "\n"))")
        }
        return InProcessDaemon(
            directory: directory, stateDir: state, environment: environment, log: log, grpcPort: grpcPort,
            monitoringPort: monitoringPort, task: task)
    }

    private init(
        directory: TemporaryDirectory, stateDir: String, environment: [String: String], log: CapturedLog, grpcPort: Int,
        monitoringPort: Int, task: Task<Void, any Error>
    ) {
        self.directory = directory
        self.stateDir = stateDir
        self.environment = environment
        self.log = log
        self.grpcPort = grpcPort
        self.monitoringPort = monitoringPort
        self.task = task
    }

    /// The CA's roots.
    public func roots() throws -> [Certificate] {
        try Certificate.parseAll(pem: String(contentsOfFile: stateDir + "/root-cert.pem", encoding: .utf8))
    }

    /// Runs the built `meshca` with `arguments` on this daemon's state directory (and ``environment``).
    public func meshca(_ arguments: [String]) async throws -> Command.Result {
        try await Command.meshca(arguments + ["--state-dir", stateDir], environment: environment)
    }

    /// A client trusting this CA's roots.
    public func client() throws -> CAClient {
        try CAClient(address: grpcAddress, trust: .roots(roots()))
    }

    /// A new join token for `sa` in namespace default, valid for `ttl`, made with the real `meshca token create`.
    public func token(sa: String = "was", uses: Int = 1, ttl: String = "1h") async throws -> String {
        let created = try await Command.meshca(
            ["token", "create", "--sa", sa, "--uses", String(uses), "--ttl", ttl, "--state-dir", stateDir],
            environment: environment)
        guard created.status == 0 else { throw BackgroundProcessError("token create failed: \(created.stderr)") }
        return created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Stops the daemon (as a cancelled service group does) and removes its directory (for a replica, not the shared
    /// state directory).
    public func stop() async {
        task.cancel()
        _ = try? await task.value
        directory.remove()
    }

    /// A test that ended before ``stop()`` (an expectation that threw) leaves no directory behind either.
    deinit {
        task.cancel()
        directory.remove()
    }
}

import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import ServiceLifecycle
import Synchronization

/// The agent's SPIFFE Workload API endpoint: gRPC on a Unix socket, as a ServiceLifecycle service.
///
/// `run()` creates the socket's directory (0755) if missing, refuses a directory other users could rearrange
/// (writable by others without the sticky bit), binds in a private directory beside the socket, gives the socket
/// mode 0666 there and renames it into place (replacing a stale socket, never a file of another kind), and serves `SpiffeWorkloadAPI` until graceful
/// shutdown or cancellation; it removes the socket on the way out unless another process has replaced
/// it. Anyone may connect; each call is admitted by the caller's uid as the kernel reports it
/// (`SO_PEERCRED`), checked against `allowedUIDs`. On graceful shutdown, open streams end with
/// `UNAVAILABLE` so SPIFFE clients reconnect.
///
/// ```swift
/// let api = WorkloadAPIServer(socketPath: "/run/meshca/agent.sock", credentials: broadcast,
///                             allowedUIDs: [getuid()], logger: logger)
/// try await ServiceGroup(services: [renewal, api], gracefulShutdownSignals: [.sigterm], logger: logger).run()
/// ```
public final class WorkloadAPIServer: Service, Sendable {
    /// The absolute path of the socket.
    public let socketPath: String
    /// The uids whose processes may use the API.
    public let allowedUIDs: Set<UInt32>
    private let credentials: CredentialsBroadcast
    private let logger: Logger
    private let listening = Mutex(false)
    /// The open `FetchX509SVID` and `FetchX509Bundles` streams: the workloads connected now.
    private let streams = Atomic<Int>(0)
    /// Runs between binding and moving the socket into place (tests plant things at the socket path there).
    private let afterBind: (@Sendable () -> Void)?

    /// A server for `socketPath` (made absolute) handing out `credentials` to processes of `allowedUIDs`.
    ///
    /// - Parameters:
    ///   - socketPath: Where to bind; clients use `unix://<absolute path>` (`SPIFFE_ENDPOINT_SOCKET`).
    ///   - credentials: The agent's credentials; every change is pushed to open streams.
    ///   - allowedUIDs: Admitted caller uids; an empty set refuses every caller.
    ///   - logger: Receives stream and refusal events; keys are never logged.
    public convenience init(socketPath: String, credentials: CredentialsBroadcast, allowedUIDs: Set<UInt32>, logger: Logger) {
        self.init(socketPath: socketPath, credentials: credentials, allowedUIDs: allowedUIDs, logger: logger, afterBind: nil)
    }

    init(
        socketPath: String, credentials: CredentialsBroadcast, allowedUIDs: Set<UInt32>, logger: Logger,
        afterBind: (@Sendable () -> Void)?
    ) {
        self.socketPath = WorkloadAPISocket(path: socketPath).path
        self.credentials = credentials
        self.allowedUIDs = allowedUIDs
        self.logger = logger
        self.afterBind = afterBind
    }

    /// Whether the socket is bound, has its final mode, and accepts calls.
    public var isListening: Bool { listening.withLock { $0 } }

    /// How many Workload API streams are open (each workload watching its SVID or bundles holds one).
    public var openStreams: Int { streams.load(ordering: .relaxed) }

    /// Serves until graceful shutdown or cancellation, then removes the socket.
    ///
    /// - Throws: ``AgentError`` when the socket path or its directory is unusable, or the
    ///   transport's error when binding fails.
    public func run() async throws {
        let socket = WorkloadAPISocket(path: socketPath)
        try socket.prepare()
        let staging = try socket.stage()
        let staged = Mutex(true)
        let discardStaging: @Sendable () -> Void = {
            if staged.withLock({ state in defer { state = false }; return state }) { socket.discard(staging) }
        }
        let shutdown = WorkloadAPIShutdown()
        let service = WorkloadAPIService(
            credentials: credentials,
            allowedUIDs: allowedUIDs,
            shutdown: shutdown,
            logger: logger,
            streamsChanged: { change in self.streams.add(change, ordering: .relaxed) }
        )
        let transport = HTTP2ServerTransport.Posix(
            address: .unixDomainSocket(path: staging.socketPath),
            transportSecurity: .plaintext,
            config: .defaults { config in
                config.channelDebuggingCallbacks.onAcceptHTTP2Stream = PeerCredentialsStamp.install(on:)
            }
        )
        let server = GRPCServer(transport: transport, services: [service])
        let bound = Mutex<WorkloadAPISocket.Identity?>(nil)
        defer {
            discardStaging()
            listening.withLock { $0 = false }
            if let identity = bound.withLock({ $0 }) { socket.remove(ifStill: identity) }
        }

        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask {
                    do {
                        try await server.serve()
                    } catch {
                        // Shutdown before serving began makes gRPC refuse to start, which is fine.
                        guard shutdown.isTriggered && !self.isListening else { throw error }
                    }
                }
                // When binding fails this returns nothing, and the serving task's error is what `run()` throws.
                guard (try? await transport.listeningAddress) != nil else { return }
                afterBind?()
                let identity = try socket.publish(staging)
                discardStaging()
                bound.withLock { $0 = identity }
                listening.withLock { $0 = true }
                logger.info(
                    "Workload API listening",
                    metadata: [
                        "socket": "\(socket.path)",
                        "allowed_uids": "\(allowedUIDs.sorted().map(String.init).joined(separator: ","))",
                    ]
                )
            }
        } onGracefulShutdown: {
            // Streams first: gRPC's graceful shutdown waits for open RPCs, and these never end by themselves.
            shutdown.trigger()
            server.beginGracefulShutdown()
        }
        logger.info("Workload API stopped", metadata: ["socket": "\(socket.path)"])
    }
}

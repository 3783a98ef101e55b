#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import MeshCACore
import MeshCAIO
import NIOHTTP1
import ServiceLifecycle
import UnixSignals

/// Everything `meshca agent` runs: the renewal loop, the CRL fetch, the status endpoint (`/healthz`, `/status`,
/// `/metrics`) and the Workload API, in one
/// `ServiceGroup` that stops gracefully on SIGTERM/SIGINT.
public struct AgentRuntime: Sendable {
    /// The validated configuration.
    public let configuration: AgentConfiguration
    private let logger: Logger
    private let onStatusReady: @Sendable (_ address: String) -> Void
    /// The time the renewal loop and the CRL fetch run on.
    private let time: ServiceTime

    /// An agent for `configuration`, its loops on `time`; `onStatusReady` gets the bound status address (`HOST:PORT`).
    public init(
        configuration: AgentConfiguration, logger: Logger, time: ServiceTime = .system,
        onStatusReady: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.logger = logger
        self.time = time
        self.onStatusReady = onStatusReady
    }

    /// Runs until a shutdown signal.
    public func run() async throws {
        // Many systems start processes at 1024 open files; the status port's connection cap is derived from the limit.
        OpenFileLimit.raiseToHardLimit()
        // An --out that can never be written is a configuration error: fail before asking the CA.
        try CredentialDirectory(path: configuration.outDirectory).prepareDirectory()
        let broadcast = CredentialsBroadcast()
        let status = AgentStatusBox(spiffeID: configuration.identity.uri)
        let crls = configuration.crlURL.map {
            CRLFetcher(
                url: $0, directory: configuration.outDirectory, interval: configuration.crlRefreshInterval,
                broadcast: broadcast, status: status, time: time, logger: logger)
        }
        var onNewCertificate: (@Sendable () async -> Void)?
        if let crls { onNewCertificate = { _ = await crls.fetch(at: time.now()) } }
        let agent = Agent(
            configuration: configuration, broadcast: broadcast, status: status, logger: logger, time: time,
            onNewCertificate: onNewCertificate)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let crls { services.append(.init(service: crls)) }
        let workloadAPI = configuration.workloadAPISocket.map {
            WorkloadAPIServer(socketPath: $0, credentials: broadcast, allowedUIDs: configuration.workloadUIDs, logger: logger)
        }
        if let address = configuration.statusAddress {
            let server = MonitoringServer(
                host: address.host,
                port: address.port,
                routes: [
                    "/healthz": {
                        // Healthy while there is an unexpired certificate; before the first one, while trying.
                        let snapshot = status.current
                        return snapshot.state == "expired" ? MonitoringResponse(.serviceUnavailable, "expired\n") : .ok("ok\n")
                    },
                    "/status": { .ok(status.current.json(at: time.now()), contentType: "application/json") },
                    "/metrics": {
                        .ok(
                            AgentMetrics.exposition(status.current, at: time.now(), workloadAPIStreams: workloadAPI?.openStreams),
                            contentType: "text/plain; version=0.0.4; charset=utf-8")
                    },
                ],
                setting: "--status-addr",
                bindHint: "Pass --status-addr with a free HOST:PORT (e.g. 127.0.0.1:15021), or --status-addr off.",
                logger: logger
            )
            services.append(.init(service: server))
            // The first request to the CA waits until the status port is bound: a port that is taken then stops the
            // agent before any call is in flight. (A gRPC call to an unreachable CA that was cancelled by the group's
            // shutdown could leave the release build waiting forever, the process never exiting.)
            services.append(.init(service: AfterListening(server: server, announce: onStatusReady, service: agent)))
        } else {
            services.append(.init(service: agent))
        }
        if let workloadAPI { services.append(.init(service: workloadAPI)) }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// Reports the status endpoint's bound address once it is listening, then runs `service`; when the endpoint cannot
/// bind, throws its bind error instead.
struct AfterListening: Service {
    let server: MonitoringServer
    let announce: @Sendable (String) -> Void
    let service: any Service

    func run() async throws {
        let address = try await server.boundAddress
        announce(HostPort(host: address.host, port: address.port).description)
        try await service.run()
    }
}

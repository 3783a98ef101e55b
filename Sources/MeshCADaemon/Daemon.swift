import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import MeshCACore
import MeshCAIO
import MeshCALedger
import MeshCATransport
import X509
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import UnixSignals

/// `meshca serve`: the CA as a long-running service.
///
/// Start-up validates and prepares everything before binding a port (CA state, created only with
/// `init-if-missing`; ledger; JWT keys; serving certificate; the CRL), then runs the gRPC listener, the monitoring endpoint,
/// the CRL refresh, the serving-certificate renewal and the watcher that follows root rotations
/// (``CAStateWatcher``) in one `ServiceGroup`. SIGTERM/SIGINT start a graceful
/// shutdown: no new connections, in-flight requests finish (and are recorded) before exit.
public struct Daemon: Sendable {
    /// The validated configuration.
    public let configuration: DaemonConfiguration
    private let logger: Logger
    /// Called once, with the bound gRPC and monitoring addresses, when the daemon is ready.
    private let onReady: @Sendable (_ grpc: String, _ monitoring: String) -> Void
    /// The time its periodic services (serving-certificate renewal, CRL refresh, CA-file watcher, expiry gauges) run on.
    private let time: ServiceTime

    /// A daemon for `configuration`, its periodic services on `time`.
    public init(
        configuration: DaemonConfiguration, logger: Logger, time: ServiceTime = .system,
        onReady: @escaping @Sendable (String, String) -> Void = { _, _ in }
    ) {
        self.configuration = configuration
        self.logger = logger
        self.time = time
        self.onReady = onReady
    }

    /// Runs until a shutdown signal (or a fatal error).
    public func run() async throws {
        let config = configuration
        let limits = connectionLimits()
        let directory = StateDirectory.resolve(explicit: config.stateDirectory)
        let state = try loadCA(in: directory)
        for warning in state.warnings { logger.warning("\(warning)") }
        if let location = state.keyLocation, case .pkcs11 = location {
            logger.info("the CA key is in a hardware security module", metadata: ["key": "\(location)"])
        }
        // Checkpoints of the ledger's hash chain are signed with a key of their own, never the CA key.
        // A read-only state directory (a Kubernetes Secret that replicas share) is read, never written: the CRL is
        // only served at /crl, and checkpoints are signed only when the Secret carries ledger-key.pem.
        let writable = directory.isWritable
        let keyPath = FileCheckpointSigner.path(besideLedgerAt: directory.ledgerPath)
        var ledgerOptions = LedgerLocation.Options()
        if writable || FileManager.default.fileExists(atPath: keyPath) {
            ledgerOptions.checkpointSigner = try FileCheckpointSigner(path: keyPath)
        }
        if !writable {
            logger.notice(
                "the state directory is read-only: crl.pem is not written (the CRL is served at /crl)",
                metadata: ["state_dir": "\(directory.path)"])
            if ledgerOptions.checkpointSigner == nil {
                logger.warning(
                    """
                    the read-only state directory has no ledger-key.pem, so this daemon signs no ledger checkpoints; \
                    add the ledger-key.pem that `meshca init` made to the directory's source (the Secret)
                    """,
                    metadata: ["state_dir": "\(directory.path)"])
            }
        }
        ledgerOptions.logger = logger
        let startupLogger = logger
        ledgerOptions.backfillProgress = { done, total in
            if done == 0 {
                startupLogger.notice("bringing the ledger's existing rows onto the hash chain (once, after the upgrade)", metadata: ["events": "\(total)"])
            } else if done == total {
                startupLogger.notice("the ledger's existing rows are on the hash chain", metadata: ["events": "\(total)"])
            }
        }
        let ledger = try await config.ledger.open(in: directory, options: ledgerOptions)
        let service = IssuanceService(
            state: state, ledger: ledger, policy: try IssuancePolicy(defaultTTL: config.defaultTTL, maxTTL: config.maxTTL),
            retryWindow: config.retryWindow)
        let authority = service.authority
        let metrics = CAMetrics(now: time.now)
        metrics.addProcessMetrics()
        metrics.setCAExpiry(of: state.signer)

        // JWT keys from the cluster (jwks-url): fetched once before serving, then refreshed by their own service.
        let remoteKeys = try config.jwksURL.map {
            try RemoteJWTKeys(
                source: .init(url: $0, caFile: config.jwksCAFile, tokenFile: config.jwksTokenFile, refresh: config.jwksRefresh),
                time: time, logger: logger, metrics: metrics)
        }
        if let remoteKeys { await remoteKeys.refresh() }
        let jwt: JWTAuthenticator? =
            if let remoteKeys {
                JWTAuthenticator(
                    remote: remoteKeys, issuer: config.jwtIssuer, audiences: config.jwtAudiences, trustDomain: state.trustDomain,
                    maxLifetime: config.jwtMaxLifetime)
            } else {
                try await config.jwtKeysFile.asyncMap {
                    try await JWTAuthenticator(
                        keysFile: $0, issuer: config.jwtIssuer, audiences: config.jwtAudiences, trustDomain: state.trustDomain,
                        maxLifetime: config.jwtMaxLifetime)
                }
            }
        for warning in config.warnings { logger.warning("\(warning)") }
        let authenticator = CallerAuthenticator(
            authority: authority,
            tokens: TokenAuthenticator(ledger: ledger, trustDomain: state.trustDomain),
            jwt: jwt,
            ledger: ledger,
            retryWindow: config.retryWindow
        )
        let handler = CreateCertificateHandler(
            service: service,
            authenticator: authenticator,
            rateLimiter: config.rateLimit.map { RateLimiter(count: $0.count, per: $0.per) },
            failedAuthentications: config.authFailureLimit.map { RateLimiter(count: $0.count, per: $0.per) },
            trustedNodeAccounts: config.trustedNodeAccounts,
            dnsSANs: config.allowDNSSANs,
            metrics: metrics,
            logger: logger,
            now: time.now
        )

        let serving = ServingIdentity(
            authority: authority, ledger: ledger, names: config.dnsNames, ttl: config.servingCertificateTTL,
            bridgePath: directory.bridgePath, sharedLedger: config.ledger.isShared)
        let now = time.now()
        let first = try await serving.issue(at: now)
        let servingCertificate = try ServingCertificate(chainPEM: first.chainPEM, keyPEM: first.keyPEM)
        metrics.setServingCertificateExpiry(first.leaf.notValidAfter)

        // The CRL is published before anything is served, so a state directory that cannot hold it fails start-up.
        let crls = CRLRefresh(
            publisher: CRLPublisher(directory: directory, ledger: ledger, writesFile: writable), signer: { authority.signingIdentity },
            time: time, logger: logger)
        try await crls.refresh(at: now)
        metrics.publishCRL { crls.current }
        // grpc.health.v1.Health: SERVING while the ledger and the CA are usable, checked before anything is served.
        let health = HealthStatusBoard(services: [Istio_V1_Auth_IstioCertificateService.descriptor.fullyQualifiedService])
        let healthMonitor = DaemonHealthMonitor(
            directory: directory, ledger: ledger, authority: authority, board: health, metrics: metrics, logger: logger, now: time.now)
        await healthMonitor.check(at: now)

        let peers = PeerRegistry()
        let transport = HTTP2ServerTransport.Custom(
            listenerFactory: TLSListener(
                host: config.listen.host,
                port: config.listen.port,
                certificate: servingCertificate,
                peers: peers,
                limits: limits,
                logger: logger,
                verifyClient: { await authenticator.verifyClientChain($0) }
            ),
            config: TLSListener.transportConfig(limits: limits)
        )
        let server = GRPCServer(
            transport: transport, services: [IstioCertificateService(signer: handler, peers: peers), HealthService(board: health)],
            interceptors: [RequestStatusCounter(metrics: metrics)])
        let ready = Atomic<Bool>(false)
        let monitoring = MonitoringServer(
            host: config.monitoring.host,
            port: config.monitoring.port,
            metrics: metrics,
            readiness: { ready.load(ordering: .relaxed) ? nil : "the gRPC listener is not serving" },
            crl: { crls.current },
            crlPEM: { crls.currentPEM },
            limits: limits,
            logger: logger
        )
        let announce = ReadinessAnnouncement(transport: transport, monitoring: monitoring, logger: logger) { grpc, http in
            ready.store(true, ordering: .relaxed)
            onReady(grpc, http)
        }
        let group = ServiceGroup(
            configuration: .init(
                services: (remoteKeys.map { [ServiceGroupConfiguration.ServiceConfiguration(service: $0)] } ?? []) + [
                    .init(service: monitoring),
                    .init(service: crls),
                    .init(service: healthMonitor),
                    .init(
                        service: ExpiryGaugeRefresh(
                            doctor: Doctor(directory: directory), ledger: config.ledger.isShared ? ledger : nil,
                            metrics: metrics, logger: logger, time: time)),
                    .init(
                        service: ServingCertificateRenewal(
                            identity: serving, certificate: servingCertificate, metrics: metrics, logger: logger,
                            notAfter: first.leaf.notValidAfter, issuedAt: now, time: time)),
                    .init(
                        service: CAStateWatcher(
                            directory: directory, authority: authority, serving: serving, certificate: servingCertificate,
                            metrics: metrics, logger: logger, interval: config.statePollInterval, time: time)),
                    .init(service: GRPCServerService(server: server, onShutdown: { ready.store(false, ordering: .relaxed); health.shutDown() })),
                    .init(service: announce, successTerminationBehavior: .ignore),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        do {
            try await group.run()
        } catch {
            await ledger.close()
            throw error
        }
        await ledger.close()
        logger.info("stopped")
    }
}

extension Daemon {
    /// The CA in `directory`. Without `init-if-missing` a directory with no CA is refused (``DaemonErrorCode/noCA``,
    /// saying how to create or restore one); with it a new CA is created and its root's fingerprint logged as a warning.
    func loadCA(in directory: StateDirectory) throws -> CAState {
        guard configuration.initIfMissing else {
            // Part of a CA (a key without its certificate) is reported by load() as incomplete, not as missing.
            guard directory.hasCA || FileManager.default.fileExists(atPath: directory.caKeyPath) else {
                throw DaemonError(.noCA, Self.noCAMessage(directory))
            }
            return try CAState.load(from: directory)
        }
        let (state, created) = try CAState.loadOrCreate(
            in: directory, options: .init(trustDomain: try TrustDomain(configuration.trustDomain)), now: time.now())
        if created {
            logger.warning(
                "created a new CA because init-if-missing is set: a new root, trusted by no workload until they get its root-cert.pem",
                metadata: [
                    "state_dir": "\(directory.path)", "trust_domain": "\(state.trustDomain)",
                    "root_sha256": "\(state.signer.certificate.sha256Fingerprint)",
                ])
        }
        return state
    }

    /// Why `meshca serve` does not start on `directory`, and the three ways on.
    static func noCAMessage(_ directory: StateDirectory) -> String {
        "There is no CA in the state directory \(directory.path), and meshca serve creates one only when asked: a new root "
            + "is trusted by no workload that holds the old one. For a new installation run `meshca init --state-dir \(directory.path)` "
            + "(or start meshca serve once with --init-if-missing). If a CA existed, this is the wrong or an empty volume: point "
            + "--state-dir at the right one, or restore a backup with `meshca restore BACKUP --state-dir \(directory.path)`."
    }

    /// Raises the open-file limit to its hard limit (many systems start processes at 1024) and returns the limits
    /// for both listeners, with `max-connections` derived from the raised limit when it is `auto`.
    func connectionLimits() -> ConnectionLimits {
        let files = OpenFileLimit.raiseToHardLimit()
        if files.after > files.before {
            logger.info("raised the open-file limit", metadata: ["from": "\(files.before)", "to": "\(files.after)"])
        }
        let automatic = ConnectionLimits.automaticMaxConnections(openFileLimit: files.after)
        let fits = (files.after - ConnectionLimits.reservedDescriptors) / 2
        if let configured = configuration.maxConnections, configured > fits {
            logger.warning(
                Logger.Message(
                    stringLiteral: "max-connections \(configured) per listener can need more file descriptors than the open-file "
                        + "limit of \(files.after) allows (\(max(fits, 1)) would fit); when they run out, new connections fail. "
                        + "Raise the limit (LimitNOFILE= in a systemd unit, ulimit -n) or lower max-connections."))
        }
        return ConnectionLimits(
            handshakeTimeout: configuration.handshakeTimeout, idleTimeout: configuration.idleTimeout,
            maxConnections: configuration.maxConnections ?? automatic)
    }
}

/// Runs a `GRPCServer` as a ServiceLifecycle service; a graceful shutdown stops accepting new RPCs and
/// lets running ones finish.
struct GRPCServerService: Service {
    let server: GRPCServer<HTTP2ServerTransport.Custom<TLSListener>>
    let onShutdown: @Sendable () -> Void

    func run() async throws {
        try await withGracefulShutdownHandler {
            // Each request's task runs on the event loop of its connection (see EventLoopTaskExecutor).
            try await withTaskExecutorPreference(EventLoopTaskExecutor()) {
                try await server.serve()
            }
        } onGracefulShutdown: {
            onShutdown()
            server.beginGracefulShutdown()
        }
    }
}

/// Waits until both listeners are bound, then reports their addresses once.
struct ReadinessAnnouncement: Service {
    let transport: HTTP2ServerTransport.Custom<TLSListener>
    let monitoring: MonitoringServer
    let logger: Logger
    let announce: @Sendable (String, String) -> Void

    func run() async throws {
        guard let address = await transport.listeningAddress, let grpc = (address.ipv4.map { HostPort(host: $0.host, port: $0.port) } ?? address.ipv6.map { HostPort(host: $0.host, port: $0.port) })?.description else {
            return
        }
        let http = try await monitoring.boundAddress
        let httpText = HostPort(host: http.host, port: http.port).description
        logger.info("serving", metadata: ["grpc": "\(grpc)", "monitoring": "\(httpText)"])
        announce(grpc, httpText)
    }
}

extension Optional {
    fileprivate func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}

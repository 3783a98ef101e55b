import GRPCNIOTransportHTTP2
import Logging
import MeshCAIO
import NIOCore
import NIOHTTP2
import NIOPosix
import NIOSSL
import SwiftASN1
import X509

/// The CA's TLS listener for grpc-swift: TLS 1.2+ with AEAD suites only, ALPN `h2`, client certificates
/// requested but optional.
///
/// grpc-swift's ready-made Posix transport either never asks for a client certificate or requires one;
/// Istio's CA port asks and accepts callers without (they authenticate with a token instead), so this
/// factory builds the same pipeline with NIOSSL's optional verification. A presented client chain is
/// checked by `verifyClient` (RFC 5280 + SPIFFE rules against the current bundle); a chain that fails
/// ends the handshake, as istiod does, and one that passes is recorded in `peers` for the handler.
///
/// Connections are bounded by ``ConnectionLimits``: one that has not finished its TLS handshake within the
/// handshake timeout is closed, and at the connection cap a new connection replaces the oldest one still in its
/// handshake (or is refused when every open connection is established), with a log line. The idle timeout is
/// the transport's `connection.maxIdleTime` (see ``transportConfig(limits:)``). Client PINGs are answered by
/// ``HTTP2PingGuard`` under a budget that grows with the client's requests, and connections closed for abuse are
/// logged by ``HTTP2ConnectionWatch``.
public struct TLSListener: HTTP2ServerTransport.ListenerFactory {
    /// The TLS 1.2 suites offered: the ECDHE + AEAD ones Istio's own listeners accept by default. No CBC, no SHA-1
    /// MAC, no static RSA key exchange. TLS 1.3's suites are all AEAD (BoringSSL does not make them configurable).
    public static let cipherSuites: [NIOTLSCipher] = [
        .TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        .TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        .TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        .TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        .TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ]

    /// Checks a client's chain (leaf first); `true` accepts it.
    public typealias ClientVerifier = @Sendable (_ chain: [Certificate]) async -> Bool

    public let eventLoopGroup: any EventLoopGroup
    private let host: String
    private let port: Int
    private let certificate: ServingCertificate
    private let verifyClient: ClientVerifier
    private let peers: PeerRegistry
    private let limits: ConnectionLimits
    private let logger: Logger

    /// A listener on `host:port` (port 0 picks a free one) presenting `certificate`, applying `limits` to
    /// every connection and logging what it sheds to `logger`.
    public init(
        host: String,
        port: Int,
        certificate: ServingCertificate,
        peers: PeerRegistry,
        limits: ConnectionLimits = .defaults,
        logger: Logger = Logger(label: "meshca.grpc"),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        verifyClient: @escaping ClientVerifier
    ) {
        self.host = host
        self.port = port
        self.certificate = certificate
        self.peers = peers
        self.limits = limits
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
        self.verifyClient = verifyClient
    }

    /// The transport configuration that goes with these limits: an established connection with no open
    /// stream for `idleTimeout` gets a GOAWAY and is closed (at the latest `idleTimeout` later, when the client
    /// does not close its side).
    public static func transportConfig(limits: ConnectionLimits) -> HTTP2ServerTransport.Custom<TLSListener>.Config {
        var config = HTTP2ServerTransport.Custom<TLSListener>.Config.defaults
        config.connection.maxIdleTime = limits.idleTimeout
        return config
    }

    public func makeListeningChannel(
        listenerConfigurator: HTTP2ServerTransport.ListenerConfigurator,
        connectionConfigurator: HTTP2ServerTransport.ConnectionConfigurator
    ) async throws -> NIOAsyncChannel<HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel, Never> {
        let serving = certificate
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: serving.chain.map { .certificate($0) },
            privateKey: .privateKey(serving.key)
        )
        tls.minimumTLSVersion = .tlsv12
        tls.cipherSuiteValues = Self.cipherSuites
        tls.certificateVerification = .optionalVerification
        // Client certificates are checked by `verifyClient` alone; an empty store keeps NIOSSL from reading and
        // parsing the system's CA bundle (some 140 certificates) for a context that never uses it.
        tls.trustRoots = .certificates([])
        tls.applicationProtocols = ["h2", "grpc-exp"]
        tls.sslContextCallback = { _, promise in promise.succeed(serving.override) }
        let context = try NIOSSLContext(configuration: tls)
        let verify = verifyClient
        let peers = peers
        let logger = logger
        let timeout = limits.handshakeTimeout
        let idleTimeout = limits.idleTimeout
        let limiter = ConnectionLimiter(
            maxConnections: limits.maxConnections, listener: "the gRPC listener \(host):\(port)", setting: "max-connections",
            logger: logger)
        let timeouts = RateLimitedLog()
        let abuse = RateLimitedLog()

        return try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { listenerConfigurator.configure(channel: $0) }
            .bind(host: host, port: port) { (channel: any Channel) -> EventLoopFuture<HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel> in
                guard limiter.admit(channel) else {
                    // A failed initializer is dropped by NIO without closing the connection: close it here.
                    channel.close(promise: nil)
                    return channel.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
                }
                let address = channel.remoteAddress.map(Self.grpcPeerString) ?? ""
                channel.closeFuture.whenComplete { _ in
                    peers.remove(address)
                    limiter.remove(channel)
                }
                return channel.eventLoop.makeCompletedFuture {
                    let handler = NIOSSLServerHandler(context: context) { certificates, promise in
                        // NIO's bridge from the event loop to async code: the chain check is async.
                        promise.completeWithTask {
                            guard let chain = try? certificates.map({ try Certificate(derEncoded: $0.toDERBytes()) }),
                                !chain.isEmpty, await verify(chain)
                            else { return .failed }
                            peers.register(chain, for: address)
                            return .certificateVerified
                        }
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                    try channel.pipeline.syncOperations.addHandler(
                        TLSHandshakeDeadline(timeout: timeout, limiter: limiter) { channel in
                            timeouts.record { suppressed in
                                logger.notice(
                                    Logger.Message(
                                        stringLiteral: "closed a connection from \(ConnectionLimiter.peer(channel)) that did not "
                                            + "finish its TLS handshake within \(timeout)\(timeouts.more(suppressed))"))
                            }
                        })
                    try channel.pipeline.syncOperations.addHandler(HTTP2PingGuard(log: abuse, logger: logger))
                }.flatMap {
                    connectionConfigurator.configure(channel: channel, tls: .configured(requireALPN: false))
                }.flatMapThrowing { configured in
                    let pipeline = channel.pipeline.syncOperations
                    let watch = HTTP2ConnectionWatch(drainTimeout: idleTimeout, abuseLog: abuse, logger: logger)
                    try pipeline.addHandler(watch, position: .after(try pipeline.handler(type: NIOHTTP2Handler.self)))
                    return configured
                }
            }
    }

    /// The address in gRPC's `ServerContext.remotePeer` spelling: `ipv4:1.2.3.4:5`, `ipv6:[::1]:5`, `unix:/path`.
    static func grpcPeerString(_ address: NIOCore.SocketAddress) -> String {
        switch address {
        case .v4(let v4): "ipv4:\(v4.host):\(address.port ?? 0)"
        case .v6(let v6): "ipv6:[\(v6.host)]:\(address.port ?? 0)"
        case .unixDomainSocket: "unix:\(address.pathname ?? "")"
        }
    }
}

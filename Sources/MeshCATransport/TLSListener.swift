import GRPCNIOTransportHTTP2
import NIOCore
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

    /// A listener on `host:port` (port 0 picks a free one) presenting `certificate`.
    public init(
        host: String,
        port: Int,
        certificate: ServingCertificate,
        peers: PeerRegistry,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        verifyClient: @escaping ClientVerifier
    ) {
        self.host = host
        self.port = port
        self.certificate = certificate
        self.peers = peers
        self.eventLoopGroup = eventLoopGroup
        self.verifyClient = verifyClient
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
        tls.applicationProtocols = ["h2", "grpc-exp"]
        tls.sslContextCallback = { _, promise in promise.succeed(serving.override) }
        let context = try NIOSSLContext(configuration: tls)
        let verify = verifyClient
        let peers = peers

        return try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { listenerConfigurator.configure(channel: $0) }
            .bind(host: host, port: port) { (channel: any Channel) -> EventLoopFuture<HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel> in
                let address = channel.remoteAddress.map(Self.grpcPeerString) ?? ""
                channel.closeFuture.whenComplete { _ in peers.remove(address) }
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
                }.flatMap {
                    connectionConfigurator.configure(channel: channel, tls: .configured(requireALPN: false))
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

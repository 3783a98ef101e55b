import Foundation
import MeshCACore
import MeshCAHarness
import NIOCore
import NIOPosix
import NIOSSL
import SwiftASN1
import Synchronization
import Testing
import X509

/// The system OpenSSL (through COpenSSL) and swift-nio-ssl's vendored BoringSSL (prefixed symbols) in
/// one process, both doing real handshakes, one against the other.
@Suite("System OpenSSL and NIOSSL in one process", .timeLimit(.minutes(1)))
struct CoexistenceTests {
    @Test("An OpenSSL loopback handshake and a NIOSSL client against the OpenSSL server both succeed")
    func bothStacksWork() async throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        let api = try mesh.workload("api")

        // The linked libssl is the system's 3.x, not BoringSSL.
        #expect(OpenSSLLibrary.version.hasPrefix("OpenSSL 3."))
        let loopback = LoopbackHandshake(server: .credentials(directory: web), client: .credentials(directory: api))
            .run()
        #expect(loopback.outcome == .succeeded, "\(loopback.renderText())")

        // NIOSSL (BoringSSL) as the client, the harness's OpenSSL server on the other end.
        let listener = try ListenerThread(certificates: web, expectedClientID: try mesh.id("api"))
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(api + "/cert-chain.pem").map {
            .certificate($0)
        }
        configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: api + "/key.pem", format: .pem))
        configuration.trustRoots = .file(api + "/root-cert.pem")
        configuration.certificateVerification = .noHostnameVerification
        let context = try NIOSSLContext(configuration: configuration)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let collector = GreetingCollector()
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        NIOSSLClientHandler(context: context, serverHostname: nil))
                    try channel.pipeline.syncOperations.addHandler(GreetingHandler(collector: collector))
                }
            }
            .connect(host: "127.0.0.1", port: Int(listener.port)).get()
        try await channel.closeFuture.get()
        try await group.shutdownGracefully()

        let report = try await listener.report()
        #expect(report.outcome == .succeeded, "\(report.renderText())")
        #expect(report.server.verifiedPeerID == (try mesh.id("api")).uri)
        // BoringSSL negotiated TLS 1.3 and verified the server's SPIFFE certificate against root-cert.pem.
        #expect(collector.state.withLock { $0.tlsVersion } == .tlsv13)
        #expect(collector.state.withLock { $0.peerURIs } == [(try mesh.id("web")).uri])
        #expect(
            collector.state.withLock { $0.text }.contains(
                "meshca handshake: mTLS ok, you are spiffe://cluster.local/ns/default/sa/api"))
    }
}

/// What the NIOSSL client saw: whether its handshake completed and the text the server sent.
final class GreetingCollector: Sendable {
    struct State {
        var tlsVersion: TLSVersion?
        var peerURIs: [String] = []
        var text = ""
    }
    let state = Mutex(State())
}

/// Records the TLS handshake event and the server's bytes until the server closes.
final class GreetingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let collector: GreetingCollector

    init(collector: GreetingCollector) { self.collector = collector }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        let text = buffer.readString(length: buffer.readableBytes) ?? ""
        // Application data arrives only after BoringSSL completed and verified the handshake.
        let tls = try? context.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self)
        let der = (try? tls?.peerCertificate?.toDERBytes()) ?? nil
        let uris = der.flatMap { try? Certificate(derEncoded: $0) }?.uriSANs ?? []
        collector.state.withLock { state in
            state.text += text
            state.tlsVersion = state.tlsVersion ?? tls?.tlsVersion
            if state.peerURIs.isEmpty { state.peerURIs = uris }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The server closes after its greeting; NIOSSL may report the unclean end. Either way, close.
        context.close(promise: nil)
    }
}

import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import MeshCACore
import MeshCADaemon
import MeshCATestSupport
import MeshCATransport
import NIOCore
import NIOHTTP2
import Synchronization
import Testing
import X509

/// Issue 12, defect 11 (transport half): a gRPC-Go client on default settings sends a PING after most responses
/// (BDP estimation). swift-nio-http2 cut such a connection off after 200 PINGs in 30 s with `GOAWAY
/// ENHANCE_YOUR_CALM`, last stream 0, and nothing logged; a well-behaved client must keep its connection, and a
/// flood must still be cut off, with a log line.
@Suite("A client that pings after every response keeps its connection; a PING flood is cut off and logged", .timeLimit(.minutes(3)))
struct HTTP2PingTests {
    @Test("300 calls on one connection, a PING after each response (as gRPC-Go's BDP estimator does): all succeed, every PING is answered, no GOAWAY")
    func pingAfterEveryResponse() async throws {
        let (daemon, token) = try await InProcessDaemon.start(tokenUses: 300)
        let probe = PingProbe.Stats()
        let csrs = try (0..<300).map { _ in try workloadCSRPEM() }
        let pingTimes = PingTimes()
        let issued = try await daemon.log.explainingFailure { try await probe.withClient(port: daemon.grpcPort, roots: daemon.roots()) { client in
            // Eight callers at once, as Istio's agents and the benchmark issue; each pings after its response.
            try await withThrowingTaskGroup(of: Int.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        var done = 0
                        for index in stride(from: worker, to: csrs.count, by: 8) {
                            var request = Istio_V1_Auth_IstioCertificateRequest()
                            request.csr = csrs[index]
                            let response = try await client.createCertificate(request, metadata: ["authorization": "Bearer \(token)"])
                            #expect(!response.certChain.isEmpty)
                            try await probe.ping(UInt64(index))
                            pingTimes.record()
                            done += 1
                        }
                        return done
                    }
                }
                return try await group.reduce(0, +)
            }
        } }
        #expect(issued == 300)
        // More than 200 PINGs fell within one 30-second window, so NIO's default limit (200 per 30 s) would have
        // cut the connection off: the premise of the test, whatever the machine's speed.
        #expect(pingTimes.busiestWindow(.seconds(30)) > 200, "PINGs per 30 s at most \(pingTimes.busiestWindow(.seconds(30)))")
        try await probe.waitForAcks(300)
        let seen = probe.snapshot
        #expect(seen.goAways.isEmpty, "GOAWAY: \(seen.goAways)")
        #expect(seen.connections == 1)
        #expect(!daemon.log.all.contains { $0.contains("ENHANCE_YOUR_CALM") })
        await daemon.stop()
    }

    @Test("1,000 PINGs with no requests get GOAWAY ENHANCE_YOUR_CALM naming the last stream, and one log line")
    func pingFlood() async throws {
        let (daemon, token) = try await InProcessDaemon.start()
        let probe = PingProbe.Stats()
        try await daemon.log.explainingFailure { try await probe.withClient(port: daemon.grpcPort, roots: daemon.roots()) { client in
            var request = Istio_V1_Auth_IstioCertificateRequest()
            request.csr = try workloadCSRPEM()
            _ = try await client.createCertificate(request, metadata: ["authorization": "Bearer \(token)"])
            // Until the server has closed the connection (sending then fails: the probe is gone with it).
            for index in 0..<1000 {
                guard (try? await probe.ping(UInt64(index))) != nil else { break }
            }
            try await probe.waitForGoAway()
        } }
        let goAway = try #require(probe.snapshot.goAways.first)
        #expect(goAway.code == .enhanceYourCalm)
        #expect(goAway.lastStream == 1, "the one request made was on stream 1")
        #expect(probe.snapshot.acks >= 200 && probe.snapshot.acks < 1000, "acks: \(probe.snapshot.acks)")
        let line = try await daemon.log.waitForLine(containing: "sent GOAWAY ENHANCE_YOUR_CALM")
        #expect(line.contains("closed the gRPC connection from 127.0.0.1:") && line.contains("PINGs"), "\(line)")
        await daemon.stop()
    }

    @Test("A SETTINGS flood still gets swift-nio-http2's GOAWAY ENHANCE_YOUR_CALM, and now a log line saying why")
    func settingsFlood() async throws {
        let (daemon, token) = try await InProcessDaemon.start()
        let probe = PingProbe.Stats()
        try await daemon.log.explainingFailure {
            try await probe.withClient(port: daemon.grpcPort, roots: daemon.roots()) { client in
                var request = Istio_V1_Auth_IstioCertificateRequest()
                request.csr = try workloadCSRPEM()
                _ = try await client.createCertificate(request, metadata: ["authorization": "Bearer \(token)"])
                try await probe.settings(300)
                let line = try await daemon.log.waitForLine(containing: "sent GOAWAY ENHANCE_YOUR_CALM")
                #expect(line.contains("for abuse: too many SETTINGS, PRIORITY or other control frames"), "\(line)")
            }
        }
        // NIO closes at once, so the GOAWAY may be lost to a reset; when it arrives it says why.
        for goAway in probe.snapshot.goAways { #expect(goAway.code == .enhanceYourCalm) }
        await daemon.stop()
    }
}

/// Sits between the client's TLS and HTTP/2 handlers and plays gRPC-Go's part: it writes PING frames onto the
/// connection when asked and takes the server's PING ACKs off it, counting them, so that grpc-swift's own HTTP/2
/// handler (which, as a client, limits inbound control frames to 200 per 30 s) never sees them. It records every
/// GOAWAY the server sends, which it passes on.
final class PingProbe: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What the probe saw, readable from any task.
    final class Stats: Sendable {
        struct Snapshot: Sendable {
            var acks = 0
            var goAways: [(code: HTTP2ErrorCode, lastStream: Int)] = []
            var connections = 0
        }

        private let state = Mutex(Snapshot())
        private let channel = Mutex<(any Channel)?>(nil)

        var snapshot: Snapshot { state.withLock { $0 } }

        fileprivate func update(_ body: (inout Snapshot) -> Void) { state.withLock { body(&$0) } }

        /// Runs `body` with a CA client on one TLS connection to 127.0.0.1:`port` that carries this probe.
        func withClient<Result: Sendable>(
            port: Int, roots: [Certificate],
            _ body: (Istio_V1_Auth_IstioCertificateService.Client<HTTP2ClientTransport.Posix>) async throws -> Result
        ) async throws -> Result {
            var config = HTTP2ClientTransport.Posix.Config.defaults
            config.channelDebuggingCallbacks.onCreateTCPConnection = { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(PingProbe(stats: self), position: .before(try pipeline.handler(type: NIOHTTP2Handler.self)))
                    self.channel.withLock { $0 = channel }
                    self.update { $0.connections += 1 }
                }
            }
            let transport = try HTTP2ClientTransport.Posix(
                target: .ipv4(address: "127.0.0.1", port: port),
                transportSecurity: .tls { tls in
                    tls.trustRoots = .certificates(roots.map { .bytes($0.derBytes, format: .der) })
                    tls.serverCertificateVerification = .noHostnameVerification
                },
                config: config)
            return try await withGRPCClient(transport: transport) { client in
                try await body(Istio_V1_Auth_IstioCertificateService.Client(wrapping: client))
            }
        }

        /// Sends one PING on the connection.
        func ping(_ value: UInt64) async throws {
            guard let channel = channel.withLock({ $0 }) else { throw BackgroundProcessError("no connection yet") }
            try await channel.eventLoop.submit {
                try channel.pipeline.syncOperations.handler(type: PingProbe.self).ping(value)
            }.get()
        }

        /// Sends `count` empty SETTINGS frames on the connection.
        func settings(_ count: Int) async throws {
            guard let channel = channel.withLock({ $0 }) else { throw BackgroundProcessError("no connection yet") }
            try await channel.eventLoop.submit {
                try channel.pipeline.syncOperations.handler(type: PingProbe.self).settings(count)
            }.get()
        }

        /// Waits until `count` PING ACKs arrived (30 s at most).
        func waitForAcks(_ count: Int) async throws {
            try await wait("\(count) PING ACKs") { $0.acks >= count }
        }

        /// Waits until a GOAWAY arrived (30 s at most).
        func waitForGoAway() async throws {
            try await wait("a GOAWAY") { !$0.goAways.isEmpty }
        }

        private func wait(_ what: String, until done: (Snapshot) -> Bool) async throws {
            try await Wait.until("\(what) arrived (so far: \(snapshot))", timeout: .seconds(30)) { done(snapshot) }
        }
    }

    private let stats: Stats
    private var context: ChannelHandlerContext?
    /// The bytes of the frame being read: header first, then (for frames the probe looks into) payload.
    private var pending: [UInt8] = []
    /// Bytes of the current frame's payload still to pass on untouched.
    private var passing = 0
    /// SETTINGS ACKs still to take off, one for each SETTINGS frame written by ``settings(_:)``.
    private var settingsAcksToDrop = 0

    init(stats: Stats) {
        self.stats = stats
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var input = unwrapInboundIn(data)
        var forward = context.channel.allocator.buffer(capacity: input.readableBytes)
        while input.readableBytes > 0 {
            if passing > 0 {
                var slice = input.readSlice(length: min(passing, input.readableBytes))!
                passing -= slice.readableBytes
                forward.writeBuffer(&slice)
                continue
            }
            pending += input.readBytes(length: min(9 - min(pending.count, 9), input.readableBytes))!
            guard pending.count >= 9 else { continue }
            let length = Int(pending[0]) << 16 | Int(pending[1]) << 8 | Int(pending[2])
            let type = pending[3]
            let isAck = type == 0x6 && pending[4] & 0x1 != 0
            if type == 0x4, pending[4] & 0x1 != 0, length == 0, settingsAcksToDrop > 0 {
                settingsAcksToDrop -= 1
                pending.removeAll()
                continue
            }
            // PING ACKs and GOAWAYs are read whole; everything else passes through as it comes.
            guard isAck || type == 0x7 else {
                forward.writeBytes(pending)
                pending.removeAll()
                passing = length
                continue
            }
            pending += input.readBytes(length: min(9 + length - pending.count, input.readableBytes))!
            guard pending.count == 9 + length else { continue }
            if isAck {
                stats.update { $0.acks += 1 }
            } else if length >= 8 {
                let lastStream = Int(pending[9]) << 24 | Int(pending[10]) << 16 | Int(pending[11]) << 8 | Int(pending[12])
                let code = UInt32(pending[13]) << 24 | UInt32(pending[14]) << 16 | UInt32(pending[15]) << 8 | UInt32(pending[16])
                stats.update { $0.goAways.append((HTTP2ErrorCode(networkCode: Int(code)), lastStream & 0x7FFF_FFFF)) }
                forward.writeBytes(pending)
            }
            pending.removeAll()
        }
        if forward.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(forward)) }
    }

    /// Writes `count` empty SETTINGS frames at once.
    func settings(_ count: Int) {
        guard let context else { return }
        var frames = context.channel.allocator.buffer(capacity: 9 * count)
        for _ in 0..<count { frames.writeBytes([0, 0, 0, 0x4, 0, 0, 0, 0, 0]) }
        settingsAcksToDrop += count
        context.writeAndFlush(wrapOutboundOut(frames), promise: nil)
    }

    /// Writes one PING frame carrying `value`.
    func ping(_ value: UInt64) {
        guard let context else { return }
        var frame = context.channel.allocator.buffer(capacity: 17)
        frame.writeBytes([0, 0, 8, 0x6, 0, 0, 0, 0, 0])
        frame.writeInteger(value)
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }
}

/// When each PING of a test was sent.
private final class PingTimes: Sendable {
    private let times = Mutex<[ContinuousClock.Instant]>([])

    func record() { times.withLock { $0.append(.now) } }

    /// The most PINGs sent within any span of `window`.
    func busiestWindow(_ window: Duration) -> Int {
        let sorted = times.withLock { $0 }.sorted()
        var busiest = 0
        var start = 0
        for end in sorted.indices {
            while sorted[end] - sorted[start] > window { start += 1 }
            busiest = max(busiest, end - start + 1)
        }
        return busiest
    }
}

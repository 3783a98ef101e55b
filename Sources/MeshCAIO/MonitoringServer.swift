import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A small plain-HTTP listener answering `GET` on fixed paths: the daemon's monitoring port (`/metrics`,
/// `/healthz`, `/readyz`, `/crl`, as istiod serves on 15014) and the agent's status port.
///
/// A `Service`: ``run()`` binds, serves until graceful shutdown or cancellation, then stops accepting,
/// lets each open connection finish the request it is in (at most 5 seconds) and returns. Run it once.
///
/// Paths not in its routes get 404; a known path with another method gets 405.
///
/// It serves no secrets and has no authentication: bind it to loopback or a cluster-internal address.
public final class MonitoringServer: Service {
    /// The host name or address to bind, e.g. `127.0.0.1` or `::1`.
    public let host: String
    /// The port to bind; 0 lets the system choose one (see ``boundAddress``).
    public let port: Int
    private let routes: [String: MonitoringRoute]
    private let setting: String
    private let bindHint: String
    private let logger: Logger
    private let connections = OpenConnections()
    private let address = MultiThreadedEventLoopGroup.singleton.any().makePromise(of: (host: String, port: Int).self)

    /// How long a connection may take to finish its current request once shutdown begins.
    static let drainTimeout: TimeAmount = .seconds(5)

    /// A server answering `GET` on each path in `routes`.
    ///
    /// - Parameter setting: The setting that chose the address, first in the bind error (`monitoring`).
    /// - Parameter bindHint: What the user should change when the address cannot be bound, e.g.
    ///   `Set --status-addr to a free HOST:PORT.`
    package init(host: String, port: Int, routes: [String: MonitoringRoute], setting: String, bindHint: String, logger: Logger) {
        self.host = host
        self.port = port
        self.logger = logger
        self.routes = routes
        self.setting = setting
        self.bindHint = bindHint
    }

    deinit {
        // Unblocks anyone still awaiting `boundAddress` when `run()` was never called; a no-op otherwise.
        address.fail(CancellationError())
    }

    /// The address actually bound, once ``run()`` has bound it; waits until then.
    ///
    /// Throws the bind error when ``run()`` could not bind.
    public var boundAddress: (host: String, port: Int) {
        get async throws { try await address.futureResult.get() }
    }

    /// Binds, then serves until graceful shutdown or task cancellation.
    ///
    /// Throws ``ListenError`` (the address, the reason and the bind hint) when the address cannot be bound.
    public func run() async throws {
        let routes = self.routes
        let connections = self.connections
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 64)
            .childChannelInitializer { channel in
                guard connections.insert(channel) else {
                    return channel.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
                }
                channel.closeFuture.whenComplete { _ in connections.remove(channel) }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MonitoringHandler(routes: routes))
                }
            }
        let listener: any Channel
        do {
            listener = try await bootstrap.bind(host: host, port: port).get()
        } catch {
            let problem = ListenError(
                description: "\(setting): cannot listen on \(host):\(port) (\(error)). Another process may hold the port, or the "
                    + "address is not local. \(bindHint)")
            address.fail(problem)
            throw problem
        }
        let bound = (host: listener.localAddress?.ipAddress ?? host, port: listener.localAddress?.port ?? port)
        address.succeed(bound)
        logger.info("Monitoring endpoint listening", metadata: ["address": "\(bound.host):\(bound.port)"])

        try await withTaskCancellationOrGracefulShutdownHandler {
            try await listener.closeFuture.get()
        } onCancelOrGracefulShutdown: {
            listener.close(promise: nil)
        }
        let open = connections.closeAll()
        for channel in open {
            // HTTPServerPipelineHandler closes an idle connection at once and a busy one after its response.
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            channel.eventLoop.scheduleTask(in: Self.drainTimeout) { channel.close(promise: nil) }
        }
        try? await EventLoopFuture.andAllComplete(open.map(\.closeFuture), on: listener.eventLoop).get()
        logger.info("Monitoring endpoint stopped", metadata: ["address": "\(bound.host):\(bound.port)"])
    }
}

/// The listener could not bind its address; `description` says which, why, and what to change.
public struct ListenError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// Produces the answer for one path; runs on a NIO thread.
package typealias MonitoringRoute = @Sendable () -> MonitoringResponse

/// A complete, small response: everything the monitoring routes send fits in one buffer.
package struct MonitoringResponse: Sendable {
    var status: HTTPResponseStatus
    var body: [UInt8]
    var contentType = "text/plain; charset=utf-8"
    var extraHeaders: [(String, String)] = []

    /// A response with `status` and a plain-text `body`.
    package init(_ status: HTTPResponseStatus, _ body: String) {
        self.status = status
        self.body = Array(body.utf8)
    }

    /// 200 with `body`.
    package static func ok(_ body: String, contentType: String = "text/plain; charset=utf-8") -> Self {
        var response = Self(.ok, body)
        response.contentType = contentType
        return response
    }

    /// 200 with a binary `body`, e.g. a DER CRL.
    package static func ok(bytes: [UInt8], contentType: String) -> Self {
        var response = Self(.ok, "")
        response.body = bytes
        response.contentType = contentType
        return response
    }
}

/// The connections currently open, so that shutdown can drain them.
private final class OpenConnections: Sendable {
    private let state = Mutex<(open: [ObjectIdentifier: any Channel], closed: Bool)>((open: [:], closed: false))

    /// Registers a new connection; false once shutdown has begun, in which case it must be refused.
    func insert(_ channel: any Channel) -> Bool {
        state.withLock { state in
            guard !state.closed else { return false }
            state.open[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    func remove(_ channel: any Channel) {
        _ = state.withLock { $0.open.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// Refuses further connections and returns those still open.
    func closeAll() -> [any Channel] {
        state.withLock { state in
            state.closed = true
            return Array(state.open.values)
        }
    }
}

/// Answers each complete request from the route table; request bodies are read and ignored.
private final class MonitoringHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let routes: [String: MonitoringRoute]
    private var request: HTTPRequestHead?

    init(routes: [String: MonitoringRoute]) {
        self.routes = routes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let head = request else { return }
            request = nil
            send(response(to: head), for: head, context: context)
        }
    }

    private func response(to head: HTTPRequestHead) -> MonitoringResponse {
        let path = String(head.uri.prefix { $0 != "?" && $0 != "#" })
        guard let route = routes[path] else {
            return MonitoringResponse(
                .notFound, "not found: \(path)\nroutes: \(routes.keys.sorted().joined(separator: " "))\n")
        }
        guard head.method == .GET else {
            var response = MonitoringResponse(.methodNotAllowed, "method \(head.method) not allowed; use GET\n")
            response.extraHeaders = [("Allow", "GET")]
            return response
        }
        return route()
    }

    private func send(_ response: MonitoringResponse, for head: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers = HTTPHeaders([("Content-Type", response.contentType)] + response.extraHeaders)
        headers.add(name: "Content-Length", value: String(response.body.count))
        if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
        let responseHead = HTTPResponseHead(version: head.version, status: response.status, headers: headers)
        context.write(wrapOutboundOut(.head(responseHead)), promise: nil)
        let body = context.channel.allocator.buffer(bytes: response.body)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let sent = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !head.isKeepAlive {
            let channel = context.channel
            sent.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

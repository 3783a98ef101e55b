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
/// Connections are bounded by ``ConnectionLimits``: one that sends no complete request within the handshake
/// timeout of connecting (or of starting a request) is closed, as is one idle for the idle timeout after a
/// response; at the connection cap a new connection replaces the oldest one, with a log line.
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
    /// The timeouts and the connection cap applied to every connection.
    public let limits: ConnectionLimits
    private let limitHint: String
    private let address = MultiThreadedEventLoopGroup.singleton.any().makePromise(of: (host: String, port: Int).self)

    /// How long a connection may take to finish its current request once shutdown begins.
    static let drainTimeout: TimeAmount = .seconds(5)

    /// A server answering `GET` on each path in `routes`.
    ///
    /// - Parameter setting: The setting that chose the address, first in the bind error (`monitoring`).
    /// - Parameter bindHint: What the user should change when the address cannot be bound, e.g.
    ///   `Set --status-addr to a free HOST:PORT.`
    /// - Parameter limits: Timeouts and the connection cap (default: 10 s, 5 min, from the open-file limit).
    /// - Parameter limitHint: What the user can raise when the cap sheds legitimate clients, for the log line.
    package init(
        host: String, port: Int, routes: [String: MonitoringRoute], setting: String, bindHint: String,
        limits: ConnectionLimits = .defaults, limitHint: String = "the open-file limit (ulimit -n)", logger: Logger
    ) {
        self.host = host
        self.port = port
        self.logger = logger
        self.routes = routes
        self.setting = setting
        self.bindHint = bindHint
        self.limits = limits
        self.limitHint = limitHint
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
    /// Throws `DaemonError` `.listenFailed` (the address, the reason and the bind hint) when the address cannot be
    /// bound.
    public func run() async throws {
        let routes = self.routes
        let limits = self.limits
        let connections = ConnectionLimiter(
            maxConnections: limits.maxConnections, listener: "the \(setting) listener \(host):\(port)", setting: limitHint,
            logger: logger)
        let timeouts = RateLimitedLog()
        let logger = self.logger
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 64)
            .childChannelInitializer { channel in
                // Every connection is evictable: a request is answered at once, so a connection is almost always
                // waiting for its next one, and the oldest is the one to give up at the cap.
                guard connections.admit(channel) else {
                    return channel.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
                }
                channel.closeFuture.whenComplete { _ in connections.remove(channel) }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(
                        RequestDeadlineHandler(limits: limits) { idle in
                            guard !idle else { return }
                            timeouts.record { suppressed in
                                logger.notice(
                                    Logger.Message(
                                        stringLiteral: "closed a connection from \(ConnectionLimiter.peer(channel)) that sent no "
                                            + "complete request within \(limits.handshakeTimeout)\(timeouts.more(suppressed))"))
                            }
                        })
                    try channel.pipeline.syncOperations.addHandler(MonitoringHandler(routes: routes))
                }
            }
        let listener: any Channel
        do {
            listener = try await bootstrap.bind(host: host, port: port).get()
        } catch {
            let problem = DaemonError(
                .listenFailed, "\(setting): cannot listen on \(host):\(port) (\(error)). Another process may hold the port, or the "
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

/// Closes a connection that does not finish a request in time: within the handshake timeout of connecting or of
/// starting a request (its head), or within the idle timeout of the last response.
private final class RequestDeadlineHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let limits: ConnectionLimits
    /// Called on the event loop when the deadline closes the connection; `true` when it was idle after a response.
    private let onTimeout: (_ idle: Bool) -> Void
    private var timer: Scheduled<Void>?

    init(limits: ConnectionLimits, onTimeout: @escaping (_ idle: Bool) -> Void) {
        self.limits = limits
        self.onTimeout = onTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context, idle: false) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context, idle: false)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) { arm(context, idle: false) }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { arm(context, idle: true) }
        context.write(data, promise: promise)
    }

    private func arm(_ context: ChannelHandlerContext, idle: Bool) {
        timer?.cancel()
        let channel = context.channel
        let onTimeout = NIOLoopBound(self.onTimeout, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: TimeAmount(idle ? limits.idleTimeout : limits.handshakeTimeout)) {
            onTimeout.value(idle)
            channel.close(promise: nil)
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

import NIOCore
import NIOHTTP2

/// Watches an HTTP/2 connection between NIO's HTTP/2 handler and grpc-swift's connection management.
///
/// Once the server has sent a GOAWAY (idle timeout, shutdown), the client has `drainTimeout` (the idle timeout)
/// to finish and close; after that the connection is closed from this side. grpc-swift waits for the client to
/// answer the PING that follows its GOAWAY, so without this a client that never answers would hold the
/// connection (and its file descriptor) forever.
final class HTTP2ConnectionWatch: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private let drainTimeout: TimeAmount
    private var drainTimer: Scheduled<Void>?

    /// A watch giving a client `drainTimeout` after the server's first GOAWAY.
    init(drainTimeout: Duration) {
        self.drainTimeout = TimeAmount(drainTimeout)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .goAway = unwrapOutboundIn(data).payload, drainTimer == nil {
            let channel = context.channel
            drainTimer = context.eventLoop.scheduleTask(in: drainTimeout) { channel.close(promise: nil) }
        }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        drainTimer?.cancel()
        context.fireChannelInactive()
    }
}

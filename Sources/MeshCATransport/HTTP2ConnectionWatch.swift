import Logging
import MeshCAIO
import NIOCore
import NIOHTTP2

/// Watches an HTTP/2 connection between NIO's HTTP/2 handler and grpc-swift's connection management.
///
/// Once the server has sent a GOAWAY (idle timeout, shutdown), the client has `drainTimeout` (the idle timeout)
/// to finish and close; after that the connection is closed from this side. grpc-swift waits for the client to
/// answer the PING that follows its GOAWAY, so without this a client that never answers would hold the
/// connection (and its file descriptor) forever.
///
/// It also logs when the connection is closed for abuse: swift-nio-http2's flood limits (RST_STREAM, empty DATA,
/// stream errors, SETTINGS and other control frames, CONTINUATION, glitches) send `GOAWAY ENHANCE_YOUR_CALM` and
/// close without a word, and so does grpc-swift's keepalive policy (`too_many_pings`). One line per 10 seconds
/// for the whole listener, naming the client and the reason.
final class HTTP2ConnectionWatch: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private let drainTimeout: TimeAmount
    private var drainTimer: Scheduled<Void>?
    private let abuseLog: RateLimitedLog
    private let logger: Logger
    private var loggedAbuse = false

    /// A watch giving a client `drainTimeout` after the server's first GOAWAY, logging abuse to `logger` through
    /// `abuseLog` (shared by the listener's connections).
    init(drainTimeout: Duration, abuseLog: RateLimitedLog, logger: Logger) {
        self.drainTimeout = TimeAmount(drainTimeout)
        self.abuseLog = abuseLog
        self.logger = logger
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .goAway(_, let code, let opaque) = unwrapOutboundIn(data).payload {
            if drainTimer == nil {
                let channel = context.channel
                drainTimer = context.eventLoop.scheduleTask(in: drainTimeout) { channel.close(promise: nil) }
            }
            if code == .enhanceYourCalm {
                let reason = opaque.map { String(buffer: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "enhance your calm"
                logAbuse(context: context, reason: "the gRPC layer refused its PINGs (\(reason))")
            }
        }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let reason = Self.abuse(error) {
            logAbuse(context: context, reason: reason)
        }
        context.fireErrorCaught(error)
    }

    /// What a swift-nio-http2 error says the client did, when it is one of the flood limits that end the
    /// connection with `GOAWAY ENHANCE_YOUR_CALM`.
    static func abuse(_ error: any Error) -> String? {
        switch error {
        case is NIOHTTP2Errors.ExcessiveControlFrames: "too many SETTINGS, PRIORITY or other control frames (over 200 per 30s)"
        case is NIOHTTP2Errors.ExcessiveRSTFrames: "too many RST_STREAM frames (over 200 per 30s)"
        case is NIOHTTP2Errors.ExcessiveStreamErrors: "too many stream errors (over 200 per 30s)"
        case is NIOHTTP2Errors.ExcessiveEmptyDataFrames: "too many empty DATA frames in a row"
        case is NIOHTTP2Errors.ExcessiveContinuationFrames: "too many CONTINUATION frames in a row"
        case is NIOHTTP2Errors.ExcessiveNumberOfGlitches: "too many protocol violations (glitches)"
        case is NIOHTTP2Errors.ExcessiveOutboundFrameBuffering: "too many frames left unread (it does not read what it asks for)"
        default: nil
        }
    }

    private func logAbuse(context: ChannelHandlerContext, reason: String) {
        guard !loggedAbuse else { return }
        loggedAbuse = true
        let peer = ConnectionLimiter.peer(context.channel)
        abuseLog.record { suppressed in
            logger.warning(
                Logger.Message(
                    stringLiteral: "closed the gRPC connection from \(peer) for abuse: \(reason); sent GOAWAY "
                        + "ENHANCE_YOUR_CALM\(abuseLog.more(suppressed))"))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        drainTimer?.cancel()
        context.fireChannelInactive()
    }
}

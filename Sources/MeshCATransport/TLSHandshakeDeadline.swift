import Logging
import MeshCAIO
import NIOCore
import NIOSSL
import NIOTLS

/// Closes a connection that has not finished its TLS handshake within the handshake timeout of connecting
/// (a client that connects and sends nothing, or stops half-way), and tells the ``ConnectionLimiter`` when
/// one has finished, so that it is no longer given up to make room for new connections.
///
/// Placed right after `NIOSSLServerHandler`, whose `TLSUserEvent.handshakeCompleted` ends the wait.
final class TLSHandshakeDeadline: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    private let timeout: Duration
    private let limiter: ConnectionLimiter
    private let onTimeout: @Sendable (_ channel: any Channel) -> Void
    private var timer: Scheduled<Void>?
    private var done = false

    /// - Parameter onTimeout: Called (on the event loop) before a connection is closed for its deadline.
    init(timeout: Duration, limiter: ConnectionLimiter, onTimeout: @escaping @Sendable (_ channel: any Channel) -> Void) {
        self.timeout = timeout
        self.limiter = limiter
        self.onTimeout = onTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancel()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancel()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted = tls {
            done = true
            cancel()
            limiter.markEstablished(context.channel)
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func arm(_ context: ChannelHandlerContext) {
        guard !done, timer == nil else { return }
        let channel = context.channel
        let onTimeout = self.onTimeout
        timer = context.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            onTimeout(channel)
            channel.close(promise: nil)
        }
    }

    private func cancel() {
        timer?.cancel()
        timer = nil
    }
}

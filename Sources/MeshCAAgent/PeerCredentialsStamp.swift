import NIOCore
import NIOHPACK
import NIOHTTP2

/// Writes the caller's kernel-reported credentials into the request headers of one HTTP/2 stream.
///
/// grpc-swift hands a handler only `ServerContext.remotePeer`, which for a Unix socket is the socket's
/// own path (`unix:/run/meshca/agent.sock`), the same for every caller. The transport does, however,
/// let a server run code on every accepted HTTP/2 stream
/// (`HTTP2ServerTransport.Config.ChannelDebuggingCallbacks.onAcceptHTTP2Stream`), and that stream
/// channel's `parent` is the accepted Unix socket. ``install(on:)`` reads `SO_PEERCRED` from that
/// socket and puts this handler first in the stream's pipeline, ahead of gRPC's own stream handler,
/// which turns the HEADERS frame into request metadata. The stream delivers no frame before its
/// initializer (and so this callback) has finished, so every HEADERS frame passes through here.
///
/// In each inbound HEADERS frame the handler removes every ``PeerCredentials/uidKey``,
/// ``PeerCredentials/pidKey`` and ``PeerCredentials/gidKey`` header the client sent, and adds the real
/// values to the first one (the request headers). A client therefore cannot choose the uid the service
/// sees. When the credentials could not be read, the headers are only removed, and the service refuses
/// the call.
final class PeerCredentialsStamp: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = HTTP2Frame.FramePayload

    private let credentials: PeerCredentials?
    private var stampedRequestHeaders = false

    /// A stamp for one stream; `credentials` is `nil` when the peer's could not be read.
    init(credentials: PeerCredentials?) {
        self.credentials = credentials
    }

    /// The `onAcceptHTTP2Stream` callback: reads the parent socket's peer credentials and adds a stamp
    /// at the front of `stream`'s pipeline.
    @Sendable
    static func install(on stream: any Channel) -> EventLoopFuture<Void> {
        let read: EventLoopFuture<PeerCredentials?> =
            if let connection = stream.parent {
                PeerCredentials.read(from: connection)
            } else {
                stream.eventLoop.makeSucceededFuture(nil)
            }
        // Stream channels share their connection's event loop; hopping makes that an explicit
        // precondition of the synchronous pipeline call rather than an assumption.
        return read.hop(to: stream.eventLoop).flatMapThrowing { credentials in
            try stream.pipeline.syncOperations.addHandler(
                PeerCredentialsStamp(credentials: credentials), position: .first)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var payload = unwrapInboundIn(data)
        if case .headers(var headers) = payload {
            Self.strip(&headers.headers)
            if !stampedRequestHeaders, let credentials {
                headers.headers.add(name: PeerCredentials.uidKey, value: String(credentials.uid))
                headers.headers.add(name: PeerCredentials.gidKey, value: String(credentials.gid))
                headers.headers.add(name: PeerCredentials.pidKey, value: String(credentials.pid))
            }
            stampedRequestHeaders = true
            payload = .headers(headers)
        }
        context.fireChannelRead(wrapInboundOut(payload))
    }

    /// Removes every server-owned credential header (names compare case-insensitively).
    static func strip(_ headers: inout HPACKHeaders) {
        for name in [PeerCredentials.uidKey, PeerCredentials.gidKey, PeerCredentials.pidKey] {
            headers.remove(name: name)
        }
    }
}

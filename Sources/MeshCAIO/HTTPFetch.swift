#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NIOCore
import NIOHTTP1
import NIOPosix

/// A plain-HTTP GET on SwiftNIO, for `meshca agent status` and the agent's CRL fetch; it fails with `DaemonError`
/// `.fetchFailed`.
///
/// It replaces `URLSession`, whose FoundationNetworking module brings libcurl and some twenty shared libraries
/// into every `meshca` process at start-up, for two requests to meshca's own monitoring ports. Only `http://`
/// URLs; one request per connection (`Connection: close`); the whole body is kept in memory, up to a limit the
/// caller states (a larger body fails the fetch as soon as it is seen, whatever `Content-Length` said).
package enum HTTPFetch {
    /// The status code and body of `GET url`, within `timeout` (connecting included); fails when the body is
    /// larger than `maximumBodyBytes`. `what` names the body in that error ("a CRL").
    package static func get(
        _ url: URL, timeout: Duration = .seconds(5), maximumBodyBytes: Int, what: String
    ) async throws -> (status: Int, body: [UInt8]) {
        guard url.scheme == "http", let host = url.host, !host.isEmpty else {
            throw DaemonError(.fetchFailed, "\(url) is not an http:// URL")
        }
        let port = url.port ?? 80
        let path = (url.path.isEmpty ? "/" : url.path) + (url.query.map { "?" + $0 } ?? "")
        let group = MultiThreadedEventLoopGroup.singleton
        let promise = group.next().makePromise(of: (status: Int, body: [UInt8]).self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(
                            ResponseCollector(
                                promise: promise, limit: maximumBodyBytes,
                                tooLarge: DaemonError(
                                    .fetchFailed, "the answer from \(url) is larger than \(maximumBodyBytes) bytes, the most "
                                        + "meshca reads for \(what); it was discarded")))
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            promise.fail(error)
            throw DaemonError(.fetchFailed, "could not connect to \(host):\(port): \(ConnectionFailure.words(for: error) ?? "\(error)")")
        }
        let deadline = channel.eventLoop.scheduleTask(in: .seconds(Int64(timeout.components.seconds))) {
            promise.fail(DaemonError(.fetchFailed, "no answer from \(url) within \(timeout)"))
        }
        defer {
            deadline.cancel()
            channel.close(promise: nil)
        }
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
        head.headers.add(name: "Host", value: url.port.map { "\(host):\($0)" } ?? host)
        head.headers.add(name: "Connection", value: "close")
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil)).get()
        return try await promise.futureResult.get()
    }
}

/// Collects one response; fails the promise when the connection closes before the response ended.
private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<(status: Int, body: [UInt8])>
    private let limit: Int
    private let tooLarge: DaemonError
    private var status = 0
    private var body: [UInt8] = []

    init(promise: EventLoopPromise<(status: Int, body: [UInt8])>, limit: Int, tooLarge: DaemonError) {
        self.promise = promise
        self.limit = limit
        self.tooLarge = tooLarge
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): status = Int(head.status.code)
        case .body(var buffer):
            guard body.count + buffer.readableBytes <= limit else {
                promise.fail(tooLarge)
                context.close(promise: nil)
                return
            }
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end: promise.succeed((status, body))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(DaemonError(.fetchFailed, "the server closed the connection before answering"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}

import Logging
import MeshCAIO
import NIOCore

/// Answers the client's HTTP/2 PINGs itself, before NIO's HTTP/2 handler sees them, with a limit that lets a
/// well-behaved client ping as often as it gets responses.
///
/// gRPC-Go on default settings sends a PING after most responses it receives (BDP estimation); swift-nio-http2
/// counts every inbound PING toward a fixed 200 per 30 seconds and answers the 201st with
/// `GOAWAY ENHANCE_YOUR_CALM` (last stream 0, nothing logged), and grpc-swift-nio-transport does not expose that
/// limit. This handler sits between TLS and HTTP/2, reads only frame headers, removes each client PING
/// (type 6, no ACK flag, 8 bytes, stream 0) from the byte stream and writes the PING ACK itself, so the HTTP/2
/// handler's own limit never counts them; SETTINGS and every other frame pass through unchanged, still under
/// NIO's limits.
///
/// Its own limit (``PingBudget``): 200 PINGs, refilled at 200 per 30 seconds as NIO allows, plus one more for
/// every request (HEADERS frame) the client sends. A client pinging after each response never runs out; a flood
/// of PINGs does, and gets `GOAWAY ENHANCE_YOUR_CALM` with the last stream it opened, then the connection is
/// closed and one log line names the client (at most one line per 10 seconds).
///
/// Anything that is not a well-formed HTTP/2 connection preface is passed through untouched (the HTTP/2 handler
/// rejects it), as are PINGs that break the protocol (wrong length or stream, or between HEADERS and
/// CONTINUATION), so NIO reports those errors as before.
final class HTTP2PingGuard: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    /// How long the client's bytes are still read (and dropped) after a flood's GOAWAY, before the connection closes.
    static let lingerAfterGoAway: TimeAmount = .seconds(2)
    private static let headerLength = 9

    private enum Phase {
        /// Checking the client's connection preface; `matched` bytes so far.
        case preface(matched: Int)
        /// Collecting a frame header.
        case header
        /// Passing `remaining` bytes of a frame's payload through.
        case payload(remaining: Int)
        /// Collecting the 8 bytes of a client PING.
        case ping
        /// Not HTTP/2: everything passes through.
        case passThrough
        /// Closing after a PING flood: everything is dropped.
        case closing
    }

    private var phase = Phase.preface(matched: 0)
    private var header: [UInt8] = []
    private var pingData: [UInt8] = []
    private var framesSeen = 0
    private var expectingContinuation = false
    private var lastStreamID: UInt32 = 0
    private var budget: PingBudget
    private var wroteAcks = false
    private let log: RateLimitedLog
    private let logger: Logger

    /// A guard sharing `log` (one line per 10 s for the whole listener) and writing to `logger`.
    init(log: RateLimitedLog, logger: Logger, now: NIODeadline = .now()) {
        self.log = log
        self.logger = logger
        self.budget = PingBudget(now: now)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var input = unwrapInboundIn(data)
        switch phase {
        case .passThrough: return context.fireChannelRead(data)
        case .closing: return
        default: break
        }
        // What reaches the HTTP/2 handler: the input minus client PINGs; usually the whole buffer, uncopied.
        var forward: [ByteBuffer] = []
        while input.readableBytes > 0 {
            switch phase {
            case .passThrough:
                forward.append(input.readSlice(length: input.readableBytes)!)
            case .closing:
                input.moveReaderIndex(forwardBy: input.readableBytes)
            case .preface(let matched):
                let count = min(Self.preface.count - matched, input.readableBytes)
                let bytes = input.getBytes(at: input.readerIndex, length: count)!
                if bytes[...] != Self.preface[matched..<(matched + count)] {
                    phase = .passThrough
                    continue
                }
                forward.append(input.readSlice(length: count)!)
                phase = matched + count == Self.preface.count ? .header : .preface(matched: matched + count)
            case .header:
                let count = min(Self.headerLength - header.count, input.readableBytes)
                header += input.readBytes(length: count)!
                guard header.count == Self.headerLength else { continue }
                startFrame(forwardingTo: &forward, allocator: context.channel.allocator)
            case .payload(let remaining):
                let count = min(remaining, input.readableBytes)
                forward.append(input.readSlice(length: count)!)
                phase = remaining == count ? .header : .payload(remaining: remaining - count)
            case .ping:
                let count = min(8 - pingData.count, input.readableBytes)
                pingData += input.readBytes(length: count)!
                guard pingData.count == 8 else { continue }
                phase = .header
                answerPing(context: context)
            }
        }
        switch forward.count {
        case 0: break
        case 1: context.fireChannelRead(wrapInboundOut(forward[0]))
        default:
            var joined = context.channel.allocator.buffer(capacity: forward.reduce(0) { $0 + $1.readableBytes })
            for var piece in forward { joined.writeBuffer(&piece) }
            context.fireChannelRead(wrapInboundOut(joined))
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if wroteAcks {
            wroteAcks = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    /// A frame header is complete: decide whether it is a client PING to take out.
    private func startFrame(forwardingTo forward: inout [ByteBuffer], allocator: ByteBufferAllocator) {
        let length = Int(header[0]) << 16 | Int(header[1]) << 8 | Int(header[2])
        let type = header[3]
        let flags = header[4]
        let stream = (UInt32(header[5]) << 24 | UInt32(header[6]) << 16 | UInt32(header[7]) << 8 | UInt32(header[8])) & 0x7FFF_FFFF
        defer {
            header.removeAll(keepingCapacity: true)
            framesSeen += 1
        }
        // The first frame must be SETTINGS; anything before it is for the HTTP/2 handler to refuse.
        let isClientPing = type == 0x6 && flags & 0x1 == 0 && length == 8 && stream == 0 && framesSeen > 0 && !expectingContinuation
        if isClientPing {
            pingData.removeAll(keepingCapacity: true)
            phase = .ping
            return
        }
        switch type {
        case 0x1:  // HEADERS: a new request (or trailers), which earns the client one more PING.
            budget.request()
            lastStreamID = max(lastStreamID, stream)
            expectingContinuation = flags & 0x4 == 0
        case 0x9:  // CONTINUATION
            expectingContinuation = flags & 0x4 == 0
        default:
            break
        }
        forward.append(allocator.buffer(bytes: header))
        phase = length == 0 ? .header : .payload(remaining: length)
    }

    private func answerPing(context: ChannelHandlerContext) {
        if budget.ping(now: .now()) {
            var ack = context.channel.allocator.buffer(capacity: Self.headerLength + 8)
            ack.writeBytes([0, 0, 8, 0x6, 0x1, 0, 0, 0, 0])
            ack.writeBytes(pingData)
            context.write(wrapOutboundOut(ack), promise: nil)
            wroteAcks = true
            return
        }
        // A flood: GOAWAY (ENHANCE_YOUR_CALM, with the last stream the client opened, so it knows which requests
        // may have been processed), then close. Our side is closed first and the client's further bytes are read
        // and dropped for a moment: closing with unread input would send a TCP reset, which can destroy the
        // GOAWAY before the client reads it.
        phase = .closing
        var goAway = context.channel.allocator.buffer(capacity: Self.headerLength + 8)
        goAway.writeBytes([0, 0, 8, 0x7, 0, 0, 0, 0, 0])
        goAway.writeInteger(lastStreamID)
        goAway.writeInteger(UInt32(0xB))  // ENHANCE_YOUR_CALM
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(goAway), promise: nil)
        context.close(mode: .output, promise: nil)
        context.eventLoop.scheduleTask(in: Self.lingerAfterGoAway) { channel.close(promise: nil) }
        let peer = ConnectionLimiter.peer(channel)
        log.record { suppressed in
            logger.warning(
                Logger.Message(
                    stringLiteral: "closed the gRPC connection from \(peer): it sent more PINGs than its requests allow "
                        + "(\(PingBudget.burst) per \(PingBudget.window.components.seconds)s plus one per request); sent GOAWAY "
                        + "ENHANCE_YOUR_CALM\(log.more(suppressed))"))
        }
    }
}

/// The client PINGs a connection may still send: a bucket of ``burst`` refilled at ``burst`` per ``window``
/// (swift-nio-http2's own default rate), plus one for each request, so a client pinging once per response
/// never runs out.
struct PingBudget {
    /// PINGs allowed at once without requests, and per ``window``.
    static let burst = 200
    /// The refill period of ``burst``.
    static let window: Duration = .seconds(30)
    /// Request credit is kept up to this many PINGs ahead.
    static let ceiling = 10_000.0

    private var tokens: Double
    private var last: NIODeadline

    init(now: NIODeadline) {
        tokens = Double(Self.burst)
        last = now
    }

    /// A request came in: one more PING allowed.
    mutating func request() {
        tokens = min(Self.ceiling, tokens + 1)
    }

    /// A PING came in at `now`: true when it is within the budget (and consumes it).
    mutating func ping(now: NIODeadline) -> Bool {
        let elapsed = Double((now - last).nanoseconds) / 1e9
        last = now
        if tokens < Double(Self.burst) {
            let rate = Double(Self.burst) / Double(Self.window.components.seconds)
            tokens = min(Double(Self.burst), tokens + max(0, elapsed) * rate)
        }
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}

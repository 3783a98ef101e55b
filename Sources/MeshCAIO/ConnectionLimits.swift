import Logging
import NIOCore
import Synchronization
import MeshCAPlatform

/// What a listener allows a connection before closing it, so that connections that never finish their
/// handshake, or sit idle, cannot use up the process's file descriptors.
///
/// The gRPC/TLS port, the daemon's monitoring port and the agent's status port each apply their own copy.
public struct ConnectionLimits: Sendable, Hashable {
    /// How long a new connection has to become useful before it is closed: to finish the TLS handshake on the
    /// gRPC port, to send its first complete request on an HTTP port.
    public var handshakeTimeout: Duration
    /// How long an established connection may go without a request before it is closed (gRPC: no open
    /// stream; HTTP: no request since the last response).
    public var idleTimeout: Duration
    /// The most connections open at once on this listener. When it is reached, a new connection replaces
    /// the oldest one that has not finished its handshake (on HTTP ports, the oldest connection); when there
    /// is none, the new connection is closed. Either way one log line says so (at most one every 10 seconds).
    public var maxConnections: Int

    /// The handshake timeout when none is configured.
    public static let defaultHandshakeTimeout: Duration = .seconds(10)
    /// The idle timeout when none is configured.
    public static let defaultIdleTimeout: Duration = .seconds(300)
    /// File descriptors kept out of the connection caps for the ledger, state files and logs.
    public static let reservedDescriptors = 256
    /// The automatic cap never goes above this.
    public static let automaticMaxConnectionsCeiling = 4096

    /// Creates limits from their parts, unchecked.
    public init(handshakeTimeout: Duration, idleTimeout: Duration, maxConnections: Int) {
        self.handshakeTimeout = handshakeTimeout
        self.idleTimeout = idleTimeout
        self.maxConnections = maxConnections
    }

    /// The default timeouts and ``automaticMaxConnections(openFileLimit:listeners:)`` for the current open-file limit.
    public static var defaults: ConnectionLimits {
        ConnectionLimits(
            handshakeTimeout: defaultHandshakeTimeout, idleTimeout: defaultIdleTimeout,
            maxConnections: automaticMaxConnections(openFileLimit: OpenFileLimit.current))
    }

    /// A cap per listener that lets `listeners` listeners all be full without running out of descriptors:
    /// the open-file limit less ``reservedDescriptors``, shared out, at most ``automaticMaxConnectionsCeiling``,
    /// at least 16. With the common soft limit of 1024 it is 384 for two listeners.
    public static func automaticMaxConnections(openFileLimit: Int, listeners: Int = 2) -> Int {
        max(16, min(automaticMaxConnectionsCeiling, (openFileLimit - reservedDescriptors) / max(1, listeners)))
    }
}

/// The process's open-file limit (`RLIMIT_NOFILE`).
public enum OpenFileLimit {
    /// The soft limit now in force.
    public static var current: Int {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return 1024 }
        return clamp(limit.rlim_cur)
    }

    /// Raises the soft limit to the hard limit (many systems start processes at 1024 while allowing far
    /// more), and returns the soft limit before and after. A failure leaves the limit as it was.
    @discardableResult
    public static func raiseToHardLimit() -> (before: Int, after: Int) {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return (current, current) }
        let before = clamp(limit.rlim_cur)
        var target = limit.rlim_max
        #if canImport(Darwin)
            // macOS refuses RLIM_INFINITY and anything above OPEN_MAX for the soft limit.
            target = min(target, rlim_t(OPEN_MAX))
        #endif
        guard target > limit.rlim_cur else { return (before, before) }
        var raised = limit
        raised.rlim_cur = target
        guard setrlimit(resource, &raised) == 0 else { return (before, before) }
        return (before, current)
    }

    private static func clamp(_ value: rlim_t) -> Int {
        value >= rlim_t(Int.max) ? Int.max : Int(value)
    }

    #if canImport(Glibc)
        private static let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
        private static let resource = RLIMIT_NOFILE
    #endif
}

/// At most one log line per interval for an event that can repeat thousands of times a second (a flood),
/// saying how many were left out since the previous line.
package final class RateLimitedLog: Sendable {
    private let interval: Duration
    private let state = Mutex<(last: ContinuousClock.Instant?, suppressed: Int)>((nil, 0))

    /// A log allowing one line per `interval`.
    package init(interval: Duration = .seconds(10)) {
        self.interval = interval
    }

    /// Calls `write` with the number of events left out since the last line, when a line is due; otherwise
    /// counts this event as left out.
    package func record(_ write: (_ suppressed: Int) -> Void) {
        let now = ContinuousClock.now
        let due: Int? = state.withLock { state in
            if let last = state.last, now - last < interval {
                state.suppressed += 1
                return nil
            }
            defer { state = (now, 0) }
            return state.suppressed
        }
        if let suppressed = due { write(suppressed) }
    }

    /// `" (and N more like it in the last 10s)"`, or nothing when none were left out.
    package func more(_ suppressed: Int) -> String {
        suppressed == 0 ? "" : " (and \(suppressed) more like it in the last \(Self.text(interval)))"
    }

    private static func text(_ duration: Duration) -> String {
        "\(duration.components.seconds)s"
    }
}

/// The connections open on one listener, capped at ``ConnectionLimits/maxConnections``.
///
/// A connection is *evictable* until it has proven itself (finished its TLS handshake); when the cap is
/// reached a new connection replaces the oldest evictable one, so connections that never handshake cannot
/// keep legitimate clients out. Each shed is logged, at most one line per 10 seconds.
package final class ConnectionLimiter: Sendable {
    private struct Entry {
        let channel: any Channel
        let order: UInt64
        var evictable: Bool
    }

    private struct State {
        var open: [ObjectIdentifier: Entry] = [:]
        var next: UInt64 = 0
        var closed = false
    }

    /// The cap.
    package let maxConnections: Int
    private let listener: String
    private let setting: String
    private let logger: Logger
    private let state = Mutex(State())
    private let shedLog = RateLimitedLog()

    /// A limiter for the listener described by `listener` (`the gRPC listener 127.0.0.1:15012`); `setting`
    /// names what raises the cap, for the log line.
    package init(maxConnections: Int, listener: String, setting: String, logger: Logger) {
        self.maxConnections = max(1, maxConnections)
        self.listener = listener
        self.setting = setting
        self.logger = logger
    }

    /// Registers a new connection, evicting the oldest evictable one when the listener is full.
    ///
    /// Returns false when the connection must be refused: the listener is full of established connections,
    /// or is shutting down. The caller closes a refused connection; this closes an evicted one.
    package func admit(_ channel: any Channel, evictable: Bool = true) -> Bool {
        enum Outcome { case admitted, evicted(any Channel), refused, shuttingDown }
        let outcome: Outcome = state.withLock { state in
            guard !state.closed else { return .shuttingDown }
            var victim: (any Channel)?
            if state.open.count >= maxConnections {
                guard let oldest = state.open.values.filter(\.evictable).min(by: { $0.order < $1.order }) else {
                    return .refused
                }
                state.open.removeValue(forKey: ObjectIdentifier(oldest.channel))
                victim = oldest.channel
            }
            state.open[ObjectIdentifier(channel)] = Entry(channel: channel, order: state.next, evictable: evictable)
            state.next += 1
            return victim.map { .evicted($0) } ?? .admitted
        }
        switch outcome {
        case .admitted:
            return true
        case .shuttingDown:
            return false
        case .evicted(let victim):
            victim.close(promise: nil)
            shed("closed the oldest connection that had not finished its handshake (from \(Self.peer(victim))) to admit one from \(Self.peer(channel))")
            return true
        case .refused:
            shed("refused a new connection from \(Self.peer(channel)): every open connection is established")
            return false
        }
    }

    /// Marks a connection as established: it is no longer evicted to make room.
    package func markEstablished(_ channel: any Channel) {
        state.withLock { $0.open[ObjectIdentifier(channel)]?.evictable = false }
    }

    /// Forgets a closed connection.
    package func remove(_ channel: any Channel) {
        _ = state.withLock { $0.open.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// Refuses further connections and returns those still open.
    package func closeAll() -> [any Channel] {
        state.withLock { state in
            state.closed = true
            return state.open.values.sorted { $0.order < $1.order }.map(\.channel)
        }
    }

    /// How many connections are open.
    package var count: Int { state.withLock { $0.open.count } }

    private func shed(_ what: String) {
        shedLog.record { suppressed in
            logger.warning(
                Logger.Message(
                    stringLiteral: "connection limit reached on \(listener) (\(maxConnections) open): \(what)\(shedLog.more(suppressed)). "
                        + "If these are legitimate clients, raise \(setting); otherwise look for the source of the connections."))
        }
    }

    /// The peer's address, e.g. `127.0.0.1:53412`.
    package static func peer(_ channel: any Channel) -> String {
        guard let address = channel.remoteAddress else { return "an unknown address" }
        switch address {
        case .v4(let v4): return "\(v4.host):\(address.port ?? 0)"
        case .v6(let v6): return "[\(v6.host)]:\(address.port ?? 0)"
        case .unixDomainSocket: return "a Unix socket"
        }
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import ServiceLifecycle

/// Time for the long-running services of `meshca serve` and `meshca agent`: what time it is (certificates are
/// issued, renewed and expire by the wall clock) and how to wait (a clock to sleep on). Production uses
/// ``system``; tests pass a controllable clock, so renewal, backoff, expiry and rotation run in milliseconds of
/// test-clock time instead of seconds of real time.
public struct ServiceTime: Sendable {
    /// What the services sleep on.
    public let clock: any Clock<Duration>
    /// The current time, for certificate validity and schedules. Must advance with `clock`.
    public let now: @Sendable () -> Date

    /// Time from `clock` and `now`.
    public init(clock: any Clock<Duration>, now: @escaping @Sendable () -> Date) {
        self.clock = clock
        self.now = now
    }

    /// The real time: the continuous clock and the system's wall clock.
    public static let system = ServiceTime(clock: ContinuousClock(), now: { Date() })

    /// Sleeps for `duration`; false when graceful shutdown or cancellation ended the wait (the service should return).
    public func sleep(for duration: Duration) async -> Bool {
        guard !Task.isCancelled, !Task.isShuttingDownGracefully else { return false }
        do {
            let clock = self.clock
            try await cancelWhenGracefulShutdown { try await clock.sleep(for: max(duration, .zero)) }
            return true
        } catch {
            return false
        }
    }

    /// Sleeps until the wall-clock time `date` (at once when it has passed); false as ``sleep(for:)``.
    public func sleep(until date: Date) async -> Bool {
        await sleep(for: .seconds(date.timeIntervalSince(now())))
    }

    /// The shape every periodic service shares: wait until `first`, run `round` with the time it runs at, and wait
    /// again until the time `round` returns; until graceful shutdown or cancellation.
    public func repeatedly(from first: Date, _ round: (Date) async -> Date) async {
        var next = first
        while await sleep(until: next) {
            next = await round(now())
        }
    }

    /// ``repeatedly(from:_:)`` at a fixed `interval`, the first round at once when `immediately`, else after one
    /// interval.
    public func every(_ interval: Duration, immediately: Bool, _ round: (Date) async -> Void) async {
        let first = immediately ? now() : now().addingTimeInterval(interval.seconds)
        await repeatedly(from: first) { at in
            await round(at)
            return now().addingTimeInterval(interval.seconds)
        }
    }
}

extension Duration {
    /// The duration in seconds, fractions included.
    public var seconds: TimeInterval {
        TimeInterval(components.seconds) + TimeInterval(components.attoseconds) / 1e18
    }
}

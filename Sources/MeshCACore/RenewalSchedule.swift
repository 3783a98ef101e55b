#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// When an agent renews, and how long it waits after a failure. Pure arithmetic: time and randomness
/// are arguments, so tests never sleep.
///
/// Renewal happens once `graceRatio` of the certificate's real lifetime is left (0.5: at half-life, as
/// istio-agent and SPIRE do), moved by up to ±`jitter` of the lifetime before that point, so a fleet
/// issued at the same moment does not renew at the same moment. Lifetime is measured from when the
/// certificate was received to its notAfter, because a CA may grant less than was asked for.
public struct RenewalSchedule: Sendable, Equatable {
    /// The fraction of the lifetime left when renewal starts, in (0, 1).
    public let graceRatio: Double
    /// The random spread, as a fraction of the time before renewal, in [0, 1).
    public let jitter: Double
    /// The first retry delay after a failure.
    public let initialBackoff: Duration
    /// The longest retry delay.
    public let maximumBackoff: Duration

    /// Validates the parameters.
    public init(graceRatio: Double = 0.5, jitter: Double = 0.1, initialBackoff: Duration = .seconds(1), maximumBackoff: Duration = .seconds(60)) throws {
        guard graceRatio > 0, graceRatio < 1 else {
            throw IssuanceError(.invalidDuration, "--grace-ratio must be between 0 and 1 (0.5 renews at half-life); got \(graceRatio).")
        }
        guard jitter >= 0, jitter < 1 else {
            throw IssuanceError(.invalidDuration, "--jitter must be at least 0 and below 1 (0.1 spreads renewals by ±10%); got \(jitter).")
        }
        guard initialBackoff > .zero, maximumBackoff >= initialBackoff else {
            throw IssuanceError(.invalidDuration, "The retry backoff must start above zero and not exceed its maximum.")
        }
        self.graceRatio = graceRatio
        self.jitter = jitter
        self.initialBackoff = initialBackoff
        self.maximumBackoff = maximumBackoff
    }

    /// When to renew a certificate received at `receivedAt` that expires at `notAfter`; `random` is a
    /// uniformly distributed number in [-1, 1].
    public func renewalTime(receivedAt: Date, notAfter: Date, random: Double) -> Date {
        let lifetime = max(0, notAfter.timeIntervalSince(receivedAt))
        let base = lifetime * (1 - graceRatio)
        let spread = base * jitter * min(max(random, -1), 1)
        return receivedAt.addingTimeInterval(min(max(0, base + spread), lifetime))
    }

    /// The delay before retry number `attempt` (0 for the first retry): doubling from `initialBackoff`
    /// up to `maximumBackoff`, then a random point in its upper half (`random` in [0, 1]), never past
    /// `deadline` when given (the certificate's notAfter), so a retry is always tried before expiry.
    public func backoff(attempt: Int, random: Double, now: Date, deadline: Date? = nil) -> Duration {
        let initial = Double(initialBackoff.components.seconds) + Double(initialBackoff.components.attoseconds) / 1e18
        let maximum = Double(maximumBackoff.components.seconds) + Double(maximumBackoff.components.attoseconds) / 1e18
        let full = min(maximum, initial * Double(1 << min(max(attempt, 0), 30)))
        var delay = full / 2 + full / 2 * min(max(random, 0), 1)
        if let deadline {
            let left = deadline.timeIntervalSince(now)
            if left > 0 { delay = min(delay, max(left / 2, 0.1)) }
        }
        return .milliseconds(Int64(delay * 1000))
    }

    /// How long the CA can stay unreachable before a certificate expiring at `notAfter` expires, as of `now`.
    public static func outageBudget(notAfter: Date, now: Date) -> Duration {
        .seconds(Int64(max(0, notAfter.timeIntervalSince(now)).rounded(.down)))
    }
}

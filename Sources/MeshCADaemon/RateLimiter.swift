import Foundation
import Synchronization

/// A token bucket per identity: at most `count` requests per `period`, refilled continuously.
///
/// It protects the CA (and its ledger) from a runaway or malicious workload; an agent renews once per
/// half-life, so a legitimate identity stays far below any sensible limit.
public final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: Date
    }

    private let capacity: Double
    private let perSecond: Double
    private let buckets = Mutex<[String: Bucket]>([:])
    /// The limit as configured, e.g. "60/m", for messages.
    public let limit: String

    /// Allows `count` requests per `period` per key.
    public init(count: Int, per period: Duration) {
        capacity = Double(max(count, 1))
        perSecond = Double(max(count, 1)) / max(Double(period.components.seconds), 1)
        limit = DaemonConfiguration.RateLimit(count: max(count, 1), per: period).description
    }

    /// Whether `key` has at least one request left at `now`, without taking it.
    public func hasCapacity(_ key: String, at now: Date) -> Bool {
        buckets.withLock { buckets in
            guard let bucket = buckets[key] else { return true }
            return min(capacity, bucket.tokens + max(0, now.timeIntervalSince(bucket.updated)) * perSecond) >= 1
        }
    }

    /// Takes one request for `key` at `now`; `false` when the key is over its limit.
    public func allow(_ key: String, at now: Date) -> Bool {
        buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: capacity, updated: now)
            let elapsed = max(0, now.timeIntervalSince(bucket.updated))
            bucket.tokens = min(capacity, bucket.tokens + elapsed * perSecond)
            bucket.updated = now
            let allowed = bucket.tokens >= 1
            if allowed { bucket.tokens -= 1 }
            buckets[key] = bucket
            // Full buckets carry no information; dropping them keeps memory bounded by active identities.
            if buckets.count > 10_000 { buckets = buckets.filter { $0.value.tokens < capacity } }
            return allowed
        }
    }
}

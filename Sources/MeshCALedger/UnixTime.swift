import Foundation

/// Conversions between `Date` and the whole Unix seconds the ledger stores.
///
/// Stored times lose any fraction of a second. Queries compare a fractional instant against stored whole
/// seconds, so they need both roundings to agree exactly with `IssuanceRecord.status(at:)`.
package enum UnixTime {
    /// Beyond ±2^53 a `Double` no longer holds whole seconds exactly; clamping keeps `Int64(_:)` from trapping
    /// on dates such as `.distantFuture` multiplied by mistake.
    private static let limit = 9_007_199_254_740_992.0

    /// Whole seconds at or before `date`: the stored form of every timestamp.
    package static func floor(_ date: Date) -> Int64 {
        Int64(clamp(date.timeIntervalSince1970.rounded(.down)))
    }

    /// Whole seconds at or after `date`: `stored < ceiling(now)` exactly when `stored < now`.
    package static func ceiling(_ date: Date) -> Int64 {
        Int64(clamp(date.timeIntervalSince1970.rounded(.up)))
    }

    /// The date a stored value stands for.
    package static func date(_ seconds: Int64) -> Date {
        Date(timeIntervalSince1970: TimeInterval(seconds))
    }

    /// The length of `duration` in (fractional) seconds.
    package static func seconds(_ duration: Duration) -> TimeInterval {
        let (seconds, attoseconds) = duration.components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }

    private static func clamp(_ value: Double) -> Double {
        Swift.min(Swift.max(value, -limit), limit)
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Durations as people type them on the command line: `90s`, `30m`, `24h`, `7d`, or combinations
/// such as `1h30m`. Units: `s`, `m`, `h`, `d` (24 hours).
public enum HumanDuration {
    /// Parses `text`, throwing ``IssuanceErrorCode/invalidDuration`` with an example when it cannot.
    public static func parse(_ text: String) throws -> Duration {
        func fail(_ why: String) -> IssuanceError {
            IssuanceError(
                .invalidDuration,
                "\"\(text)\" is not a duration: \(why). Write a number followed by s, m, h or d, e.g. 90s, 30m, 24h, 7d or 1h30m."
            )
        }
        let trimmed = text.trimmed
        if trimmed.isEmpty { throw fail("it is empty") }
        var total: Int64 = 0
        var digits = ""
        for char in trimmed {
            if char.isASCII, char.isNumber {
                digits.append(char)
                continue
            }
            guard !digits.isEmpty else { throw fail("\"\(char)\" is not preceded by a number") }
            let unit: Int64
            switch char {
            case "s": unit = 1
            case "m": unit = 60
            case "h": unit = 3600
            case "d": unit = 86_400
            default: throw fail("\"\(char)\" is not a unit")
            }
            guard let value = Int64(digits) else { throw fail("\(digits) is too large") }
            let (product, overflow1) = value.multipliedReportingOverflow(by: unit)
            let (sum, overflow2) = total.addingReportingOverflow(product)
            if overflow1 || overflow2 || sum > 100 * 365 * 86_400 { throw fail("it is longer than 100 years") }
            total = sum
            digits = ""
        }
        if !digits.isEmpty { throw fail("\(digits) has no unit") }
        if total == 0 { throw fail("it must be longer than zero") }
        return .seconds(total)
    }

    /// Formats whole seconds compactly, largest units first: `2d3h`, `24h`, `90s`, `-5m` for the past.
    public static func format(_ duration: Duration) -> String {
        var seconds = duration.components.seconds
        if seconds == 0 { return "0s" }
        let sign = seconds < 0 ? "-" : ""
        seconds = abs(seconds)
        let days = seconds / 86_400
        let hours = seconds % 86_400 / 3600
        let minutes = seconds % 3600 / 60
        let secs = seconds % 60
        var out = ""
        if days > 0 { out += "\(days)d" }
        if hours > 0 { out += "\(hours)h" }
        if minutes > 0 && days == 0 { out += "\(minutes)m" }
        if secs > 0 && days == 0 && hours == 0 { out += "\(secs)s" }
        return sign + (out.isEmpty ? "0s" : out)
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import MeshCAPlatform
import Synchronization

/// Progress of a long operation (`audit verify`, `doctor`, backup's verification) on stderr: one line rewritten in
/// place with the count, the rate and the time left, at most every ``interval``, and cleared at the end. Only when
/// stderr is a terminal and the user did not ask for `--quiet`; otherwise nothing is written (logs and pipes stay
/// clean).
public final class ProgressReporter: Sendable {
    /// What is being done, e.g. "verifying the ledger".
    public let activity: String
    /// What is counted, e.g. "events".
    public let unit: String
    /// Whether anything is shown.
    public let isShown: Bool
    /// The least time between two lines.
    public let interval: Double
    private let time: ServiceTime
    private let write: @Sendable (String) -> Void
    private struct State {
        var started: Date?
        var lastShown: Date?
        var shownAnything = false
    }
    private let state = Mutex(State())

    /// A reporter writing to `write` (stderr by default) when `isTerminal` (stderr is a terminal by default) and
    /// not `quiet`; times from `time`.
    public init(
        _ activity: String, unit: String, quiet: Bool, isTerminal: Bool = isatty(2) != 0, time: ServiceTime = .system,
        interval: Double = 0.2, write: @escaping @Sendable (String) -> Void = ProgressReporter.standardError
    ) {
        self.activity = activity
        self.unit = unit
        self.isShown = isTerminal && !quiet
        self.time = time
        self.interval = interval
        self.write = write
    }

    /// Reports `done` of `total`; shows a line when the last one is at least ``interval`` old.
    public func update(done: Int64, total: Int64) {
        guard isShown else { return }
        let now = time.now()
        let line: String? = state.withLock { state in
            let started = state.started ?? now
            state.started = started
            if let last = state.lastShown, now.timeIntervalSince(last) < interval { return nil }
            state.lastShown = now
            state.shownAnything = true
            return Self.render(activity, unit: unit, done: done, total: total, elapsed: now.timeIntervalSince(started))
        }
        if let line { write("\r\u{1b}[K" + line) }
    }

    /// Clears the line (when one was shown), so the command's own output starts on a clean line.
    public func finish() {
        let shown = state.withLock { $0.shownAnything }
        if shown { write("\r\u{1b}[K") }
    }

    /// "verifying the ledger: 120,000 of 1,000,000 events (12%), 95,000 events/s, 9s left".
    public static func render(_ activity: String, unit: String, done: Int64, total: Int64, elapsed: Double) -> String {
        var line = "\(activity): \(grouped(done)) of \(grouped(total)) \(unit)"
        if total > 0 { line += " (\(min(100, done * 100 / total))%)" }
        guard elapsed > 0, done > 0 else { return line }
        let rate = Double(done) / elapsed
        line += ", \(grouped(Int64(rate.rounded()))) \(unit)/s"
        if total > done { line += ", " + duration(Double(total - done) / rate) + " left" }
        return line
    }

    /// 1234567 as "1,234,567" (fixed, not the locale's: no ICU in release builds).
    static func grouped(_ value: Int64) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out += "," }
            out.append(digit)
        }
        return (value < 0 ? "-" : "") + out
    }

    /// Seconds as "9s", "2m05s", "1h02m".
    static func duration(_ seconds: Double) -> String {
        let total = Int(seconds.rounded(.up))
        if total < 60 { return "\(total)s" }
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        if total < 3600 { return "\(total / 60)m\(two(total % 60))s" }
        return "\(total / 3600)h\(two(total / 60 % 60))m"
    }

    /// Writes to file descriptor 2.
    public static let standardError: @Sendable (String) -> Void = { text in writeProgress(text) }
}

/// Writes `text` to file descriptor 2 in one call (a progress line is short; a partial write only costs a frame).
private func writeProgress(_ text: String) {
    let bytes = Array(text.utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

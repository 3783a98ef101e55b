import Foundation
import MeshCAIO
import MeshCATestSupport
import Synchronization
import Testing

/// The progress line of long operations: rate and time left from an injected clock, shown only on a terminal and
/// without --quiet, at most every interval, cleared at the end.
@Suite("Progress on stderr")
struct ProgressReporterTests {
    /// A reporter on `clock` collecting what it writes.
    static func reporter(clock: TestClock, isTerminal: Bool = true, quiet: Bool = false) -> (ProgressReporter, Written) {
        let written = Written()
        let reporter = ProgressReporter(
            "verifying the ledger", unit: "events", quiet: quiet, isTerminal: isTerminal,
            time: ServiceTime(clock: clock, now: { clock.date })
        ) { text in written.texts.withLock { $0.append(text) } }
        return (reporter, written)
    }

    /// What a reporter wrote.
    final class Written: Sendable {
        let texts = Mutex<[String]>([])
        var all: [String] { texts.withLock { $0 } }
    }

    @Test("Count, percentage, rate and time left, rewritten in place; grouped digits and minutes need no locale")
    func rendering() {
        #expect(ProgressReporter.render("verifying the ledger", unit: "events", done: 0, total: 1_000_000, elapsed: 0)
            == "verifying the ledger: 0 of 1,000,000 events (0%)")
        #expect(ProgressReporter.render("verifying the ledger", unit: "events", done: 250_000, total: 1_000_000, elapsed: 2.5)
            == "verifying the ledger: 250,000 of 1,000,000 events (25%), 100,000 events/s, 8s left")
        #expect(ProgressReporter.render("verifying the ledger", unit: "events", done: 1_000, total: 200_000, elapsed: 1)
            == "verifying the ledger: 1,000 of 200,000 events (0%), 1,000 events/s, 3m19s left")
        #expect(ProgressReporter.render("verifying the ledger", unit: "events", done: 10, total: 100_000, elapsed: 1)
            == "verifying the ledger: 10 of 100,000 events (0%), 10 events/s, 2h46m left")
        #expect(ProgressReporter.render("verifying the ledger", unit: "events", done: 5, total: 5, elapsed: 1)
            == "verifying the ledger: 5 of 5 events (100%), 5 events/s")
    }

    @Test("On a terminal: the first update at once, then at most one line per interval of the clock, cleared at the end")
    func terminal() {
        let clock = TestClock()
        let (reporter, written) = Self.reporter(clock: clock)
        reporter.update(done: 0, total: 1_000)
        clock.advance(by: .milliseconds(100))
        reporter.update(done: 100, total: 1_000)  // within the interval: not shown
        clock.advance(by: .milliseconds(400))
        reporter.update(done: 500, total: 1_000)
        reporter.finish()
        #expect(written.all == [
            "\r\u{1b}[Kverifying the ledger: 0 of 1,000 events (0%)",
            "\r\u{1b}[Kverifying the ledger: 500 of 1,000 events (50%), 1,000 events/s, 1s left",
            "\r\u{1b}[K",
        ])
    }

    @Test("Not a terminal, or --quiet: nothing at all, not even the clearing")
    func silent() {
        for (isTerminal, quiet) in [(false, false), (true, true), (false, true)] {
            let clock = TestClock()
            let (reporter, written) = Self.reporter(clock: clock, isTerminal: isTerminal, quiet: quiet)
            reporter.update(done: 0, total: 10)
            clock.advance(by: .seconds(1))
            reporter.update(done: 10, total: 10)
            reporter.finish()
            #expect(written.all.isEmpty, "terminal \(isTerminal), quiet \(quiet)")
        }
    }
}

import Foundation
import MeshCAIO
import Synchronization

/// A clock that moves only when a test moves it, with a wall-clock date that moves with it: hand it to a service
/// (as `ServiceTime(clock: clock, now: { clock.date })`), wait until the service sleeps on it
/// (``waitForSleepers(_:timeout:)``), then ``advance(by:)`` past the moment under test. A renewal due in six hours
/// happens in microseconds, and the test knows exactly when the service looked at the time.
public final class TestClock: Clock, Sendable {
    public struct Instant: InstantProtocol, Sendable {
        /// Time since the clock was made.
        public var offset: Duration
        public func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        public func duration(to other: Instant) -> Duration { other.offset - offset }
        public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
    }

    private struct Sleeper {
        let id: UInt64
        let deadline: Instant
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now = Instant(offset: .zero)
        var sleepers: [Sleeper] = []
        var nextID: UInt64 = 0
        /// How many sleeps have started, ever (a service that went round its loop once more shows here).
        var sleepsStarted = 0
    }

    private let state = Mutex(State())
    /// The wall-clock date at offset zero.
    public let start: Date

    /// A clock whose date starts at `start` (now by default: certificates issued by a real CA process are valid).
    public init(start: Date = Date()) {
        self.start = start
    }

    public var now: Instant { state.withLock { $0.now } }
    public var minimumResolution: Duration { .zero }

    /// The wall-clock date: `start` plus how far the clock was advanced.
    public var date: Date {
        start.addingTimeInterval(now.offset.seconds)
    }

    /// How many tasks sleep on the clock right now.
    public var sleepers: Int { state.withLock { $0.sleepers.count } }

    /// How many sleeps have started since the clock was made.
    public var sleepsStarted: Int { state.withLock { $0.sleepsStarted } }

    /// The durations from now to each sleeper's deadline, shortest first.
    public var pendingDeadlines: [Duration] {
        state.withLock { state in state.sleepers.map { state.now.duration(to: $0.deadline) }.sorted() }
    }

    public func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resume: Bool = state.withLock { state in
                    state.sleepsStarted += 1
                    if Task.isCancelled {
                        return true
                    }
                    if deadline <= state.now {
                        return true
                    }
                    state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return false
                }
                if resume {
                    if Task.isCancelled { continuation.resume(throwing: CancellationError()) } else { continuation.resume() }
                }
            }
        } onCancel: {
            let sleeper = state.withLock { state -> Sleeper? in
                guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return state.sleepers.remove(at: index)
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves the clock forward by `duration` and wakes every sleeper whose deadline has come, earliest first.
    public func advance(by duration: Duration) {
        let due = state.withLock { state -> [Sleeper] in
            state.now = state.now.advanced(by: duration)
            let now = state.now
            let due = state.sleepers.filter { $0.deadline <= now }.sorted { $0.deadline < $1.deadline }
            state.sleepers.removeAll { $0.deadline <= now }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// Moves the clock to the wall-clock `date` (no-op when it is not later than ``date``).
    public func advance(to date: Date) {
        let delta = date.timeIntervalSince(self.date)
        guard delta > 0 else { return }
        advance(by: .nanoseconds(Int64((delta * 1e9).rounded(.up))))
    }

    /// Waits (in real time, polling briefly) until at least `count` tasks sleep on the clock: the service under
    /// test has done its round and looked at the time. Throws after `timeout` of real time, a hang guard.
    public func waitForSleepers(_ count: Int = 1, timeout: Duration = .seconds(30)) async throws {
        try await Wait.until("\(count) task(s) sleep on the test clock (\(sleepers) do)", timeout: timeout) {
            sleepers >= count
        }
    }
}

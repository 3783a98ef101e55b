import Foundation
import Synchronization

/// A counting semaphore for the long-running processes tests start (daemons), so a test run does not start
/// more of them at once than a small machine can serve.
///
/// On a 2-core machine every daemon test started its `meshca serve` at once, and their start-up work, the
/// openssl and CLI children and the tests' own RPCs all competed for the same two cores: a first RPC could
/// wait longer than its deadline for CPU time. With a few slots the daemons that run get the machine, and the
/// others wait before they start (and before their deadlines begin).
public final class ProcessSlots: Sendable {
    private struct State {
        var free: Int
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state: Mutex<State>

    /// `count` processes may run at once.
    public init(_ count: Int) {
        state = Mutex(State(free: count))
    }

    /// Waits for a free slot and takes it.
    public func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                guard state.free > 0 else {
                    state.waiters.append(continuation)
                    return false
                }
                state.free -= 1
                return true
            }
            if now { continuation.resume() }
        }
    }

    /// Gives a slot back (to the longest waiter, if any).
    public func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiters.isEmpty else {
                state.free += 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }

    /// The slots for `meshca serve` processes started by tests: 3, or `MESHCA_TEST_DAEMONS`.
    public static let daemons = ProcessSlots(
        Int(ProcessInfo.processInfo.environment["MESHCA_TEST_DAEMONS"] ?? "") ?? 3)
}

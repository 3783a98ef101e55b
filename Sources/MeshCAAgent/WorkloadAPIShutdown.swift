#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization

/// Tells every open Workload API stream that the server is going away.
///
/// gRPC's graceful shutdown waits for open RPCs to finish, and Workload API streams never finish on
/// their own (PROTOCOLS.md §5.4: a stream ended with OK stops py-spiffe's watcher for good). So the
/// server first triggers this signal, each stream ends with `UNAVAILABLE` (clients reconnect with
/// backoff, to the next agent), and only then can `GRPCServer.serve()` return.
final class WorkloadAPIShutdown: Sendable {
    private struct State {
        var isTriggered = false
        var waiters: [UUID: AsyncStream<Never>.Continuation] = [:]
    }

    private let state = Mutex(State())

    /// A signal that has not fired.
    init() {}

    /// Whether ``trigger()`` has been called.
    var isTriggered: Bool { state.withLock { $0.isTriggered } }

    /// Fires the signal: every stream from ``signal()`` finishes, now and for later subscribers.
    func trigger() {
        let waiters = state.withLock { state in
            state.isTriggered = true
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.finish() }
    }

    /// A stream that finishes when the signal fires (at once if it already has) or when the task
    /// iterating it is cancelled.
    func signal() -> AsyncStream<Never> {
        let id = UUID()
        let (stream, continuation) = AsyncStream<Never>.makeStream()
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.waiters.removeValue(forKey: id) }
        }
        let alreadyTriggered = state.withLock { state in
            if !state.isTriggered { state.waiters[id] = continuation }
            return state.isTriggered
        }
        if alreadyTriggered { continuation.finish() }
        return stream
    }
}

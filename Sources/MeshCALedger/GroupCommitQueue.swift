import Synchronization

/// The writes waiting for a ledger's next group commit, shared by the SQLite and PostgreSQL ledgers: callers queue
/// a write and wait; one flush at a time takes the waiting writes as a batch (all of them, or as many as the ledger
/// allows), commits it in one transaction and hands each caller its outcome. Writes that arrive during a flush
/// form the next batch.
///
/// How a flush runs (a dispatch queue item, a task) and what a write is (`Apply`) belong to the ledger; this type
/// only keeps the batches apart and the callers waiting.
package final class GroupCommitQueue<Apply: Sendable>: Sendable {
    /// One write waiting to be committed, and its caller waiting for the outcome.
    package struct Write: Sendable {
        /// What the write does, as a verb phrase for error messages: "record certificate 0a1b".
        package let operation: String
        /// Applies the write inside the group transaction, in a savepoint of its own.
        package let apply: Apply
        /// Resumed once the write's outcome is final: after the COMMIT, or with the error that ended it.
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        /// Writes not yet taken by a flush, oldest first.
        var pending: [Write] = []
        /// Whether a flush is scheduled or running; there is never more than one.
        var isFlushing = false
        /// How many group transactions have committed.
        var commits = 0
    }

    private let state = Mutex(State())

    package init() {}

    /// How many group transactions have committed. With concurrent writers it grows more slowly than the number of
    /// writes; that is how tests see batching.
    package var commits: Int { state.withLock { $0.commits } }

    /// How many writes wait for the next batch, not counting a batch being committed right now.
    package var pendingCount: Int { state.withLock { $0.pending.count } }

    /// Queues `apply` and returns once its batch has committed, or throws why it is not recorded. `startFlush` is
    /// called, before waiting, when no flush is scheduled: it must arrange for ``takeBatch(limit:)`` to be called.
    package func submit(_ operation: String, _ apply: Apply, startFlush: () -> Void) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let mustStart = state.withLock { state in
                state.pending.append(Write(operation: operation, apply: apply, continuation: continuation))
                defer { state.isFlushing = true }
                return !state.isFlushing
            }
            if mustStart { startFlush() }
        }
    }

    /// The flush's next batch: the oldest `limit` waiting writes (every one by default), oldest first.
    package func takeBatch(limit: Int = .max) -> [Write] {
        state.withLock { state in
            let batch = Array(state.pending.prefix(limit))
            state.pending.removeFirst(batch.count)
            return batch
        }
    }

    /// Ends the flush of `batch`: counts the commit, resumes each caller with its outcome (in `batch`'s order), and
    /// says whether writes arrived meanwhile, in which case the flush must go on with the next ``takeBatch(limit:)``.
    package func finish(_ batch: [Write], committed: Bool, outcomes: [Result<Void, any Error>]) -> Bool {
        let hasMore = state.withLock { state in
            if committed { state.commits += 1 }
            state.isFlushing = !state.pending.isEmpty
            return state.isFlushing
        }
        for (write, outcome) in zip(batch, outcomes) {
            write.continuation.resume(with: outcome)
        }
        return hasMore
    }
}

import Dispatch
import Synchronization

/// Group commit: concurrent writes share one transaction, and so one fsync.
///
/// A caller appends its write to `groupCommit.pending` and, unless a flush is already scheduled, schedules one
/// on `queue`. A flush takes every pending write, runs `BEGIN IMMEDIATE`, applies each write inside its own
/// `SAVEPOINT`, and ends with one `COMMIT` (with `synchronous=FULL`, one fsync of the WAL). Only after that
/// are the callers resumed. Writes that arrive during a flush form the next batch.
///
/// The guarantee: a write's call returns normally only after the `COMMIT` of a transaction containing its row
/// succeeded, so the row is on disk. A write's own failure (a duplicate serial, a rejected join token, a value
/// SQLite refuses) is rolled back to its savepoint and thrown to that caller alone; the rest of the batch
/// commits. A failure of the transaction itself (`BEGIN` or `COMMIT` failing, or SQLite abandoning the
/// transaction after SQLITE_FULL or SQLITE_IOERR in any write) is thrown to every caller of the batch, each in
/// terms of its own write, and none of their rows is recorded.
extension SQLiteLedger {
    /// The writes waiting for the next group commit, guarded by the `groupCommit` mutex.
    struct GroupCommit: Sendable {
        /// Writes not yet taken by a flush, oldest first.
        var pending: [PendingWrite] = []
        /// Whether a flush is scheduled on `queue` or running; there is never more than one.
        var isFlushScheduled = false
        /// How many group transactions have committed.
        var commits = 0
    }

    /// One write waiting to be committed, and its caller waiting for the outcome.
    struct PendingWrite: Sendable {
        /// What the write does, as a verb phrase for error messages: "record certificate 0a1b".
        let operation: String
        /// Applies the write; runs on `queue`, inside the group transaction and a savepoint of its own.
        let apply: @Sendable (SQLiteConnection) throws -> Void
        /// Resumed once the write's outcome is final: after the COMMIT, or with the error that ended it.
        let continuation: CheckedContinuation<Void, any Error>
    }

    /// How many group transactions this ledger has committed since it was opened. With concurrent writers it
    /// grows more slowly than the number of writes; that is how tests see batching.
    package var commitCount: Int { groupCommit.withLock { $0.commits } }

    /// How many writes wait for the next group commit, not counting a batch being committed right now.
    package var pendingWriteCount: Int { groupCommit.withLock { $0.pending.count } }

    /// Test knob: holds back everything queued on this ledger's write queue (flushes, and reads other than the
    /// per-request lookups) until `resumeOperations()`,
    /// so writes started meanwhile all land in one batch. Each call must be balanced by one `resumeOperations()`.
    package func suspendOperations() { queue.suspend() }

    /// Ends one `suspendOperations()`.
    package func resumeOperations() { queue.resume() }

    /// Commits `apply` with the next group commit; returns once it is durable, or throws why it is not recorded.
    func write(_ operation: String, _ apply: @escaping @Sendable (SQLiteConnection) throws -> Void) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let mustSchedule = groupCommit.withLock { state in
                state.pending.append(PendingWrite(operation: operation, apply: apply, continuation: continuation))
                defer { state.isFlushScheduled = true }
                return !state.isFlushScheduled
            }
            if mustSchedule { queue.async { self.flush() } }
        }
    }

    /// Runs on `queue`: commits every pending write in one transaction, then resumes their callers.
    private func flush() {
        let batch = groupCommit.withLock { state in
            defer { state.pending = [] }
            return state.pending
        }
        let (committed, outcomes) = connection.withLock { commit(batch, on: $0) }
        let hasMore = groupCommit.withLock { state in
            if committed { state.commits += 1 }
            state.isFlushScheduled = !state.pending.isEmpty
            return state.isFlushScheduled
        }
        // A new queue item rather than a loop, so reads queued meanwhile get their turn between batches.
        if hasMore { queue.async { self.flush() } }
        for (write, outcome) in zip(batch, outcomes) {
            write.continuation.resume(with: outcome)
        }
    }

    /// Applies `batch` in one transaction. Returns whether it committed, and each write's outcome in order.
    private func commit(
        _ batch: [PendingWrite], on connection: SQLiteConnection
    ) -> (committed: Bool, outcomes: [Result<Void, any Error>]) {
        do {
            let outcomes = try connection.writeTransaction(operation: batch[0].operation) {
                var outcomes: [Result<Void, any Error>] = []
                for write in batch {
                    do {
                        try connection.savepoint(operation: write.operation) { try write.apply(connection) }
                        outcomes.append(.success(()))
                    } catch {
                        // Without a transaction SQLite has abandoned the batch's work: every write of it fails.
                        guard connection.isInTransaction else { throw error }
                        // Rolled back to its savepoint: this write alone failed and the others go on.
                        outcomes.append(.failure(error))
                    }
                }
                return outcomes
            }
            return (true, outcomes)
        } catch {
            let failures = batch.map { write -> Result<Void, any Error> in
                .failure((error as? LedgerError)?.reworded(for: write.operation) ?? error)
            }
            return (false, failures)
        }
    }
}

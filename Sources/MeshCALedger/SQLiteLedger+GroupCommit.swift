import Dispatch
import Synchronization

/// Group commit: concurrent writes share one transaction, and so one fsync.
///
/// A caller queues its write on `groupCommit` (``GroupCommitQueue``) and, unless a flush is already scheduled,
/// schedules one on `queue`. A flush takes every pending write, runs `BEGIN IMMEDIATE`, applies each write inside
/// its own `SAVEPOINT`, and ends with one `COMMIT` (with `synchronous=FULL`, one fsync of the WAL). Only after
/// that are the callers resumed. Writes that arrive during a flush form the next batch.
///
/// The guarantee: a write's call returns normally only after the `COMMIT` of a transaction containing its row
/// succeeded, so the row is on disk. A write's own failure (a duplicate serial, a rejected join token, a value
/// SQLite refuses) is rolled back to its savepoint and thrown to that caller alone; the rest of the batch
/// commits. A failure of the transaction itself (`BEGIN` or `COMMIT` failing, or SQLite abandoning the
/// transaction after SQLITE_FULL or SQLITE_IOERR in any write) is thrown to every caller of the batch, each in
/// terms of its own write, and none of their rows is recorded.
extension SQLiteLedger {
    /// A write of the group commit: applied on `queue`, inside the group transaction and a savepoint of its own.
    typealias ApplyWrite = @Sendable (SQLiteConnection) throws -> Void

    /// How many group transactions this ledger has committed since it was opened. With concurrent writers it
    /// grows more slowly than the number of writes; that is how tests see batching.
    package var commitCount: Int { groupCommit.commits }

    /// How many writes wait for the next group commit, not counting a batch being committed right now.
    package var pendingWriteCount: Int { groupCommit.pendingCount }

    /// Test knob: holds back everything queued on this ledger's write queue (flushes, and reads other than the
    /// per-request lookups) until `resumeOperations()`,
    /// so writes started meanwhile all land in one batch. Each call must be balanced by one `resumeOperations()`.
    package func suspendOperations() { queue.suspend() }

    /// Ends one `suspendOperations()`.
    package func resumeOperations() { queue.resume() }

    /// Commits `apply` with the next group commit; returns once it is durable, or throws why it is not recorded.
    func write(_ operation: String, _ apply: @escaping ApplyWrite) async throws {
        try await groupCommit.submit(operation, apply) { queue.async { self.flush() } }
    }

    /// Runs on `queue`: commits every pending write in one transaction, then resumes their callers.
    private func flush() {
        let batch = groupCommit.takeBatch()
        let (committed, outcomes) = connection.withLock { commit(batch, on: $0) }
        // A new queue item rather than a loop, so reads queued meanwhile get their turn between batches.
        if groupCommit.finish(batch, committed: committed, outcomes: outcomes) { queue.async { self.flush() } }
    }

    /// Applies `batch` in one transaction. Returns whether it committed, and each write's outcome in order.
    private func commit(
        _ batch: [GroupCommitQueue<ApplyWrite>.Write], on connection: SQLiteConnection
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

import Foundation
import MeshCALedger
import PostgresNIO

/// Group commit, per replica, as on SQLite (`SQLiteLedger+GroupCommit.swift`): writes that arrive while a commit is
/// in progress are committed together by the next one (at most ``batchLimit`` per transaction), in one transaction
/// (which takes the chain lock first) with a savepoint per write. A call returns only after the COMMIT of the
/// transaction holding its row (with `synchronous_commit=on`, durable on the server). A write's own failure (a
/// duplicate serial, a rejected token) is rolled back to its savepoint and thrown to that caller alone; a failure of
/// the transaction or the connection is thrown to every write of the batch, and none of them is recorded.
extension PostgresLedger {
    /// A write of the group commit: run inside the group transaction and a savepoint of its own.
    typealias ApplyWrite = @Sendable (PostgresConnection) async throws -> Void

    /// How many group transactions this ledger has committed since it was opened.
    package var groupCommitCount: Int { groupCommit.commits }

    /// How many writes wait for the next group commit, not counting a batch being committed right now.
    package var pendingWriteCount: Int { groupCommit.pendingCount }

    /// Commits `apply` with the next group commit; returns once it is committed, or throws why it is not recorded.
    func write(_ operation: String, _ apply: @escaping ApplyWrite) async throws {
        try await groupCommit.submit(operation, apply) { Task { await self.flush() } }
    }

    /// The most writes one group transaction takes. The chain lock is held for the whole transaction, and another
    /// replica's group commit waits for it within its own `answerTimeout`: a bounded batch keeps that wait short
    /// on a slow link (a write is some nine round trips), and costs one more commit per this many writes.
    static let batchLimit = 32

    /// Commits batches until no write is pending.
    private func flush() async {
        var hasMore = true
        while hasMore {
            let batch = groupCommit.takeBatch(limit: Self.batchLimit)
            let (committed, outcomes) = await commit(batch)
            hasMore = groupCommit.finish(batch, committed: committed, outcomes: outcomes)
        }
    }

    /// Applies `batch` in one transaction; whether it committed, and each write's outcome in order.
    private func commit(_ batch: [GroupCommitQueue<ApplyWrite>.Write]) async -> (committed: Bool, outcomes: [Result<Void, any Error>]) {
        let logger = self.logger
        let location = self.location
        let database = configuration.database
        let progress = LeaseProgress()
        do {
            let outcomes = try await withLease(
                batch[0].operation, answerWithin: configuration.answerTimeout, progress: progress
            ) { connection -> [Result<Void, any Error>] in
                try await connection.query("BEGIN", logger: logger)
                do {
                    try await Self.lockChain(on: connection, logger: logger)
                    var outcomes: [Result<Void, any Error>] = []
                    let head = TransactionHead()
                    for write in batch {
                        progress.mark()
                        try await connection.query("SAVEPOINT meshca_write", logger: logger)
                        do {
                            try await Self.$transactionHead.withValue(head) { try await write.apply(connection) }
                            try await connection.query("RELEASE SAVEPOINT meshca_write", logger: logger)
                            outcomes.append(.success(()))
                        } catch {
                            // A failed connection ends the batch; a refused statement ends this write alone.
                            guard Self.isStatementFailure(error) else { throw error }
                            // Its events, if any, are undone with it: the next append reads the head again.
                            head.head = nil
                            try await connection.query("ROLLBACK TO SAVEPOINT meshca_write", logger: logger)
                            try await connection.query("RELEASE SAVEPOINT meshca_write", logger: logger)
                            outcomes.append(.failure(Self.failure(error, operation: write.operation, location: location, database: database)))
                        }
                    }
                    try await connection.query("COMMIT", logger: logger)
                    return outcomes
                } catch {
                    await Self.rollBack(after: error, on: connection, logger: logger)
                    throw error
                }
            }
            return (true, outcomes)
        } catch {
            return (
                false,
                batch.map { .failure(Self.failure(error, operation: $0.operation, location: location, database: database)) }
            )
        }
    }
}

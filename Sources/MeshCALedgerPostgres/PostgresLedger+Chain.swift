import Foundation
import MeshCALedger
import PostgresNIO
import Synchronization

/// The hash chain on PostgreSQL: events appended exactly as `LedgerChain` appends them on SQLite (same encoding,
/// same hashes, computed by MeshCALedger's code), checkpoints, and verification.
extension PostgresLedger {
    /// Appends `event` after the current head, inside the caller's writing transaction (which holds the chain
    /// lock, so no other replica can append between this read of the head and the insert); on a checkpoint
    /// interval also signs a checkpoint. With `row` (an INSERT of the row `event` describes, without RETURNING),
    /// both are written by one statement, a data-modifying WITH: one round trip, and both are stored or neither.
    func append(
        _ event: LedgerChainEvent, inserting row: (sql: String, values: [SQLiteStatement.Value])? = nil,
        on connection: PostgresConnection
    ) async throws {
        let cache = Self.transactionHead
        let before = if let known = cache?.head { known } else { try await head(on: connection) }
        let link = LedgerChain.link(event, after: before)
        if let row {
            try await run("WITH inserted AS (\(row.sql)) \(LedgerChain.insertSQL)", row.values + link.values, on: connection)
        } else {
            try await run(LedgerChain.insertSQL, link.values, on: connection)
        }
        cache?.head = (link.seq, link.hash)
        if let signer, link.seq % Int64(max(configuration.checkpointInterval, 1)) == 0 {
            try await checkpointQuietly(seq: link.seq, head: link.hash, signer: signer, on: connection)
        }
    }

    /// Appends a state event holding what the row of `subject` says now (after the change, same transaction).
    func appendCurrent(
        _ kind: LedgerChainEvent.Kind, subject: String, on connection: PostgresConnection, operation: String
    ) async throws {
        guard let event = try await currentEvent(kind: kind, subject: subject, on: connection) else {
            throw LedgerChain.noRow(kind, subject: subject, operation: operation, location: location)
        }
        try await append(event, on: connection)
    }

    /// The event of `kind` about `subject` as its row holds it now (see `LedgerChainColumns.currentEvent`).
    func currentEvent(
        kind: LedgerChainEvent.Kind, subject: String, on connection: PostgresConnection
    ) async throws -> LedgerChainEvent? {
        guard let source = LedgerChainColumns.source(for: kind), let key = source.keyValue(subject) else { return nil }
        guard
            let row = try await rows(
                "SELECT \(source.columnList) FROM \(source.table) WHERE \(source.key.name) = ?", [key], on: connection
            ).first
        else { return nil }
        return source.event(kind, subject: subject, from: row)
    }

    /// Runs `update` (an UPDATE of the one row `subject` names, without RETURNING) and, when it changed the row,
    /// appends the event of `kind` holding what the row says now, taken from the UPDATE's own RETURNING clause: one
    /// round trip fewer than reading the row again. Whether the row changed.
    func update(
        _ update: String, _ values: [SQLiteStatement.Value], appending kind: LedgerChainEvent.Kind, subject: String,
        on connection: PostgresConnection, operation: String
    ) async throws -> Bool {
        guard let source = LedgerChainColumns.source(for: kind) else {
            throw LedgerChain.noRow(kind, subject: subject, operation: operation, location: location)
        }
        guard let row = try await rows(update + " RETURNING \(source.columnList)", values, on: connection).first else {
            return false
        }
        try await append(source.event(kind, subject: subject, from: row), on: connection)
        return true
    }

    /// The chain's head as the writing transaction's own appends left it, so that each append after the first in
    /// the transaction needs no query for it: the transaction holds the chain lock, so nothing else appends
    /// meanwhile. Set by `writeTransaction` and the group commit; the group commit forgets the head when a write is
    /// rolled back to its savepoint.
    @TaskLocal static var transactionHead: TransactionHead?

    /// The last event's `seq` and `hash`, or `(0, genesis)` for an empty chain.
    func head(on connection: PostgresConnection) async throws -> (seq: Int64, hash: [UInt8]) {
        guard let row = try await rows(LedgerChain.headSQL, on: connection).first
        else { return (0, LedgerChain.genesis) }
        return (row.integer(0), row.blob(1))
    }

    /// Signs and stores a checkpoint of `(eventCount, head)` inside the caller's transaction.
    func writeCheckpoint(
        eventCount: Int64, head: [UInt8], signer: any CheckpointSigner, on connection: PostgresConnection
    ) async throws -> LedgerCheckpoint {
        let createdAt = UnixTime.floor(Date())
        let headHash = Hex.encode(head)
        let signature = try signer.sign(
            LedgerCheckpoint.message(eventCount: eventCount, headHash: headHash, createdAt: createdAt))
        let keyID = signer.publicKey.id
        let id = try await rows(
            "INSERT INTO ledger_checkpoints (event_count, head_hash, created_at, key_id, signature) "
                + "VALUES (?, ?, ?, ?, ?) RETURNING id",
            [.integer(eventCount), .blob(head), .integer(createdAt), .text(keyID), .blob(signature)], on: connection
        ).first?.integer(0) ?? 0
        return LedgerCheckpoint(
            id: id, eventCount: eventCount, headHash: headHash, createdAt: UnixTime.date(createdAt), keyID: keyID,
            signature: signature)
    }

    /// An interval checkpoint in a savepoint of its own: failing to sign or store it must not fail the write that
    /// reached the interval (verification then reports the events no checkpoint covers).
    private func checkpointQuietly(
        seq: Int64, head: [UInt8], signer: any CheckpointSigner, on connection: PostgresConnection
    ) async throws {
        try await connection.query("SAVEPOINT meshca_checkpoint", logger: logger)
        do {
            _ = try await writeCheckpoint(eventCount: seq, head: head, signer: signer, on: connection)
            try await connection.query("RELEASE SAVEPOINT meshca_checkpoint", logger: logger)
        } catch {
            guard Self.isStatementFailure(error) || !(error is PSQLError) else { throw error }
            try await connection.query("ROLLBACK TO SAVEPOINT meshca_checkpoint", logger: logger)
            try await connection.query("RELEASE SAVEPOINT meshca_checkpoint", logger: logger)
            logger.warning("Skipped the ledger checkpoint at event #\(seq): \(error)")
        }
    }

    /// Signs a checkpoint of the chain's head (see `SQLiteLedger.checkpoint(signedBy:)`).
    @discardableResult
    public func checkpoint(signedBy signer: (any CheckpointSigner)?) async throws -> LedgerCheckpoint? {
        let operation = "write a ledger checkpoint"
        guard let signer = signer ?? self.signer else {
            throw LedgerError.noLedgerKey(operation: operation, location: location)
        }
        return try await writeTransaction(operation) { connection -> LedgerCheckpoint? in
            let head = try await self.head(on: connection)
            guard head.seq > 0 else { return nil }
            if let latest = try await self.rows(LedgerCheckpoint.selectSQL + " ORDER BY id DESC LIMIT 1", on: connection)
                .first.map(LedgerCheckpoint.init(row:)), latest.covers(head.seq, signedBy: signer)
            {
                return latest
            }
            return try await self.writeCheckpoint(eventCount: head.seq, head: head.hash, signer: signer, on: connection)
        }
    }

    /// Verifies the whole chain and every checkpoint with the one verifier both engines share: the tables are
    /// copied, from one consistent snapshot (a REPEATABLE READ transaction), into a temporary SQLite ledger, and
    /// `SQLiteLedger.verifyChain` checks the copy. The copy holds the same bytes (the same columns, the same
    /// order of writing), so it proves this ledger; it is deleted afterwards.
    public func verifyChain(
        publicKey: CheckpointPublicKey?, progress: (@Sendable (_ done: Int64, _ total: Int64) -> Void)?
    ) async throws -> LedgerChainReport {
        let operation = "verify the ledger's chain"
        let key = publicKey ?? signer?.publicKey
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "meshca-verify-\(UUID().uuidString)")
        do {
            try FileManager.default.createDirectory(
                at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw LedgerError(
                code: .cannotOpen,
                message: "Could not \(operation) for \(location): cannot create a temporary directory for its copy "
                    + "in \(directory.deletingLastPathComponent().path) (\(error)). Set TMPDIR to a writable directory "
                    + "with room for the ledger.")
        }
        defer { try? FileManager.default.removeItem(at: directory) }
        let copy = try SQLiteLedger(path: directory.appendingPathComponent("ledger.db").path)
        let logger = self.logger
        try await perform(operation, writing: false) { connection in
            try await connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
            do {
                for table in LedgerExport.tables {
                    let sql = PostgresSQL.translate(
                        "SELECT \(table.columns.joined(separator: ", ")) FROM \(table.name) ORDER BY \(table.order)")
                    var batch: [[SQLiteStatement.Value]] = []
                    for try await row in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger) {
                        batch.append(try PostgresSQL.values(row))
                        if batch.count == 5000 {
                            try await copy.importRows(batch, into: table)
                            batch = []
                        }
                    }
                    try await copy.importRows(batch, into: table)
                }
                try await connection.query("COMMIT", logger: logger)
            } catch {
                await Self.rollBack(after: error, on: connection, logger: logger)
                throw error
            }
        }
        return try await copy.verifyChain(publicKey: key, progress: progress)
    }

    /// Durably records a root change on the chain, by group commit.
    public func recordRootChange(
        _ action: String, subject: String, oldRoot: String, newRoot: String, at: Date, actor: String, lagging: [String]
    ) async throws {
        try await appendEvent(
            kind: .rootChange, subject: subject,
            fields: LedgerChainField.rootChange(action, oldRoot: oldRoot, newRoot: newRoot, at: at, actor: actor, lagging: lagging))
    }

    /// Durably records an event with no table row of its own (see `SQLiteLedger.appendEvent`).
    package func appendEvent(kind: LedgerChainEvent.Kind, subject: String, fields: [LedgerChainField]) async throws {
        let operation = "record \(kind) \(subject)"
        let event = try LedgerChain.standaloneEvent(kind: kind, subject: subject, fields: fields, operation: operation)
        try await write(operation) { connection in
            try await self.append(event, on: connection)
        }
    }
}

/// See ``PostgresLedger/transactionHead``: the head after the transaction's last append, nil when unknown.
final class TransactionHead: Sendable {
    private let known = Mutex<(seq: Int64, hash: [UInt8])?>(nil)

    var head: (seq: Int64, hash: [UInt8])? {
        get { known.withLock { $0 } }
        set { known.withLock { $0 = newValue } }
    }
}

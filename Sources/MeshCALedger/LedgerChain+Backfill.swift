/// Chaining rows that predate the chain.
///
/// Migration `0003_event_chain.sql` inserts one placeholder event (kind and subject only, NULL hashes) for every
/// existing row, revocation and token use, in the order they happened; SQLite cannot compute SHA-256, so the
/// hashes are filled in here, right after migrating, by every `SQLiteLedger` init. The step is idempotent: it
/// does nothing unless the chain's last event still has no hash, and it re-checks that inside its own write
/// transaction, so when several processes open a freshly migrated ledger at once, one chains and the others see
/// it done. Until it has run, nothing can be appended (`LedgerChain.head` refuses an unchained head).
///
/// The content of a backfilled event is what its row holds at that moment, exactly as a new event would be
/// computed; history from before the upgrade is therefore attested from the upgrade on, not before it.
extension LedgerChain {
    /// Fills in the hashes of the placeholder events left by migration 3, in `seq` order, in one transaction;
    /// tells `progress` (chained, to chain) every 1000 events and at the end.
    static func chainPlaceholders(
        on connection: SQLiteConnection, progress: (@Sendable (_ done: Int64, _ total: Int64) -> Void)? = nil
    ) throws {
        let operation = "chain the ledger's existing rows"
        guard try hasChainTable(on: connection), try hasUnchainedHead(on: connection, operation: operation) else {
            return
        }
        try connection.writeTransaction(operation: operation) {
            // Another process may have chained them while this one waited for the write lock.
            guard try hasUnchainedHead(on: connection, operation: operation) else { return }
            let placeholders = try connection.prepare(
                "SELECT seq, kind, subject FROM ledger_events WHERE hash IS NULL ORDER BY seq", operation: operation
            ).rows { (seq: $0.integer(0), kind: LedgerChainEvent.Kind($0.text(1)), subject: $0.text(2)) }
            let chained = try connection.prepare(
                "SELECT seq, hash FROM ledger_events WHERE hash IS NOT NULL ORDER BY seq DESC LIMIT 1",
                operation: operation)
            var previous = try chained.step() ? chained.blob(1) : genesis
            let total = Int64(placeholders.count)
            for (index, placeholder) in placeholders.enumerated() {
                if index % 1000 == 0 { progress?(Int64(index), total) }
                guard
                    let event = try LedgerChainColumns.currentEvent(
                        kind: placeholder.kind, subject: placeholder.subject, on: connection, operation: operation)
                else {
                    throw LedgerError(
                        code: .other,
                        message: "Could not \(operation) in \(connection.path): event #\(placeholder.seq) stands for "
                            + "\(placeholder.kind) '\(placeholder.subject)', but that row is gone. The ledger was "
                            + "edited during the upgrade; restore it from the backup taken before upgrading meshca.")
                }
                let content = event.content
                let contentSHA256 = LedgerChainField.sha256(content)
                let hash = link(
                    seq: placeholder.seq, previous: previous, kind: event.kind.rawValue, subject: event.subject,
                    contentSHA256: contentSHA256)
                try connection.prepare(
                    "UPDATE ledger_events SET payload = ?, content_sha256 = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                    [
                        event.kind.isRowBacked ? .null : .blob(content), .blob(contentSHA256), .blob(previous),
                        .blob(hash), .integer(placeholder.seq),
                    ],
                    operation: operation
                ).run()
                previous = hash
            }
            progress?(total, total)
        }
    }

    /// Whether the schema has `ledger_events` (ledgers opened with a migration list older than version 3 lack it).
    static func hasChainTable(on connection: SQLiteConnection) throws -> Bool {
        try connection.prepare(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ledger_events'",
            operation: "read the ledger's schema"
        ).step()
    }

    /// Whether the last event still waits for its hash: placeholders are always the tail of the chain, because
    /// nothing is appended before they are chained.
    private static func hasUnchainedHead(on connection: SQLiteConnection, operation: String) throws -> Bool {
        let statement = try connection.prepare(
            "SELECT hash IS NULL FROM ledger_events ORDER BY seq DESC LIMIT 1", operation: operation)
        return try statement.step() && statement.integer(0) == 1
    }
}

import Foundation

/// Sizes and counts of a ledger, cheap enough to read every few seconds (no table scan): what the daemon's
/// ledger gauges show, and its proof that the ledger can still be read.
public struct LedgerStatistics: Sendable, Equatable {
    /// The main database file in bytes (page count times page size).
    public let databaseBytes: Int64
    /// The `-wal` file in bytes, or 0 when there is none.
    public let walBytes: Int64
    /// Events on the hash chain (the highest sequence number; the chain has no gaps).
    public let eventCount: Int64
    /// When the newest signed checkpoint was made, or nil when there is none yet.
    public let newestCheckpointAt: Date?

    /// Creates the figures; a ledger's `statistics()` is the producer outside tests.
    package init(databaseBytes: Int64, walBytes: Int64, eventCount: Int64, newestCheckpointAt: Date?) {
        self.databaseBytes = databaseBytes
        self.walBytes = walBytes
        self.eventCount = eventCount
        self.newestCheckpointAt = newestCheckpointAt
    }
}

extension SQLiteLedger {
    /// Reads ``LedgerStatistics`` on the read connection, so a group commit in progress does not hold it up.
    ///
    /// Throws `LedgerError` when the database cannot be read.
    public func statistics() async throws -> LedgerStatistics {
        let chained = chain.isEnabled
        let (bytes, events, checkpoint) = try await performRead { connection in
            let operation = "read the ledger's size and event count"
            let size = try connection.prepare(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()", operation: operation)
            let bytes = try size.step() ? size.integer(0) : 0
            guard chained else { return (bytes, Int64(0), Int64?.none) }
            let events = try connection.prepare("SELECT coalesce(max(seq), 0) FROM ledger_events", operation: operation)
            let count = try events.step() ? events.integer(0) : 0
            let newest = try connection.prepare("SELECT created_at FROM ledger_checkpoints ORDER BY id DESC LIMIT 1", operation: operation)
            return (bytes, count, try newest.step() ? newest.optionalInteger(0) : nil)
        }
        let wal = (try? FileManager.default.attributesOfItem(atPath: path + "-wal"))?[.size] as? NSNumber
        return LedgerStatistics(
            databaseBytes: bytes, walBytes: wal?.int64Value ?? 0, eventCount: events,
            newestCheckpointAt: checkpoint.map(UnixTime.date))
    }
}

import Foundation

/// How a `RejectionRecord` maps onto a row of the `rejections` table (see `0001_create_ledger.sql`,
/// `0002_join_tokens_and_peers.sql`).
extension RejectionRecord {
    /// Inserts one rejection; `id` is left to SQLite (INTEGER PRIMARY KEY is the rowid).
    package static let insertSQL = """
        INSERT INTO rejections (occurred_at, requester, auth_method, requested_identity, reason_code, message, peer)
        VALUES (?, ?, ?, ?, ?, ?, ?)
        """

    /// The values for `insertSQL`; `id` is deliberately not among them.
    package func parameters() -> [SQLiteStatement.Value] {
        [
            .integer(UnixTime.floor(occurredAt)), .text(requester), .text(authMethod),
            .text(requestedIdentity), .text(reasonCode), .text(message), .text(peer),
        ]
    }

    /// The SELECT for `IssuanceLedger.rejections(since:limit:)`. With a `limit` it selects the newest rows
    /// newest-first, so the caller reverses them to return oldest first.
    package static func selectStatement(since: Date?, limit: Int?) -> (sql: String, parameters: [SQLiteStatement.Value]) {
        var sql = "SELECT id, occurred_at, requester, auth_method, requested_identity, reason_code, message, peer "
            + "FROM rejections"
        var parameters: [SQLiteStatement.Value] = []
        if let since {
            // occurred_at is whole seconds, so "at or after a fractional instant" starts at its ceiling.
            sql += " WHERE occurred_at >= ?"
            parameters.append(.integer(UnixTime.ceiling(since)))
        }
        if let limit {
            sql += " ORDER BY occurred_at DESC, id DESC LIMIT ?"
            parameters.append(.integer(Int64(limit)))
        } else {
            sql += " ORDER BY occurred_at, id"
        }
        return (sql, parameters)
    }

    /// Reads the current row of a statement built by `selectStatement`.
    package init(row: some LedgerRow) {
        self.init(
            id: row.integer(0), occurredAt: UnixTime.date(row.integer(1)), requester: row.text(2),
            authMethod: row.text(3), requestedIdentity: row.text(4), reasonCode: row.text(5), message: row.text(6),
            peer: row.text(7))
    }
}

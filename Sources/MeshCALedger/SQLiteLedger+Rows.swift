/// Whole tables as rows of values, for moving a ledger between engines: `PostgresLedger` verifies its chain on an
/// SQLite copy of its tables (so one verifier proves both engines), and `ledger migrate` copies an SQLite ledger
/// into PostgreSQL.
extension SQLiteLedger {
    /// The tables a ledger's content lives in, in an order that can be inserted into an empty ledger, each with its
    /// columns (every column of the current schema, in the order they are copied) and its ORDER BY (the order the
    /// rows were written in, which the copy keeps).
    package static let copiedTables: [(table: String, columns: [String], order: String)] = [
        ("issuances", IssuanceRecord.columns, "rowid"),
        (
            "rejections",
            ["id", "occurred_at", "requester", "auth_method", "requested_identity", "reason_code", "message", "peer"],
            "id"
        ),
        ("join_tokens", JoinTokenRecord.columns, "rowid"),
        ("ledger_events", ["seq", "kind", "subject", "payload", "content_sha256", "prev_hash", "hash"], "seq"),
        ("ledger_checkpoints", ["id", "event_count", "head_hash", "created_at", "key_id", "signature"], "id"),
    ]

    /// Inserts `rows` (values in `columns` order) into `table` as they are, in one transaction, without touching the
    /// chain: the rows carry their own events. Only for filling a fresh ledger with a copy.
    package func insertRows(into table: String, columns: [String], rows: [[SQLiteStatement.Value]]) async throws {
        guard !rows.isEmpty else { return }
        let operation = "copy rows into \(table)"
        let sql = "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES "
            + "(\(columns.map { _ in "?" }.joined(separator: ", ")))"
        try await perform { connection in
            try connection.writeTransaction(operation: operation) {
                for row in rows { try connection.prepare(sql, row, operation: operation).run() }
            }
        }
    }

    /// Every row of `table` (values in `columns` order) in `order`, `limit` rows after the first `offset`.
    package func rows(
        of table: String, columns: [String], order: String, offset: Int, limit: Int
    ) async throws -> [[SQLiteStatement.Value]] {
        let sql = "SELECT \(columns.joined(separator: ", ")) FROM \(table) ORDER BY \(order) LIMIT ? OFFSET ?"
        let count = columns.count
        return try await perform { connection in
            try connection.prepare(
                sql, [.integer(Int64(limit)), .integer(Int64(offset))], operation: "read the rows of \(table)"
            ).rows { row in (0..<count).map { row.value(Int32($0)) } }
        }
    }
}

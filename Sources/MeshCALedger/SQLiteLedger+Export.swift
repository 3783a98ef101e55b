import CSQLite
import Foundation

/// A ledger's tables as rows of typed values, for moving a ledger between engines unchanged (the hash chain covers
/// these values, so a copy that changed one would not verify): `meshca ledger migrate` copies an SQLite ledger into
/// PostgreSQL, and `PostgresLedger` verifies its chain on an SQLite copy of its tables, so one verifier proves both.
package enum LedgerExport {
    /// One table, the columns a copy carries, and the order its rows were written in (which a copy keeps).
    package struct Table: Sendable, Equatable {
        /// The table's name, the same on every engine.
        package let name: String
        /// Every column, in the order each exported row holds them.
        package let columns: [String]
        /// The ORDER BY that lists the rows in the order they were written (SQLite's `rowid`; PostgreSQL's
        /// `row_id` stands in for it).
        package let order: String
    }

    /// Every table of the ledger but `schema_migrations`, in an order that satisfies every reference.
    package static let tables: [Table] = [
        Table(name: "issuances", columns: IssuanceRecord.columns, order: "rowid"),
        Table(
            name: "rejections",
            columns: ["id", "occurred_at", "requester", "auth_method", "requested_identity", "reason_code", "message", "peer"],
            order: "id"),
        Table(name: "join_tokens", columns: JoinTokenRecord.columns, order: "rowid"),
        Table(
            name: "ledger_events", columns: ["seq", "kind", "subject", "payload", "content_sha256", "prev_hash", "hash"],
            order: "seq"),
        Table(
            name: "ledger_checkpoints", columns: ["id", "event_count", "head_hash", "created_at", "key_id", "signature"],
            order: "id"),
    ]

    /// Rows of one table, and where the next batch starts.
    package struct Batch: Sendable {
        /// The rows, each holding ``Table/columns`` in order.
        package let rows: [[SQLiteStatement.Value]]
        /// Pass to the next call; nil when the table has no more rows.
        package let next: Int64?
    }

    /// `INSERT INTO table (columns) VALUES (?, ...), ...` for `rows` rows, with SQLite's placeholders.
    package static func insertSQL(_ table: Table, rows: Int) -> String {
        let row = "(" + Array(repeating: "?", count: table.columns.count).joined(separator: ", ") + ")"
        return "INSERT INTO \(table.name) (\(table.columns.joined(separator: ", "))) VALUES "
            + Array(repeating: row, count: rows).joined(separator: ", ")
    }
}

/// A ledger that can take a verbatim copy of another ledger's tables (`meshca ledger migrate`): ids, sequence
/// numbers, hashes and checkpoints exactly as they were, so the copy's hash chain verifies as the original did.
package protocol LedgerImporting: LedgerStore {
    /// Whether no table holds a row (a copy goes only into an empty ledger).
    func isEmpty() async throws -> Bool

    /// Inserts `rows` (each holding `table`'s columns in order) exactly as given, in one transaction, without
    /// touching the chain: the rows carry their own events.
    func importRows(_ rows: [[SQLiteStatement.Value]], into table: LedgerExport.Table) async throws

    /// Readies the copy for new writes once every table is in (identity sequences past the copied ids).
    func finishImport() async throws
}

extension SQLiteLedger: LedgerImporting {
    /// How many rows `table` holds.
    package func count(of table: LedgerExport.Table) async throws -> Int64 {
        try await perform { connection in
            let statement = try connection.prepare("SELECT count(*) FROM \(table.name)", operation: "count \(table.name)")
            return try statement.step() ? statement.integer(0) : 0
        }
    }

    /// Up to `limit` rows of `table` after row `after` (0 for the first batch), in the order they were inserted
    /// (rowid, which is the sequence number of `ledger_events`), each value with the type SQLite stores.
    package func export(_ table: LedgerExport.Table, after: Int64, limit: Int) async throws -> LedgerExport.Batch {
        let sql = "SELECT rowid, \(table.columns.joined(separator: ", ")) FROM \(table.name) WHERE rowid > ? ORDER BY rowid LIMIT ?"
        return try await perform { connection in
            let statement = try connection.prepare(sql, [.integer(after), .integer(Int64(limit))], operation: "read \(table.name)")
            var rows: [[SQLiteStatement.Value]] = []
            var last = after
            while try statement.step() {
                last = statement.integer(0)
                rows.append((1...Int32(table.columns.count)).map(statement.value))
            }
            return LedgerExport.Batch(rows: rows, next: rows.count == limit ? last : nil)
        }
    }

    package func isEmpty() async throws -> Bool {
        for table in LedgerExport.tables where try await count(of: table) > 0 { return false }
        return true
    }

    package func importRows(_ rows: [[SQLiteStatement.Value]], into table: LedgerExport.Table) async throws {
        guard !rows.isEmpty else { return }
        let operation = "copy rows into \(table.name)"
        let sql = LedgerExport.insertSQL(table, rows: 1)
        try await perform { connection in
            try connection.writeTransaction(operation: operation) {
                for row in rows { try connection.prepare(sql, row, operation: operation).run() }
            }
        }
    }

    /// Nothing to do: SQLite's rowids continue after the largest one by themselves.
    package func finishImport() async throws {}
}

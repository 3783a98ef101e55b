import CSQLite
import Foundation

/// A ledger's tables as rows of typed values: what `meshca ledger migrate` copies from an SQLite ledger into
/// another engine, unchanged (the hash chain covers these values, so a copy that changed one would not verify).
package enum LedgerExport {
    /// One table and the columns a copy carries, in the order a copy inserts them (schema version 6).
    package struct Table: Sendable, Equatable {
        /// The table's name, the same on every engine.
        package let name: String
        /// Every column, in the order each exported row holds them.
        package let columns: [String]
    }

    /// Every table of the ledger but `schema_migrations`, in an order that satisfies every reference.
    package static let tables: [Table] = [
        Table(
            name: "issuances",
            columns: [
                "serial", "spiffe_id", "trust_domain", "namespace", "service_account", "sans", "not_before", "not_after",
                "issued_at", "requested_ttl_seconds", "granted_ttl_seconds", "key_type", "public_key_sha256", "csr_sha256",
                "certificate_der", "issuer_fingerprint", "requester", "auth_method", "revoked_at", "revocation_reason", "peer",
            ]),
        Table(
            name: "rejections",
            columns: ["id", "occurred_at", "requester", "auth_method", "requested_identity", "reason_code", "message", "peer"]),
        Table(
            name: "join_tokens",
            columns: [
                "id", "secret_sha256", "namespace", "service_account", "created_at", "expires_at", "max_uses", "uses",
                "revoked_at", "created_by", "last_used_at", "pinned_root_sha256",
            ]),
        Table(name: "ledger_events", columns: ["seq", "kind", "subject", "payload", "content_sha256", "prev_hash", "hash"]),
        Table(name: "ledger_checkpoints", columns: ["id", "event_count", "head_hash", "created_at", "key_id", "signature"]),
    ]

    /// Rows of one table, and where the next batch starts.
    package struct Batch: Sendable {
        /// The rows, each holding ``Table/columns`` in order.
        package let rows: [[SQLiteStatement.Value]]
        /// Pass to the next call; nil when the table has no more rows.
        package let next: Int64?
    }
}

extension SQLiteLedger {
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
}

/// A ledger that can take a verbatim copy of another ledger's tables (`meshca ledger migrate`): ids, sequence
/// numbers, hashes and checkpoints exactly as they were, so the copy's hash chain verifies as the original did.
package protocol LedgerImporting: LedgerStore {
    /// Whether no table holds a row (a copy goes only into an empty ledger).
    func isEmpty() async throws -> Bool

    /// Inserts `rows` (each holding `table`'s columns in order) exactly as given, in one transaction.
    func importRows(_ rows: [[SQLiteStatement.Value]], into table: LedgerExport.Table) async throws

    /// Readies the copy for new writes once every table is in (identity sequences past the copied ids).
    func finishImport() async throws
}

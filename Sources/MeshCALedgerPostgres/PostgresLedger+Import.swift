import MeshCALedger
import PostgresNIO

/// `meshca ledger migrate` into PostgreSQL: the SQLite ledger's rows inserted as they are (ids, sequence numbers,
/// hashes and checkpoints), so the copy's chain verifies as the original did.
extension PostgresLedger: LedgerImporting {
    package func isEmpty() async throws -> Bool {
        let exists = LedgerExport.tables.map { "EXISTS (SELECT 1 FROM \($0.name))" }.joined(separator: " OR ")
        return try await read("check that the ledger is empty") { connection in
            try await self.rows("SELECT CASE WHEN \(exists) THEN 0 ELSE 1 END", on: connection).first?.integer(0) == 1
        }
    }

    /// Inserts `rows` in one transaction holding the chain lock (so no replica appends in between), several rows
    /// per statement. `row_id` is left to its identity, which numbers the rows in the order they come, as the
    /// source's rowids did.
    package func importRows(_ rows: [[SQLiteStatement.Value]], into table: LedgerExport.Table) async throws {
        guard !rows.isEmpty else { return }
        // PostgreSQL takes at most 65,535 parameters per statement.
        let perStatement = max(1, 30_000 / max(table.columns.count, 1))
        try await writeTransaction("copy rows into \(table.name)") { connection in
            var start = 0
            while start < rows.count {
                let chunk = rows[start..<min(start + perStatement, rows.count)]
                try await self.run(
                    LedgerExport.insertSQL(table, rows: chunk.count), chunk.flatMap { $0 }, on: connection)
                start += chunk.count
            }
        }
    }

    /// Moves the identity sequences of the columns the copy set explicitly (`rejections.id`,
    /// `ledger_checkpoints.id`) past the largest copied value, so the next rejection or checkpoint gets a new id.
    package func finishImport() async throws {
        try await writeTransaction("finish the copy") { connection in
            for table in ["rejections", "ledger_checkpoints"] {
                try await self.run(
                    "SELECT setval(pg_get_serial_sequence('\(table)', 'id'), coalesce(max(id), 0) + 1, false) FROM \(table)",
                    on: connection)
            }
        }
    }
}

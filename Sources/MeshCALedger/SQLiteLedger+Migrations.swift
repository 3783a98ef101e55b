import CSQLite
import Foundation
import MeshCAMigrations

/// Schema migrations: bring a ledger file up to the newest schema this build knows, exactly once, even when
/// several processes open the same new file at the same moment.
extension SQLiteLedger {
    private static let createMigrationsTable = """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            file_name  TEXT    NOT NULL,
            applied_at INTEGER NOT NULL
        ) STRICT
        """

    /// Applies each migration newer than the file's version, one `BEGIN IMMEDIATE` transaction per migration.
    ///
    /// The version is re-read inside every transaction because another process may have migrated while this
    /// one waited for the write lock; whoever gets the lock first applies a step, the other then sees it done.
    static func migrate(_ connection: SQLiteConnection, to migrations: [LedgerMigration]) throws {
        let latest = migrations.last?.version ?? 0
        // Up to date is the common case; checking it without the write lock lets a read-only process open
        // a ledger while a long write is in progress.
        if let current = try appliedVersion(connection), current >= latest {
            try refuseNewer(current, latest: latest, path: connection.path)
            return
        }
        let operation = "migrate the ledger"
        while true {
            let applied = try connection.writeTransaction(operation: operation) { () throws -> Bool in
                let current = try appliedVersion(connection) ?? prepareNewLedger(connection)
                try refuseNewer(current, latest: latest, path: connection.path)
                guard let next = migrations.first(where: { $0.version > current }) else { return false }
                try apply(next, over: current, on: connection)
                return true
            }
            if !applied { return }
        }
    }

    /// The highest recorded migration, or nil when the file has no `schema_migrations` table yet.
    static func appliedVersion(_ connection: SQLiteConnection) throws -> Int? {
        let operation = "read the ledger's schema version"
        let table = try connection.prepare(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'", operation: operation)
        guard try table.step() else { return nil }
        let version = try connection.prepare("SELECT coalesce(max(version), 0) FROM schema_migrations", operation: operation)
        return try version.step() ? Int(version.integer(0)) : 0
    }

    /// Creates `schema_migrations` in an empty database; refuses a database that already holds other tables,
    /// because it belongs to some other program and meshca must not write into it. Returns version 0.
    private static func prepareNewLedger(_ connection: SQLiteConnection) throws -> Int {
        let operation = "create the ledger"
        let tables = try connection.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' LIMIT 1",
            operation: operation)
        if try tables.step() {
            throw LedgerError(
                code: .notALedger,
                message: "Could not open the ledger: \(connection.path) is an SQLite database but not a meshca "
                    + "ledger (it has a table '\(tables.text(0))' and no schema_migrations table). Point meshca at "
                    + "a new ledger path, or move this file aside.")
        }
        try connection.execute(createMigrationsTable, operation: operation)
        return 0
    }

    private static func apply(_ migration: LedgerMigration, over current: Int, on connection: SQLiteConnection) throws {
        let operation = "apply migration \(migration.fileName)"
        let resultCode = sqlite3_exec(connection.handle, migration.sql, nil, nil, nil)
        if resultCode != SQLITE_OK {
            let error = connection.failure(resultCode, operation: operation)
            // Environmental failures (full disk, lock, read-only) keep their own, more actionable code.
            guard error.code == .other else { throw error }
            throw migrationFailed(migration, current: current, path: connection.path, detail: connection.lastMessage)
        }
        // A file that says COMMIT or ROLLBACK would break the one-transaction-per-migration guarantee.
        guard connection.isInTransaction else {
            throw migrationFailed(
                migration, current: current, path: connection.path, detail: "the file ends the transaction itself")
        }
        try connection.prepare(
            "INSERT INTO schema_migrations (version, file_name, applied_at) VALUES (?, ?, ?)",
            [.integer(Int64(migration.version)), .text(migration.fileName), .integer(UnixTime.floor(Date()))],
            operation: operation
        ).run()
    }

    private static func migrationFailed(_ migration: LedgerMigration, current: Int, path: String, detail: String) -> LedgerError {
        LedgerError(
            code: .migrationFailed,
            message: "Could not migrate the ledger at \(path): \(migration.fileName) failed (sqlite: \(detail)). "
                + "It was rolled back, so the ledger is still at schema version \(current). Keep running the "
                + "previous meshca and report this message to the meshca maintainers.")
    }

    private static func refuseNewer(_ current: Int, latest: Int, path: String) throws {
        guard current > latest else { return }
        throw LedgerError(
            code: .newerSchema,
            message: "The ledger at \(path) has schema version \(current), but this meshca understands up to "
                + "\(latest). It was written by a newer meshca; upgrade meshca (do not downgrade a ledger).")
    }
}

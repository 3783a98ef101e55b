import CSQLite
import Foundation
import MeshCAPlatform

/// One open `sqlite3*` handle configured for durability, plus the error mapping every call shares.
///
/// Not thread-safe on its own (it is opened with SQLITE_OPEN_NOMUTEX): `SQLiteLedger` keeps it inside a
/// `Mutex`, so exactly one thread uses it at a time.
final class SQLiteConnection {
    /// The ledger file, as given by the caller; every error message names it.
    let path: String
    /// How long a write waits for another connection's lock before failing with `.locked`.
    let busyTimeout: Duration
    /// The raw handle; valid until deinit.
    let handle: OpaquePointer
    /// Compiled statements not in use, by SQL text, so the statements every issuance runs (the insert, the chain's
    /// head and event insert) are compiled once per connection instead of once per call. A statement is taken out
    /// while in use and put back reset, with its bindings cleared; see `SQLiteStatement`.
    private var idleStatements: [String: OpaquePointer] = [:]
    /// At most this many idle statements are kept (the SQL of filtered queries varies).
    private static let idleStatementLimit = 64

    /// Opens (creating with mode 0600 when absent) the database at `path` and configures the connection:
    /// WAL journal, synchronous=FULL, foreign keys, busy timeout, and the optional page limit.
    init(path: String, busyTimeout: Duration, maxPageCount: Int?) throws {
        Self.createPrivately(path)
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let resultCode = sqlite3_open_v2(path, &handle, flags, nil)
        guard resultCode == SQLITE_OK, let handle else {
            // sqlite3_open_v2 usually returns a handle even when it fails; it carries the message and must be closed.
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(resultCode))
            sqlite3_close_v2(handle)
            throw LedgerError.sqlite(
                resultCode, sqliteMessage: message, path: path, operation: "open the ledger", busyTimeout: busyTimeout)
        }
        self.path = path
        self.busyTimeout = busyTimeout
        self.handle = handle
        try configure(maxPageCount: maxPageCount)
    }

    deinit {
        for statement in idleStatements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(handle)
    }

    /// A compiled statement for `sql` that no one is using, or nil; the caller owns it until `returnStatement`.
    func takeIdleStatement(_ sql: String) -> OpaquePointer? {
        idleStatements.removeValue(forKey: sql)
    }

    /// Takes back a statement a `SQLiteStatement` is done with: reset (releasing any read it held) and kept for
    /// the next use of the same SQL, or finalized when one is already kept or the cache is full.
    func returnStatement(_ sql: String, _ statement: OpaquePointer) {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
        if idleStatements[sql] == nil && idleStatements.count < Self.idleStatementLimit {
            idleStatements[sql] = statement
        } else {
            sqlite3_finalize(statement)
        }
    }

    /// Runs SQL that returns no rows and has no parameters (PRAGMAs, BEGIN, COMMIT).
    func execute(_ sql: String, operation: String) throws {
        let resultCode = sqlite3_exec(handle, sql, nil, nil, nil)
        guard resultCode == SQLITE_OK else { throw failure(resultCode, operation: operation) }
    }

    /// Compiles `sql` and binds `parameters`.
    func prepare(_ sql: String, _ parameters: [SQLiteStatement.Value] = [], operation: String) throws -> SQLiteStatement {
        let statement = try SQLiteStatement(sql, on: self, operation: operation)
        try statement.bind(parameters)
        return statement
    }

    /// Runs `body` inside `BEGIN IMMEDIATE ... COMMIT`, rolling back when anything throws.
    ///
    /// IMMEDIATE takes the write lock up front (waiting up to `busyTimeout`), so a transaction never has to
    /// upgrade a read lock to a write lock, which SQLite cannot wait for and would fail at once with BUSY.
    func writeTransaction<Result>(operation: String, _ body: () throws -> Result) throws -> Result {
        try execute("BEGIN IMMEDIATE", operation: operation)
        do {
            let result = try body()
            try execute("COMMIT", operation: operation)
            return result
        } catch {
            // After some errors (SQLITE_FULL, SQLITE_IOERR) SQLite has already rolled back on its own;
            // a second ROLLBACK would only replace the useful error message with "no transaction is active".
            if isInTransaction {
                sqlite3_exec(handle, "ROLLBACK", nil, nil, nil)
            }
            throw error
        }
    }

    /// Runs `body` inside `SAVEPOINT write ... RELEASE write`, within the transaction that is already open, so that
    /// a throwing `body` undoes only its own changes and the transaction can go on with other work.
    ///
    /// Some errors (SQLITE_FULL, SQLITE_IOERR) make SQLite roll back the whole transaction itself; then there is
    /// no savepoint left to undo, and `isInTransaction` is false when this throws.
    func savepoint(operation: String, _ body: () throws -> Void) throws {
        try execute("SAVEPOINT write", operation: operation)
        do {
            try body()
            try execute("RELEASE write", operation: operation)
        } catch {
            if isInTransaction, sqlite3_exec(handle, "ROLLBACK TO write; RELEASE write", nil, nil, nil) != SQLITE_OK {
                // Left in place, this write's partial changes would be committed with the others' work;
                // giving up the whole transaction is the only safe way out.
                sqlite3_exec(handle, "ROLLBACK", nil, nil, nil)
            }
            throw error
        }
    }

    /// How many rows the most recent INSERT, UPDATE or DELETE on this connection changed.
    var changes: Int { Int(sqlite3_changes64(handle)) }

    /// The error for `resultCode`, with this connection's latest SQLite message.
    func failure(_ resultCode: Int32, operation: String) -> LedgerError {
        LedgerError.sqlite(
            sqlite3_extended_errcode(handle), sqliteMessage: lastMessage, path: path, operation: operation,
            busyTimeout: busyTimeout)
    }

    /// SQLite's text for the most recent failed call on this connection.
    var lastMessage: String { String(cString: sqlite3_errmsg(handle)) }

    /// How long SQLite waits for a lock on this connection from now on (`busyTimeout` is what it was opened with).
    func waitForLocks(up to: Duration) {
        let milliseconds = to.components.seconds * 1000 + to.components.attoseconds / 1_000_000_000_000_000
        sqlite3_busy_timeout(handle, Int32(clamping: milliseconds))
    }

    /// Whether a transaction is open; false again after COMMIT, ROLLBACK, or SQLite's own rollback.
    var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    private func configure(maxPageCount: Int?) throws {
        let operation = "open the ledger"
        sqlite3_extended_result_codes(handle, 1)
        waitForLocks(up: busyTimeout)
        // The first statement reads the file header, so a garbage file fails here with SQLITE_NOTADB.
        // Switching a brand-new file to WAL takes an exclusive lock for which SQLite may answer BUSY at once,
        // without its busy handler, when several processes create the ledger at the same moment: retried here
        // for up to the busy timeout, as any other wait for a lock.
        let deadline = ContinuousClock.now + busyTimeout
        var mode = ""
        while true {
            do {
                let journal = try prepare("PRAGMA journal_mode=WAL", operation: operation)
                mode = try journal.step() ? journal.text(0).lowercased() : ""
                break
            } catch let error as LedgerError where error.code == .locked && ContinuousClock.now < deadline {
                usleep(10_000)
            }
        }
        guard mode == "wal" else {
            throw LedgerError(
                code: .other,
                message: "Could not open the ledger: \(path) stayed in journal mode '\(mode)' instead of 'wal'. "
                    + "WAL needs a local filesystem with shared memory; move the ledger off network storage and retry.")
        }
        try execute("PRAGMA synchronous=FULL", operation: operation)
        try execute("PRAGMA foreign_keys=ON", operation: operation)
        if let maxPageCount {
            // PRAGMA arguments cannot be bound; interpolating an Int is safe because it cannot carry SQL.
            try execute("PRAGMA max_page_count=\(maxPageCount)", operation: operation)
        }
    }

    /// Creates `path` with mode 0600 unless it exists, before SQLite can create it with its default 0644.
    ///
    /// O_EXCL makes this safe against a second process doing the same at the same moment. SQLite gives the
    /// -wal and -shm files the main file's mode, so they are private too. Any failure (a missing directory)
    /// is left for sqlite3_open_v2 to report with the ledger's own error message.
    private static func createPrivately(_ path: String) {
        let descriptor = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if descriptor >= 0 {
            // The umask may have removed bits but never adds any; fchmod makes the mode exactly 0600.
            fchmod(descriptor, 0o600)
            close(descriptor)
        }
    }
}

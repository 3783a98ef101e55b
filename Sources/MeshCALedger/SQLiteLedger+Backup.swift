import CSQLite
import Foundation
import Synchronization
import MeshCAPlatform

extension SQLiteLedger {
    /// Copies the ledger at `source` into a new file at `destination` with SQLite's online backup API
    /// (`sqlite3_backup_init/step/finish`), while other processes (a running `meshca serve`) keep writing to it.
    ///
    /// The copy is one consistent snapshot: every page is copied in a single step inside one read transaction, so
    /// it holds exactly the transactions committed when the step began, whatever is in the `-wal` file. Writers
    /// are not blocked (WAL lets them commit while the snapshot is read). A file copy of a live WAL database would
    /// instead mix pages from before and after concurrent commits, or miss commits still in the `-wal` file.
    ///
    /// `destination` must not exist; it is created with mode 0600, written with `synchronous=FULL` and holds no
    /// `-wal` file afterwards (the copy keeps the source's WAL mode, taken up by the next open). On failure it
    /// is removed. Throws `LedgerError` (`.locked` when the source stays locked longer than `busyTimeout`,
    /// `.cannotOpen`, `.diskFull`, `.notALedger`, ...).
    public static func backUp(ledgerAt source: String, to destination: String, busyTimeout: Duration = .seconds(10)) throws {
        guard FileManager.default.fileExists(atPath: source) else {
            throw LedgerError(
                code: .cannotOpen,
                message: "Could not back up the ledger: \(source) does not exist. Check the state directory's path.")
        }
        let operation = "back up the ledger to \(destination)"
        let descriptor = open(destination, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw LedgerError(
                code: .cannotOpen,
                message: "Could not \(operation): creating it failed (\(String(cString: strerror(errno)))). "
                    + "The destination must be a new file in a writable directory.")
        }
        fchmod(descriptor, 0o600)
        _ = Glibc.close(descriptor)
        var finished = false
        defer {
            if !finished {
                unlink(destination)
                unlink(destination + "-journal")
            }
        }
        // The source through the ledger's own connection code (busy timeout, error mapping); it never creates
        // the file because it exists (checked above).
        let from = try SQLiteConnection(path: source, busyTimeout: busyTimeout, maxPageCount: nil)
        // The destination in SQLite's default rollback mode, so its page size is still unset when the backup
        // gives it the source's.
        var handle: OpaquePointer?
        let opened = sqlite3_open_v2(destination, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil)
        defer { sqlite3_close_v2(handle) }
        guard opened == SQLITE_OK, let to = handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(opened))
            throw LedgerError.sqlite(
                opened, sqliteMessage: message, path: destination, operation: operation, busyTimeout: busyTimeout)
        }
        func failure(_ code: Int32) -> LedgerError {
            LedgerError.sqlite(
                code, sqliteMessage: String(cString: sqlite3_errmsg(to)), path: destination, operation: operation,
                busyTimeout: busyTimeout)
        }
        sqlite3_extended_result_codes(to, 1)
        let synchronous = sqlite3_exec(to, "PRAGMA synchronous=FULL", nil, nil, nil)
        guard synchronous == SQLITE_OK else { throw failure(synchronous) }
        guard let backup = sqlite3_backup_init(to, "main", from.handle, "main") else {
            throw failure(sqlite3_extended_errcode(to))
        }
        // -1: all pages in one step, so the copy is one snapshot. BUSY and LOCKED (a checkpoint or recovery
        // holding a lock for a moment) are retried until the busy timeout.
        let deadline = ContinuousClock.now + busyTimeout
        var step: Int32
        repeat {
            step = sqlite3_backup_step(backup, -1)
            let retry = (step & 0xff == SQLITE_BUSY || step & 0xff == SQLITE_LOCKED) && ContinuousClock.now < deadline
            if !retry { break }
            usleep(10_000)
        } while true
        let finish = sqlite3_backup_finish(backup)
        guard step == SQLITE_DONE else {
            // A source failure is reported on the source connection, a destination one on the destination.
            if step & 0xff == SQLITE_BUSY || step & 0xff == SQLITE_LOCKED {
                throw from.failure(step, operation: operation)
            }
            throw failure(step)
        }
        guard finish == SQLITE_OK else { throw failure(finish) }
        finished = true
    }

    /// Whether some process other than this one has the ledger at `path` open (a running `meshca serve`, or any
    /// other meshca command), as SQLite itself tells: every connection to a WAL database holds a shared lock on
    /// the "DMS" byte (offset 128) of the `-shm` file for as long as it is open (see "Locking" in SQLite's WAL file
    /// format documentation). Reads the lock with `F_GETLK`, which takes nothing. False when there is no `-shm`
    /// file (no connection has the database open in WAL mode).
    public static func isOpenByAnotherProcess(ledgerAt path: String) -> Bool {
        let descriptor = open(path + "-shm", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { _ = Glibc.close(descriptor) }
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = 128
        lock.l_len = 1
        guard fcntl(descriptor, F_GETLK, &lock) == 0 else { return false }
        return lock.l_type != Int16(F_UNLCK)
    }

    /// What `verifyChain(publicKey:)` reports for the ledger file at `path` (opened, and migrated, as `init(path:)`
    /// does), with the number of issuances it holds; for a copy made by ``backUp(ledgerAt:to:busyTimeout:)``.
    ///
    /// Runs on the calling thread and closes the file before it returns, so no `-wal` or `-shm` file is left beside
    /// it and the directory holding it can be renamed or removed at once.
    public static func verifyFile(
        at path: String, publicKey: CheckpointPublicKey?, progress: (@Sendable (_ done: Int64, _ total: Int64) -> Void)? = nil
    ) throws -> (
        report: LedgerChainReport, issuances: Int64
    ) {
        let ledger = try SQLiteLedger(path: path)
        return try ledger.connection.withLock { connection in
            let report = try LedgerChainVerifier(connection: connection, publicKey: publicKey, progress: progress).run()
            let count = try connection.prepare("SELECT count(*) FROM issuances", operation: "count issuances")
            return (report, try count.step() ? count.integer(0) : 0)
        }
    }
}

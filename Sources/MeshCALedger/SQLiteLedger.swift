import CSQLite
import Dispatch
import Foundation
import MeshCAMigrations
import Synchronization

/// The issuance ledger in one SQLite file, for a single CA process (other processes, such as `meshca audit`,
/// may open the same file at the same time).
///
/// Durability: WAL journal with `synchronous=FULL`, so a write returns only after the commit reached the
/// disk; every write runs in `BEGIN IMMEDIATE ... COMMIT` and a failed write leaves no trace. The file is
/// created with mode 0600 (its -wal and -shm files inherit that mode).
///
/// Issuances and rejections are recorded by group commit (see `SQLiteLedger+GroupCommit.swift`): writes that
/// arrive while a commit is in progress are committed together by the next one, each in its own savepoint,
/// so concurrent callers share one fsync instead of queueing for one each. A call still returns success only
/// once the transaction holding its row has committed, and one write's failure (a duplicate serial, a
/// rejected token) fails that write alone.
///
/// Calls that write, or that can wait (fsync, up to `busyTimeout` for another process's lock), never block the
/// caller's thread: that SQLite work runs on this ledger's own serial dispatch queue. The lookups a request makes
/// before it is signed (a join token, a renewing certificate's revocation, an earlier issuance for a repeat) run on
/// the caller's thread, on a second connection (see ``lookUp(_:)``): in WAL mode a reader never waits for a writer,
/// and a primary-key read from the page cache takes microseconds, less than handing the request to another thread
/// and back.
///
/// Schema versions, applied in order on open and recorded in `schema_migrations`:
///
/// | version | file                             | change                                                                  |
/// |---------|----------------------------------|-------------------------------------------------------------------------|
/// | 1       | `0001_create_ledger.sql`         | `issuances` and `rejections` tables and their indexes                   |
/// | 2       | `0002_join_tokens_and_peers.sql` | `peer` column on `issuances` and `rejections`; `join_tokens` table      |
/// | 3       | `0003_event_chain.sql`           | `ledger_events` hash chain, existing rows chained; `ledger_checkpoints` |
/// | 4       | `0004_index_issuances_by_service_account.sql` | index `issuances (service_account, issued_at)` for `audit list --sa` |
/// | 5       | `0005_join_tokens_pinned_root.sql` | `pinned_root_sha256` column on `join_tokens`: the root a token pins (NULL for older tokens) |
/// | 6       | `0006_index_issuances_by_public_key.sql` | index `issuances (public_key_sha256, issued_at)`: finding the certificate already issued for a repeated request |
///
/// Every write also appends to the hash chain in its own transaction (see `LedgerChain`); `verifyChain()`
/// checks it and `checkpoint()` signs its head with the ledger key.
public final class SQLiteLedger: IssuanceLedger {
    /// How a `SQLiteLedger` connection behaves.
    public struct Configuration: Sendable {
        /// How long a write waits for another process's lock before failing with `LedgerError.Code.locked`.
        public var busyTimeout: Duration
        /// Signs a checkpoint of the chain every `checkpointInterval` events, and is the default key of
        /// `checkpoint()` and `verifyChain()`. Nil (the default) writes no automatic checkpoints. Pass a
        /// `FileCheckpointSigner` for the state directory's `ledger-key.pem`, never the CA key.
        public var checkpointSigner: (any CheckpointSigner)?
        /// How many events apart automatic checkpoints are: one whenever an event's sequence number is a multiple
        /// of this. Values below 1 count as 1.
        public var checkpointInterval: Int
        /// Told (events chained, events to chain) while the first open after the upgrade to the hash chain brings
        /// existing rows onto it (see `LedgerChain+Backfill.swift`): every 1000 events and at the end. Not called
        /// when there is nothing to chain.
        public var backfillProgress: (@Sendable (_ done: Int64, _ total: Int64) -> Void)?
        /// Test knob: caps the database at this many pages (`PRAGMA max_page_count`) to simulate a full disk.
        package var maxPageCount: Int?

        /// The defaults: a 10 second busy timeout, no checkpoint signer, a checkpoint every 1000 events (once a
        /// signer is given), and no page limit.
        public init(
            busyTimeout: Duration = .seconds(10), checkpointSigner: (any CheckpointSigner)? = nil,
            checkpointInterval: Int = 1000
        ) {
            self.busyTimeout = busyTimeout
            self.checkpointSigner = checkpointSigner
            self.checkpointInterval = checkpointInterval
            self.backfillProgress = nil
            self.maxPageCount = nil
        }
    }

    /// The ledger file, as given to `init`.
    public let path: String

    /// The one connection; only code running on `queue` takes the lock, except `init` and `schemaVersion`.
    let connection: Mutex<SQLiteConnection>
    /// Serializes all SQLite work of this ledger, off the cooperative thread pool.
    let queue: DispatchQueue
    /// A second connection, used only for reads that must not wait for a group commit (see ``lookUp(_:)`` and
    /// ``performRead(_:)``) and opened by the first of them (one-shot commands never need it), and the queue of
    /// ``performRead(_:)``.
    let reader = Mutex<SQLiteConnection?>(nil)
    let readQueue = DispatchQueue(label: "meshca.ledger.read")
    /// Counts the lookups ``lookUp(_:)`` moved to `readQueue`.
    let lookUpsMoved = Atomic<Int>(0)
    /// The busy timeout the reader is opened with.
    let busyTimeout: Duration
    /// Writes waiting for the next group commit; see `SQLiteLedger+GroupCommit.swift`.
    let groupCommit = GroupCommitQueue<ApplyWrite>()
    /// Appends every write's event to the hash chain; see `LedgerChain`.
    let chain: LedgerChain

    /// Opens (creating when absent) the ledger file at `path` and applies pending migrations; rows written before
    /// schema version 3 are then brought onto the hash chain, once (see `LedgerChain+Backfill.swift`).
    ///
    /// Throws `LedgerError`: `.cannotOpen` when the directory is missing or not writable, `.notALedger` for a
    /// file that is not a meshca ledger, `.newerSchema` for a ledger written by a newer meshca, `.locked` when
    /// another process holds the write lock longer than `configuration.busyTimeout`.
    public convenience init(path: String, configuration: Configuration = .init()) throws {
        try self.init(path: path, configuration: configuration, migrations: LedgerMigrations.all)
    }

    /// Opens the ledger with an explicit migration list, so tests can exercise a failing or future migration.
    package init(path: String, configuration: Configuration, migrations: [LedgerMigration]) throws {
        let connection = try SQLiteConnection(
            path: path, busyTimeout: configuration.busyTimeout, maxPageCount: configuration.maxPageCount)
        try Self.migrate(connection, to: migrations)
        try LedgerChain.chainPlaceholders(on: connection, progress: configuration.backfillProgress)
        self.chain = LedgerChain(
            isEnabled: try LedgerChain.hasChainTable(on: connection), signer: configuration.checkpointSigner,
            checkpointInterval: configuration.checkpointInterval)
        self.path = path
        self.connection = Mutex(connection)
        self.queue = DispatchQueue(label: "meshca.ledger")
        self.busyTimeout = configuration.busyTimeout
    }

    /// The highest migration version recorded in the file, read now.
    public var schemaVersion: Int {
        get throws { try connection.withLock { try Self.appliedVersion($0) ?? 0 } }
    }

    /// Durably records one issued certificate and, in the same transaction, consumes one use of `token` when
    /// given; returns only after the transaction holding the row has committed (fsynced).
    ///
    /// Throws `.duplicateSerial` when the serial is already recorded and `.tokenRejected` when the token cannot
    /// be used (the message says why); in both cases nothing is recorded and no token use is consumed. A
    /// failure of the shared commit itself (`.diskFull`, `.locked`, `.ioError`, ...) is thrown to every write of
    /// that commit, and none of them is recorded. Cancelling the calling task does not withdraw the write.
    public func record(_ issuance: IssuanceRecord, consuming token: TokenUse?) async throws {
        try issuance.validateSerial(path: path)
        let parameters = try issuance.parameters()
        let operation = "record certificate \(issuance.serial)"
        let path = self.path
        let chain = self.chain
        let revoked = issuance.revokedAt != nil
        try await write(operation) { connection in
            if let token {
                try Self.consume(token, for: operation, on: connection, path: path, chain: chain)
            }
            try connection.prepare(IssuanceRecord.insertSQL, parameters, operation: operation).run()
            try chain.append(
                .issuance(serial: issuance.serial, parameters: parameters), on: connection, operation: operation)
            if revoked {
                try chain.appendCurrent(.revocation, subject: issuance.serial, on: connection, operation: operation)
            }
        }
    }

    /// Durably records one refused request, by group commit like issuances; the ledger assigns its id.
    public func record(_ rejection: RejectionRecord) async throws {
        let operation = "record a rejection for \(rejection.requester)"
        let parameters = rejection.parameters()
        let chain = self.chain
        try await write(operation) { connection in
            try connection.prepare(RejectionRecord.insertSQL, parameters, operation: operation).run()
            let id = try connection.prepare("SELECT last_insert_rowid()", operation: operation)
            _ = try id.step()
            try chain.append(
                .rejection(id: id.integer(0), parameters: parameters), on: connection, operation: operation)
        }
    }

    /// The issuances matching `query`, oldest first by (`issuedAt`, `serial`).
    public func issuances(matching query: IssuanceQuery) async throws -> [IssuanceRecord] {
        if let limit = query.limit, limit <= 0 { return [] }
        let (sql, parameters) = query.statement()
        let path = self.path
        let records = try await perform { connection in
            try connection.prepare(sql, parameters, operation: "query issuances").rows {
                try IssuanceRecord(row: $0, path: path)
            }
        }
        // With a limit the SQL picks the newest rows newest-first; callers always get oldest first.
        return query.limit == nil ? records : records.reversed()
    }

    /// Rejections at or after `since`, oldest first; with a `limit`, the newest `limit` of them.
    public func rejections(since: Date?, limit: Int?) async throws -> [RejectionRecord] {
        if let limit, limit <= 0 { return [] }
        let (sql, parameters) = RejectionRecord.selectStatement(since: since, limit: limit)
        let records = try await perform { connection in
            try connection.prepare(sql, parameters, operation: "query rejections").rows(RejectionRecord.init(row:))
        }
        return limit == nil ? records : records.reversed()
    }

    /// Runs a read-only `body` on the second connection, on its own queue: WAL lets it read the last commit while a
    /// group commit is in progress.
    func performRead<Result: Sendable>(
        _ body: @escaping @Sendable (SQLiteConnection) throws -> Result
    ) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            readQueue.async {
                continuation.resume(
                    with: Swift.Result {
                        try self.reader.withLock { reader in
                            let connection = try reader ?? SQLiteConnection(path: self.path, busyTimeout: self.busyTimeout, maxPageCount: nil)
                            reader = connection
                            return try body(connection)
                        }
                    })
            }
        }
    }

    /// Runs a short read-only `body` (a lookup by key) on the second connection, on the calling thread: for the reads a
    /// request waits on before it is signed. In WAL mode the read sees the last commit and does not wait for a group
    /// commit in progress, so it costs what the read costs, without two thread hand-offs (each a futex wake-up and a
    /// context switch) around it. Concurrent lookups take turns on the connection.
    ///
    /// The calling thread is an event loop's, so this never waits there: while the second connection is not open
    /// yet (opening can wait for locks), or when the read would have to wait for a lock (another process's
    /// exclusive lock, WAL recovery), the lookup moves to ``performRead(_:)``, which waits up to the busy timeout
    /// on its own queue.
    func lookUp<Result: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> Result) async throws -> Result {
        let quick: Result?? = try reader.withLock { reader in
            guard let connection = reader else { return nil }
            connection.waitForLocks(up: .zero)
            defer { connection.waitForLocks(up: busyTimeout) }
            do {
                return .some(try body(connection))
            } catch let error as LedgerError where error.code == .locked {
                return nil
            }
        }
        if case .some(.some(let result)) = quick { return result }
        lookUpsMoved.add(1, ordering: .relaxed)
        return try await performRead(body)
    }

    /// How many lookups moved to the read queue because the second connection was not open or a lock was held.
    package var movedLookUps: Int { lookUpsMoved.load(ordering: .relaxed) }

    /// Runs `body` with the connection on this ledger's queue and resumes the caller with its result.
    func perform<Result: Sendable>(
        _ body: @escaping @Sendable (SQLiteConnection) throws -> Result
    ) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Swift.Result { try self.connection.withLock { try body($0) } })
            }
        }
    }
}

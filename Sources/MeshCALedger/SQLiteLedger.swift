import CSQLite
import Dispatch
import Foundation
import MeshCAMigrations
import Synchronization

/// The issuance ledger in one SQLite file, for a single CA process (other processes, such as `meshca audit`,
/// may open the same file at the same time).
///
/// Durability: WAL journal with `synchronous=FULL`, so `record` returns only after the commit reached the
/// disk; every write runs in `BEGIN IMMEDIATE ... COMMIT` and is rolled back completely on any error. The
/// file is created with mode 0600 (its -wal and -shm files inherit that mode).
///
/// Calls never block Swift's cooperative thread pool: SQLite work (fsync, waiting up to `busyTimeout` for
/// another process's lock) runs on this ledger's own serial dispatch queue.
///
/// Schema versions, applied in order on open and recorded in `schema_migrations`:
///
/// | version | file                     | change                                                     |
/// |---------|--------------------------|------------------------------------------------------------|
/// | 1       | `0001_create_ledger.sql` | `issuances` and `rejections` tables and their indexes       |
public final class SQLiteLedger: IssuanceLedger {
    /// How a `SQLiteLedger` connection behaves.
    public struct Configuration: Sendable {
        /// How long a write waits for another process's lock before failing with `LedgerError.Code.locked`.
        public var busyTimeout: Duration
        /// Test knob: caps the database at this many pages (`PRAGMA max_page_count`) to simulate a full disk.
        package var maxPageCount: Int?

        /// The defaults: a 10 second busy timeout and no page limit.
        public init(busyTimeout: Duration = .seconds(10)) {
            self.busyTimeout = busyTimeout
            self.maxPageCount = nil
        }
    }

    /// The ledger file, as given to `init`.
    public let path: String

    private let connection: Mutex<SQLiteConnection>
    private let queue: DispatchQueue

    /// Opens (creating when absent) the ledger file at `path` and applies pending migrations.
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
        self.path = path
        self.connection = Mutex(connection)
        self.queue = DispatchQueue(label: "meshca.ledger")
    }

    /// The highest migration version recorded in the file, read now.
    public var schemaVersion: Int {
        get throws { try connection.withLock { try Self.appliedVersion($0) ?? 0 } }
    }

    /// Durably records one issued certificate; returns only after the row is committed (fsynced).
    /// Throws `.duplicateSerial` when the serial is already recorded, leaving the ledger unchanged.
    public func record(_ issuance: IssuanceRecord) async throws {
        try issuance.validateSerial(path: path)
        let parameters = try issuance.parameters()
        let operation = "record certificate \(issuance.serial)"
        try await perform { connection in
            try connection.writeTransaction(operation: operation) {
                try connection.prepare(IssuanceRecord.insertSQL, parameters, operation: operation).run()
            }
        }
    }

    /// Records one refused request; the ledger assigns its id.
    public func record(_ rejection: RejectionRecord) async throws {
        let operation = "record a rejection for \(rejection.requester)"
        let parameters = rejection.parameters()
        try await perform { connection in
            try connection.writeTransaction(operation: operation) {
                try connection.prepare(RejectionRecord.insertSQL, parameters, operation: operation).run()
            }
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

    /// Runs `body` with the connection on this ledger's queue and resumes the caller with its result.
    private func perform<Result: Sendable>(
        _ body: @escaping @Sendable (SQLiteConnection) throws -> Result
    ) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Swift.Result { try self.connection.withLock { try body($0) } })
            }
        }
    }
}

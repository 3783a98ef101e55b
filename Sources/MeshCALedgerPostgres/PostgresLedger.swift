import Foundation
import Logging
import MeshCAIO
import MeshCALedger
import MeshCAMigrations
import NIOCore
import PostgresNIO
import Synchronization

/// The issuance ledger in a PostgreSQL database, shared by any number of `meshca serve` replicas (each replica,
/// and each command, opens its own `PostgresLedger` on the same database).
///
/// Every method means what it means on ``SQLiteLedger``; the tables, columns and stored values are the same
/// (`Migrations/postgres/`), so the hash chain holds the same bytes and ``verifyChain(publicKey:progress:)`` runs
/// the SQLite engine's verifier over a copy of the tables.
///
/// Across replicas:
/// - every writing transaction first takes one transaction-level advisory lock (``chainLock``), so events are
///   appended one transaction at a time: `seq` has no gaps, follows commit order, and each event links to the
///   one committed before it, whichever replica wrote it;
/// - a join token use is the same guarded `UPDATE` as on SQLite, inside that lock, so a single-use token yields
///   one certificate however many replicas receive it;
/// - `synchronous_commit` is `on` for the ledger's sessions: ``record(_:consuming:)`` returns only after the
///   commit is durable on the server.
///
/// Per replica, issuances and rejections are written by group commit as on SQLite (one transaction, a savepoint
/// per write). Connections come from a `PostgresClient` pool (at most `maximumConnections`), run by a task this
/// ledger owns; ``close()`` ends it. When the server cannot be reached within `connectTimeout`, or a connection
/// is lost, calls throw `LedgerError` `.unavailable` naming the database.
public final class PostgresLedger: LedgerStore {
    /// The database, as a URL without password, for messages.
    public let location: String
    let client: PostgresClient
    let runTask: Task<Void, Never>
    let logger: Logger
    let configuration: PostgresLedgerConfiguration
    let signer: (any CheckpointSigner)?
    /// Writes waiting for the next group commit; see `PostgresLedger+GroupCommit.swift`.
    let groupCommit = GroupCommitQueue<ApplyWrite>()

    /// The advisory lock every writing transaction takes first: it serializes appends to the chain.
    static let chainLock: (Int32, Int32) = (0x6d65_7368, 1)  // "mesh", 1
    /// The advisory lock the schema migration takes, so replicas starting at once migrate once.
    static let migrationLock: (Int32, Int32) = (0x6d65_7368, 2)

    private init(
        configuration: PostgresLedgerConfiguration, client: PostgresClient, runTask: Task<Void, Never>,
        signer: (any CheckpointSigner)?, logger: Logger
    ) {
        self.configuration = configuration
        self.location = configuration.redactedURL
        self.client = client
        self.runTask = runTask
        self.signer = signer
        self.logger = logger
    }

    /// Connects, applies the schema to an empty database (refusing a database of another program and a schema
    /// newer than this meshca knows), and returns the ledger. `checkpointSigner` signs automatic checkpoints every
    /// `configuration.checkpointInterval` events and is the default key of `checkpoint()` and `verifyChain()`.
    ///
    /// Throws `LedgerError`: `.unavailable` when the server cannot be reached, `.cannotOpen` for a refused login or
    /// a missing database, `.notALedger`, `.newerSchema`, `.migrationFailed`.
    public static func open(
        _ configuration: PostgresLedgerConfiguration, checkpointSigner: (any CheckpointSigner)?, logger: Logger
    ) async throws -> PostgresLedger {
        try await open(configuration, checkpointSigner: checkpointSigner, logger: logger, migrations: PostgresLedgerMigrations.all)
    }

    /// Opens with an explicit migration list, so tests can exercise a schema newer than the ledger knows.
    package static func open(
        _ configuration: PostgresLedgerConfiguration, checkpointSigner: (any CheckpointSigner)?, logger: Logger,
        migrations: [LedgerMigration]
    ) async throws -> PostgresLedger {
        try await probe(configuration, logger: logger)
        let client = PostgresClient(configuration: try clientConfiguration(configuration), backgroundLogger: logger)
        let runTask = Task { await client.run() }
        let ledger = PostgresLedger(
            configuration: configuration, client: client, runTask: runTask, signer: checkpointSigner, logger: logger)
        do {
            try await ledger.migrate(to: migrations)
        } catch {
            await ledger.close()
            throw error
        }
        return ledger
    }

    /// Ends the connection pool and its task; nothing may be asked of the ledger afterwards.
    public func close() async {
        runTask.cancel()
        await runTask.value
    }

    /// The schema version recorded in the database, read now.
    public var schemaVersion: Int {
        get async throws {
            try await read("read the ledger's schema version") { connection in
                try await self.appliedVersion(on: connection) ?? 0
            }
        }
    }

    // MARK: - Connections

    /// Runs `body` on a pooled connection (outside any transaction). Waiting for a connection longer than
    /// `connectTimeout` throws `.unavailable`; every failure is a `LedgerError` naming `operation`. `writing: false`
    /// for a `body` that only reads, so that a lost connection is not reported as a write that may have happened.
    func perform<Result: Sendable>(
        _ operation: String, writing: Bool = true, _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        do {
            return try await withLease(operation, writing: writing, body)
        } catch {
            throw Self.failure(error, operation: operation, location: location, database: configuration.database, writing: writing)
        }
    }

    /// `perform` for a statement that only reads, tried once more on another connection when the pool handed out one
    /// that had closed while idle (the server restarted, or ``withLease`` closed it after a stall): reading twice
    /// changes nothing, and the caller would otherwise see `.unavailable` from a server that is back.
    func read<Result: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        do {
            return try await withLease(operation, writing: false, body)
        } catch let error as PSQLError where error.code == .clientClosedConnection || error.code == .serverClosedConnection {
            return try await perform(operation, writing: false, body)
        } catch {
            throw Self.failure(error, operation: operation, location: location, database: configuration.database, writing: false)
        }
    }

    /// `perform` without translating errors: `body`'s own errors come out as thrown.
    ///
    /// The lease and `body` run in a task of their own that is never cancelled: cancelling a query half-way would
    /// hand a connection back to the pool inside its transaction (holding the chain lock). When no connection came
    /// within `connectTimeout`, the caller gets `.unavailable` and the lease, should it still come, runs nothing.
    /// The caller gets `.unavailable` as soon as the connection closes under `body`: postgres-nio does not always
    /// fail a query sent as its connection closes, and a read waiting on such a query held its gRPC call, and the
    /// daemon's shutdown behind it, for ever. With `answerWithin`, also when `body` is still running that long after
    /// it got its connection, or after the last time it marked `progress` (a server that stopped answering without
    /// closing it); then the connection is closed, which ends its transaction on the server. `writing` chooses what
    /// those errors say about the ledger's state.
    func withLease<Result: Sendable>(
        _ operation: String, writing: Bool = true, answerWithin: Duration? = nil, progress: LeaseProgress? = nil,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let lease = LeaseState()
        let client = self.client
        let timeout = configuration.connectTimeout
        let location = self.location
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Result, any Error>) in
            let answer = Answer(continuation)
            let deadline = Task {
                // Every 100 ms until `body` answers (which cancels this task): give up on a connection that has not
                // come within `timeout`; once leased, answer when the connection has closed under `body`
                // (postgres-nio may never answer a query sent as its connection closes; a callback on its
                // closeFuture instead would stay registered for the connection's whole life, one per lease), or
                // when `answerWithin` has passed since the lease or `body`'s last progress, closing the connection.
                let connectBy = ContinuousClock.now + timeout
                // A closed connection is acted on at the second tick that sees it, so that postgres-nio's own error
                // (which `read` retries on another connection) comes first whenever it comes at all.
                var closedTicks = 0
                while true {
                    try await Task.sleep(for: .milliseconds(100))
                    guard let leasedAt = lease.leasedAt else {
                        if ContinuousClock.now >= connectBy, lease.abandonUnlessLeased() {
                            answer.resume(.failure(Self.unreachable(operation: operation, location: location, timeout: timeout)))
                            return
                        }
                        continue
                    }
                    closedTicks = lease.connection?.isClosed == true ? closedTicks + 1 : 0
                    if closedTicks >= 2 {
                        answer.resume(.failure(Self.lost(operation: operation, location: location, writing: writing)))
                        return
                    }
                    if let answerWithin, ContinuousClock.now >= max(leasedAt, progress?.last ?? leasedAt) + answerWithin {
                        answer.resume(.failure(Self.late(operation: operation, location: location, timeout: answerWithin)))
                        try? await lease.connection?.close()
                        return
                    }
                }
            }
            Task {
                do {
                    let result = try await client.withConnection { connection -> Result? in
                        guard lease.take(connection) else { return nil }
                        // Each query's answer resumes `body` on the connection's event loop, which writes the next.
                        return try await withTaskExecutorPreference(PinnedEventLoopExecutor(loop: connection.eventLoop)) {
                            try await body(connection)
                        }
                    }
                    deadline.cancel()
                    if let result { answer.resume(.success(result)) }
                } catch {
                    deadline.cancel()
                    answer.resume(.failure(error))
                }
            }
        }
    }

    /// Runs `body` in one transaction that first takes the chain lock; commits when it returns, rolls back when it
    /// throws.
    func writeTransaction<Result: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let logger = self.logger
        return try await perform(operation) { connection in
            try await connection.query("BEGIN", logger: logger)
            do {
                try await Self.lockChain(on: connection, logger: logger)
                let result = try await Self.$transactionHead.withValue(TransactionHead()) { try await body(connection) }
                try await connection.query("COMMIT", logger: logger)
                return result
            } catch {
                await Self.rollBack(after: error, on: connection, logger: logger)
                throw error
            }
        }
    }

    /// Ends the current transaction after `error`: a ROLLBACK when the connection is still usable (a statement
    /// failed on the server), nothing when the connection itself failed, since the server rolls back a lost
    /// session's transaction and postgres-nio never answers a query sent on a closed connection.
    static func rollBack(after error: any Error, on connection: PostgresConnection, logger: Logger) async {
        guard isStatementFailure(error) || !(error is PSQLError) else { return }
        _ = try? await connection.query("ROLLBACK", logger: logger)
    }

    /// Takes the chain's advisory lock for the rest of the current transaction.
    static func lockChain(on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            "SELECT pg_advisory_xact_lock(\(chainLock.0), \(chainLock.1))", logger: logger)
    }

    /// Runs `sql` (with SQLite's `?`/`?N` placeholders and `rowid`, translated) with `values` and returns every
    /// row as values.
    func rows(
        _ sql: String, _ values: [SQLiteStatement.Value] = [], on connection: PostgresConnection
    ) async throws -> [LedgerValueRow] {
        let query = PostgresQuery(unsafeSQL: PostgresSQL.translate(sql), binds: PostgresSQL.bindings(values))
        var rows: [LedgerValueRow] = []
        for try await row in try await connection.query(query, logger: logger) {
            rows.append(LedgerValueRow(try PostgresSQL.values(row)))
        }
        return rows
    }

    /// Runs `sql` for its effect; returns how many rows it returned (use `RETURNING` to count changed rows).
    @discardableResult
    func run(_ sql: String, _ values: [SQLiteStatement.Value] = [], on connection: PostgresConnection) async throws -> Int {
        try await rows(sql, values, on: connection).count
    }

    // MARK: - Errors

    /// The error for a query that waited `timeout` for a connection.
    static func unreachable(operation: String, location: String, timeout: Duration) -> LedgerError {
        LedgerError(
            code: .unavailable,
            message: "Could not \(operation): the PostgreSQL ledger \(location) could not be reached within "
                + "\(timeout.components.seconds)s. Nothing was recorded and no certificate was handed out; check "
                + "that the database server is running and reachable from this host, then retry.")
    }

    /// What to do after an unanswered transaction; a write (a group commit) may have committed before its answer
    /// was lost, a read changed nothing.
    private static func unansweredAdvice(writing: Bool) -> String {
        (writing
            ? "No certificate was handed out, and the write may not have been recorded"
            : "Nothing was handed out or changed")
            + "; check that the database server is running and reachable from this host, then retry."
    }

    /// The error for a write the server did not finish within `timeout` of getting its connection.
    static func late(operation: String, location: String, timeout: Duration) -> LedgerError {
        LedgerError(
            code: .unavailable,
            message: "Could not \(operation): the PostgreSQL ledger \(location) did not answer within "
                + "\(timeout.components.seconds)s. \(unansweredAdvice(writing: true))")
    }

    /// The error for a transaction whose connection closed under it.
    package static func lost(operation: String, location: String, writing: Bool) -> LedgerError {
        LedgerError(
            code: .unavailable,
            message: "Could not \(operation): the connection to the PostgreSQL ledger \(location) was lost. "
                + unansweredAdvice(writing: writing))
    }

    /// Any error of a PostgreSQL operation as the `LedgerError` an operator can act on, naming `database` for
    /// callers of the CA.
    /// `writing: false` for an operation that only reads (a lost connection then changed nothing).
    static func failure(
        _ error: any Error, operation: String, location: String, database: String, writing: Bool = true
    ) -> LedgerError {
        var failure = failure(error, operation: operation, location: location, writing: writing)
        failure.database = "PostgreSQL database \"\(database)\""
        return failure
    }

    /// Any error of a PostgreSQL operation as the `LedgerError` an operator can act on.
    private static func failure(_ error: any Error, operation: String, location: String, writing: Bool) -> LedgerError {
        if let error = error as? LedgerError { return error }
        let prefix = "Could not \(operation)"
        guard let psql = error as? PSQLError else {
            if error is CancellationError {
                return LedgerError(
                    code: .unavailable,
                    message: "\(prefix): the call to the PostgreSQL ledger \(location) was cancelled. Nothing was "
                        + "handed out; retry.")
            }
            // The pool's own errors (shut down, circuit breaker) and connection failures: the server is out of reach.
            return LedgerError(
                code: .unavailable,
                message: "\(prefix): the PostgreSQL ledger \(location) is unavailable (\(String(describing: error))). "
                    + "Nothing was handed out; check that the database server is running and reachable, then retry.")
        }
        guard psql.code == .server, let info = psql.serverInfo else {
            if psql.code == .sslUnsupported {
                return LedgerError(
                    code: .cannotOpen,
                    message: "\(prefix): the PostgreSQL server of \(location) does not offer TLS, but the URL asks "
                        + "for it. Enable ssl on the server, or use sslmode=prefer or disable on a trusted network.")
            }
            return LedgerError(
                code: .unavailable,
                message: "\(prefix): the connection to the PostgreSQL ledger \(location) failed or was lost "
                    + "(postgres: \(psql.code)). \(unansweredAdvice(writing: writing))")
        }
        let state = info[.sqlState] ?? ""
        let detail = "(postgres \(state): \(info[.message] ?? "no message"))"
        switch state {
        case "23505":
            return LedgerError(
                code: .duplicateSerial,
                message: "\(prefix): that serial number is already in the ledger at \(location) \(detail). Serials "
                    + "must be unique, so nothing was recorded; issue the certificate again with a fresh serial.")
        case "28000", "28P01", "3D000", "42501":
            return LedgerError(
                code: .cannotOpen,
                message: "\(prefix): the PostgreSQL server refused \(location) \(detail). Check the user, its "
                    + "password (--ledger-password-file, PGPASSWORD or ~/.pgpass), that the database exists, and "
                    + "that the user may use it.")
        case "53100":
            return LedgerError(
                code: .diskFull,
                message: "\(prefix): the PostgreSQL server of \(location) is out of disk space \(detail). Free space "
                    + "on the server and retry; nothing was recorded.")
        case "25006":
            return LedgerError(
                code: .readOnly,
                message: "\(prefix): \(location) is read-only \(detail) (a standby, or default_transaction_read_only). "
                    + "Point the ledger URL at the primary; nothing was recorded.")
        case "40001", "40P01", "55P03":
            return LedgerError(
                code: .locked,
                message: "\(prefix): \(location) refused the transaction because of a concurrent one \(detail). "
                    + "Nothing was recorded; retry.")
        case _ where state.hasPrefix("08") || state.hasPrefix("57P") || state.hasPrefix("53"):
            return LedgerError(
                code: .unavailable,
                message: "\(prefix): the PostgreSQL ledger \(location) is unavailable \(detail). Nothing was handed "
                    + "out; check that the database server is running and accepting connections, then retry.")
        default:
            return LedgerError(
                code: .other,
                message: "\(prefix): the PostgreSQL ledger \(location) reported an unexpected error \(detail). "
                    + "Nothing was recorded; report this message to the meshca maintainers.")
        }
    }

    /// Whether `error` left the connection's transaction usable (a statement failed on the server), so a
    /// savepoint can be rolled back and the batch go on; false when the connection itself failed.
    static func isStatementFailure(_ error: any Error) -> Bool {
        if let error = error as? LedgerError { return error.code != .unavailable }
        guard let psql = error as? PSQLError, psql.code == .server, let state = psql.serverInfo?[.sqlState] else {
            return false
        }
        return !(state.hasPrefix("08") || state.hasPrefix("57P"))
    }
}

/// Whether a call got its connection before its deadline gave up on it, and which connection, since when.
private final class LeaseState: Sendable {
    private let state = Mutex((connection: PostgresConnection?.none, leasedAt: ContinuousClock.Instant?.none, abandoned: false))

    /// Marks `connection` taken; false when the deadline gave up first (then nothing may run on it).
    func take(_ connection: PostgresConnection) -> Bool {
        state.withLock { state in
            guard !state.abandoned else { return false }
            state.connection = connection
            state.leasedAt = .now
            return true
        }
    }

    /// Gives up unless a connection was taken; true when it gave up.
    func abandonUnlessLeased() -> Bool {
        state.withLock { state in
            guard state.connection == nil else { return false }
            state.abandoned = true
            return true
        }
    }

    var connection: PostgresConnection? { state.withLock { $0.connection } }
    /// When the connection was taken, or nil before.
    var leasedAt: ContinuousClock.Instant? { state.withLock { $0.leasedAt } }
}

/// Where a long ``PostgresLedger/withLease(_:writing:answerWithin:progress:_:)`` body has got to: each mark restarts
/// its `answerWithin`, so a group commit of many writes is bounded per write, not as a whole.
final class LeaseProgress: Sendable {
    private let marked = Mutex(ContinuousClock.Instant?.none)

    /// Notes that the server has just answered.
    func mark() { marked.withLock { $0 = .now } }

    /// The last mark, nil before the first.
    var last: ContinuousClock.Instant? { marked.withLock { $0 } }
}

/// Resumes a continuation once, from whichever task answers first.
private final class Answer<Value: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<Value, any Error>?>

    init(_ continuation: CheckedContinuation<Value, any Error>) { self.continuation = Mutex(continuation) }

    func resume(_ result: Result<Value, any Error>) {
        continuation.withLock { $0.take() }?.resume(with: result)
    }
}

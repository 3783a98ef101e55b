import Foundation
import Logging
import MeshCACore
import MeshCAIO
import MeshCALedger
import MeshCALedgerPostgres

/// Where the issuance ledger lives: SQLite in the state directory (the default, for one CA process on one host),
/// or a PostgreSQL database that several `meshca serve` replicas share.
///
/// Chosen by `--ledger` (`MESHCA_LEDGER`, `ledger:` in the settings file) on `meshca serve` and on every command
/// that reads or writes the ledger; the password of a PostgreSQL ledger comes from `--ledger-password-file`,
/// `PGPASSWORD` or `~/.pgpass`, never from the URL.
public enum LedgerLocation: Sendable, Equatable, CustomStringConvertible {
    /// `ledger.db` in the state directory.
    case stateDirectory
    /// A PostgreSQL database: its `postgres://` URL (without a password) and the file holding the password.
    case postgres(url: String, passwordFile: String?)

    /// Reads a `--ledger` value: a `postgres://` or `postgresql://` URL. Throws, naming the value and the rule,
    /// for anything else.
    public static func parse(_ text: String, passwordFile: String? = nil) throws -> LedgerLocation {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard trimmed.hasPrefix("postgres://") || trimmed.hasPrefix("postgresql://") else {
            throw DaemonError(
                .ledgerUnusable,
                "--ledger \(text.escapedForLog) is not a PostgreSQL URL. Give postgres://USER@HOST:PORT/DATABASE"
                    + "?sslmode=verify-full (the password in --ledger-password-file, PGPASSWORD or ~/.pgpass), or leave "
                    + "--ledger out to keep the ledger in the state directory (SQLite).")
        }
        return .postgres(url: trimmed, passwordFile: passwordFile)
    }

    /// The location `--ledger`/`--ledger-password-file` ask for, falling back to `MESHCA_LEDGER` and
    /// `MESHCA_LEDGER_PASSWORD_FILE`, else the state directory.
    public static func resolve(
        explicit: String?, passwordFile: String?, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> LedgerLocation {
        let passwordFile = passwordFile ?? environment["MESHCA_LEDGER_PASSWORD_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        if let explicit, !explicit.isEmpty { return try parse(explicit, passwordFile: passwordFile) }
        if let fromEnvironment = environment["MESHCA_LEDGER"], !fromEnvironment.isEmpty {
            return try parse(fromEnvironment, passwordFile: passwordFile)
        }
        return .stateDirectory
    }

    /// Whether several CA processes may write this ledger at once (PostgreSQL), so none of them may treat the
    /// ledger's serving certificates as all its own.
    public var isShared: Bool {
        if case .postgres = self { return true }
        return false
    }

    /// `ledger.db in the state directory`, or the database URL.
    public var description: String {
        switch self {
        case .stateDirectory: "ledger.db in the state directory"
        case .postgres(let url, _): url
        }
    }

    /// Whether a ledger is there to open without creating one: the state directory's `ledger.db` exists, or the
    /// ledger is a database (which `open` creates the schema in when it is empty).
    public func exists(in directory: StateDirectory) -> Bool {
        switch self {
        case .stateDirectory: FileManager.default.fileExists(atPath: directory.ledgerPath)
        case .postgres: true
        }
    }

    /// How a ledger is opened beyond its location.
    public struct Options: Sendable {
        /// How long SQLite waits for another process's lock.
        public var busyTimeout: Duration = .seconds(10)
        /// The key that signs the chain's checkpoints (the state directory's `ledger-key.pem`), if any.
        public var checkpointSigner: (any CheckpointSigner)? = nil
        /// Told how far the one-time chaining of an upgraded SQLite ledger's rows has come.
        public var backfillProgress: (@Sendable (_ done: Int64, _ total: Int64) -> Void)? = nil
        /// Where a database ledger logs its connection events.
        public var logger = Logger(label: "meshca.ledger")

        /// Options with every default.
        public init() {}
    }

    /// Opens the ledger, applying the schema when it is new or older than this meshca's.
    public func open(in directory: StateDirectory, options: Options = .init()) async throws -> any LedgerStore {
        switch self {
        case .stateDirectory:
            var configuration = SQLiteLedger.Configuration(busyTimeout: options.busyTimeout)
            configuration.checkpointSigner = options.checkpointSigner
            configuration.backfillProgress = options.backfillProgress
            return try SQLiteLedger(path: directory.ledgerPath, configuration: configuration)
        case .postgres(let url, let passwordFile):
            let configuration = try PostgresLedgerConfiguration(url: url, passwordFile: passwordFile)
            return try await PostgresLedger.open(
                configuration, checkpointSigner: options.checkpointSigner, logger: options.logger)
        }
    }

    /// Opens the ledger, runs `body` on it and closes it, also when `body` throws.
    public func withLedger<T>(
        in directory: StateDirectory, options: Options = .init(), _ body: (any LedgerStore) async throws -> T
    ) async throws -> T {
        let ledger = try await open(in: directory, options: options)
        do {
            let result = try await body(ledger)
            await ledger.close()
            return result
        } catch {
            await ledger.close()
            throw error
        }
    }
}

@_exported import MeshCAErrors
import CSQLite
import Foundation

/// A ledger operation that failed, with a message an operator can act on without reading the source.
///
/// `code` is for programs (retry on `.locked`, alert on `.diskFull`); `message` is for people: a full sentence
/// naming the ledger file, what went wrong and what to do next, with SQLite's own text in parentheses.
public struct LedgerError: CodedError, LocalizedError {
    /// The closed list of reasons; each `rawValue` is a stable kebab-case name.
    public enum Code: String, ErrorCode {
        /// The file could not be opened or created (missing directory, no permission).
        case cannotOpen = "cannot-open"
        /// The file is not an SQLite database, is corrupt, or is some other program's database.
        case notALedger = "not-a-ledger"
        /// Another connection held the write lock for longer than the configured busy timeout.
        case locked = "locked"
        /// The ledger was migrated by a newer meshca than this one.
        case newerSchema = "newer-schema"
        /// A schema migration failed; it was rolled back.
        case migrationFailed = "migration-failed"
        /// The filesystem (or the configured page limit) is full; the write was rolled back.
        case diskFull = "disk-full"
        /// The file or its directory is not writable.
        case readOnly = "read-only"
        /// An issuance with the same serial number is already recorded.
        case duplicateSerial = "duplicate-serial"
        /// A join token with the same id is already recorded.
        case duplicateToken = "duplicate-token"
        /// The join token presented with an issuance is unknown, has the wrong secret, is expired, used up or
        /// revoked; the message says which. Nothing was recorded.
        case tokenRejected = "token-rejected"
        /// The database server cannot be reached, or the connection to it was lost (PostgreSQL ledgers). Nothing
        /// was recorded, or the outcome of the last write is unknown; no certificate may be handed out.
        case unavailable = "unavailable"
        /// The operating system reported an I/O error.
        case ioError = "io-error"
        /// The ledger key file is missing, unreadable, not an Ed25519 key, or readable by others.
        case ledgerKey = "ledger-key"
        /// Anything else, including values the ledger refuses to store.
        case other = "other"
    }

    /// What kind of failure this is.
    public let code: Code
    /// A full sentence naming the file or value, what went wrong, and what to do next.
    public let message: String
    /// The database as a caller of the CA may be told it (`PostgreSQL database "meshca"`), without its host or
    /// user, which stay in the daemon's log; nil for a local SQLite file.
    public var database: String?
    /// What `sqlite(...)` built this error from, so `reworded(for:)` can describe the same failure again.
    private var origin: Origin?

    /// Creates an error; ledger implementations build their messages with the helpers below.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// The message.

    /// The message, so `localizedDescription` shows it rather than a generic Foundation text.
    public var errorDescription: String? { message }

    /// Whether the same operation may succeed when retried: the ledger was busy, unreachable or out of space for
    /// the moment, rather than refusing the values or being damaged.
    public var isTransient: Bool {
        switch code {
        case .locked, .ioError, .cannotOpen, .diskFull, .readOnly, .unavailable: true
        default: false
        }
    }
}

extension LedgerError {
    /// Translates an SQLite result code into the error an operator can act on.
    ///
    /// - Parameters:
    ///   - resultCode: the extended result code (extended codes are enabled on every connection).
    ///   - sqliteMessage: `sqlite3_errmsg` text, kept in parentheses for experts.
    ///   - operation: what was being done, as a verb phrase: "record certificate 0a1b".
    static func sqlite(
        _ resultCode: Int32, sqliteMessage: String, path: String, operation: String, busyTimeout: Duration
    ) -> LedgerError {
        var error = sqliteError(
            resultCode, sqliteMessage: sqliteMessage, path: path, operation: operation, busyTimeout: busyTimeout)
        error.origin = Origin(
            resultCode: resultCode, sqliteMessage: sqliteMessage, path: path, busyTimeout: busyTimeout)
        return error
    }

    /// The same failure described for `operation` instead of the one it happened in.
    ///
    /// When a failure ends a group commit, every write in it failed for the same reason; each caller is told in
    /// terms of its own write ("Could not record certificate 0a1b: ..."). Errors not built by `sqlite(...)`
    /// are returned unchanged.
    func reworded(for operation: String) -> LedgerError {
        guard let origin else { return self }
        return .sqlite(
            origin.resultCode, sqliteMessage: origin.sqliteMessage, path: origin.path, operation: operation,
            busyTimeout: origin.busyTimeout)
    }

    /// The inputs of `sqlite(...)`.
    private struct Origin: Sendable {
        let resultCode: Int32
        let sqliteMessage: String
        let path: String
        let busyTimeout: Duration
    }

    private static func sqliteError(
        _ resultCode: Int32, sqliteMessage: String, path: String, operation: String, busyTimeout: Duration
    ) -> LedgerError {
        let detail = "(sqlite: \(sqliteMessage))"
        let prefix = "Could not \(operation)"
        switch resultCode & 0xff {
        case SQLITE_NOTADB, SQLITE_CORRUPT:
            return LedgerError(
                code: .notALedger,
                message: "\(prefix): \(path) is not a meshca ledger or is corrupt \(detail). Move it aside and "
                    + "restore it from a backup, or point meshca at a new ledger path; meshca does not write to it.")
        case SQLITE_BUSY, SQLITE_LOCKED:
            return LedgerError(
                code: .locked,
                message: "\(prefix): the ledger at \(path) is locked by another process for more than "
                    + "\(describe(busyTimeout)) \(detail). Another meshca or an sqlite3 shell is holding a "
                    + "transaction open; end it and retry. Nothing was recorded.")
        case SQLITE_FULL:
            return LedgerError(
                code: .diskFull,
                message: "\(prefix): no space left for the ledger at \(path) \(detail). Free space on that "
                    + "filesystem and retry; nothing was recorded.")
        case SQLITE_READONLY, SQLITE_PERM:
            return LedgerError(
                code: .readOnly,
                message: "\(prefix): the ledger at \(path) is read-only \(detail). Make the file, its directory "
                    + "and its -wal and -shm files writable by the user running meshca; nothing was recorded.")
        case SQLITE_CANTOPEN:
            let directory = (path as NSString).deletingLastPathComponent
            return LedgerError(
                code: .cannotOpen,
                message: "\(prefix): cannot open or create \(path) \(detail). The directory "
                    + "\(directory.isEmpty ? "." : directory) must exist and be writable by the user running "
                    + "meshca; create it or fix its permissions, then retry.")
        case SQLITE_CONSTRAINT where resultCode == constraintPrimaryKey:
            return LedgerError(
                code: .duplicateSerial,
                message: "\(prefix): that serial number is already in the ledger at \(path) \(detail). Serials "
                    + "must be unique, so nothing was recorded; issue the certificate again with a fresh serial.")
        case SQLITE_IOERR:
            return LedgerError(
                code: .ioError,
                message: "\(prefix): the disk reported an I/O error on the ledger at \(path) \(detail). Check "
                    + "the disk and the system log before retrying; nothing was recorded.")
        default:
            return LedgerError(
                code: .other,
                message: "\(prefix): the ledger at \(path) reported an unexpected error \(detail). Nothing was "
                    + "recorded; report this message to the meshca maintainers.")
        }
    }

    /// SQLITE_CONSTRAINT_PRIMARYKEY, which Swift cannot import because the C macro is an expression.
    private static let constraintPrimaryKey: Int32 = SQLITE_CONSTRAINT | (6 << 8)

    /// A short human form of a timeout: "10s", "200ms".
    static func describe(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000)s" : "\(milliseconds)ms"
    }
}

extension LedgerError {
    /// Why the join token presented with `operation` was refused: `stored` is the token's row as the refusing
    /// transaction read it (nil for an unknown id). The same words on every engine.
    package static func tokenRejected(
        _ use: TokenUse, stored: JoinTokenRecord?, operation: String, location: String
    ) -> LedgerError {
        let secretSHA256 = use.secretSHA256.lowercased()
        let reason: String
        if let stored, stored.secretSHA256 == secretSHA256 {
            switch stored.state(at: use.at) {
            case .revoked: reason = "was revoked at \(stored.revokedAt.map(timestamp) ?? "an unknown time")"
            case .usedUp: reason = "is used up: all \(stored.maxUses) of its uses have been consumed"
            case .expired: reason = "expired at \(timestamp(stored.expiresAt))"
            // Unreachable while `state(at:)` and the consuming UPDATE agree; kept so a disagreement still refuses.
            case .active: reason = "could not be used"
            }
        } else {
            // An unknown id and a wrong secret read the same, so a guesser learns nothing about which ids exist.
            reason = "is unknown or its secret does not match"
        }
        return LedgerError(
            code: .tokenRejected,
            message: "Could not \(operation) in the ledger at \(location): join token '\(use.id)' \(reason). Nothing "
                + "was recorded and no token use was consumed, so the certificate must not be handed out; the "
                + "requester needs a valid join token from an operator.")
    }

    /// A stored time as RFC 3339 UTC, e.g. "2025-06-15T15:06:40Z".
    private static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601)
    }
}

/// Refusals both ledger engines make in the same words.
extension LedgerError {
    /// `serial` is not a certificate serial number as `SerialNumberText.normalize` reads one.
    public static func invalidSerial(_ serial: String, operation: String) -> LedgerError {
        LedgerError(
            code: .other,
            message: "Could not \(operation) '\(serial)': a serial is hex digits, optionally separated by colons (e.g. "
                + "'4f:a2:09' or '4fa209'). List the serials with `meshca audit list`.")
    }

    /// A checkpoint was asked of the ledger at `location` without a ledger key.
    public static func noLedgerKey(operation: String, location: String) -> LedgerError {
        LedgerError(
            code: .ledgerKey,
            message: "Could not \(operation) for \(location): no ledger key was configured. Open the ledger with a "
                + "checkpointSigner (the state directory's \(FileCheckpointSigner.fileName)), or pass one.")
    }
}

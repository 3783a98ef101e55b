import Foundation
import MeshCAMigrations

/// What `SQLiteLedger.health()` found about the database file itself (not its contents' history; that is
/// `verifyChain()`).
public struct LedgerHealth: Sendable, Equatable {
    /// What `PRAGMA quick_check` returned: `["ok"]` for a sound file, else up to 20 problem descriptions.
    public let quickCheck: [String]
    /// The schema version recorded in the file.
    public let schemaVersion: Int
    /// The newest schema version this build of meshca knows.
    public let latestSchemaVersion: Int
    /// The size of the main database file in bytes (page count times page size).
    public let databaseBytes: Int64
    /// The size of the `-wal` file in bytes, or 0 when there is none.
    public let walBytes: Int64

    /// Creates a report; `health()` is the only producer outside tests.
    package init(
        quickCheck: [String], schemaVersion: Int, latestSchemaVersion: Int, databaseBytes: Int64, walBytes: Int64
    ) {
        self.quickCheck = quickCheck
        self.schemaVersion = schemaVersion
        self.latestSchemaVersion = latestSchemaVersion
        self.databaseBytes = databaseBytes
        self.walBytes = walBytes
    }

    /// Whether `quick_check` found nothing wrong.
    public var isIntact: Bool { quickCheck == ["ok"] }
}

extension SQLiteLedger {
    /// Checks the database file: `PRAGMA quick_check` (structure of every page and index, without the slower
    /// cross-check of index contents that `integrity_check` adds), the schema version, and the sizes of the file
    /// and its write-ahead log.
    ///
    /// Reads only. Throws `LedgerError` when the file cannot be read at all (`.notALedger` for a corrupt header,
    /// `.locked` when another process holds an exclusive lock past the busy timeout).
    public func health() async throws -> LedgerHealth {
        let path = self.path
        let (problems, version, bytes) = try await perform { connection in
            let operation = "check the ledger's database file"
            let check = try connection.prepare("PRAGMA quick_check(20)", operation: operation)
            let problems = try check.rows { $0.text(0) }
            let size = try connection.prepare(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()", operation: operation)
            let bytes = try size.step() ? size.integer(0) : 0
            return (problems, try Self.appliedVersion(connection) ?? 0, bytes)
        }
        let wal = (try? FileManager.default.attributesOfItem(atPath: path + "-wal"))?[.size] as? NSNumber
        return LedgerHealth(
            quickCheck: problems, schemaVersion: version, latestSchemaVersion: LedgerMigrations.latestVersion,
            databaseBytes: bytes, walBytes: wal?.int64Value ?? 0)
    }
}

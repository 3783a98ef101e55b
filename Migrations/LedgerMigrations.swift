/// One schema step of the issuance ledger: a numbered SQL file from the top-level `Migrations/` folder.
public struct LedgerMigration: Sendable, Equatable {
    /// The number the file starts with; migrations run in ascending order.
    public let version: Int
    /// The file name, e.g. `0001_create_ledger.sql`.
    public let fileName: String
    /// The SQL text, run in one transaction.
    public let sql: String
}

/// Every migration this build knows, in order. The SQL is embedded in the binary at build time, so an
/// installed `meshca` needs no resource folder beside it.
public enum LedgerMigrations {
    public static let all: [LedgerMigration] = [
        make(1, "0001_create_ledger.sql", PackageResources._001_create_ledger_sql),
        make(2, "0002_join_tokens_and_peers.sql", PackageResources._002_join_tokens_and_peers_sql),
        make(3, "0003_event_chain.sql", PackageResources._003_event_chain_sql),
        make(4, "0004_index_issuances_by_service_account.sql", PackageResources._004_index_issuances_by_service_account_sql),
        make(5, "0005_join_tokens_pinned_root.sql", PackageResources._005_join_tokens_pinned_root_sql),
        make(6, "0006_index_issuances_by_public_key.sql", PackageResources._006_index_issuances_by_public_key_sql),
    ]

    /// The newest schema version this build can read and write.
    public static var latestVersion: Int { all.last?.version ?? 0 }

    private static func make(_ version: Int, _ fileName: String, _ bytes: [UInt8]) -> LedgerMigration {
        LedgerMigration(version: version, fileName: fileName, sql: String(decoding: bytes, as: UTF8.self))
    }
}

/// The PostgreSQL ledger's migrations (`Migrations/postgres/`), numbered like the SQLite ones: a version means the
/// same schema on both engines. PostgreSQL ledgers start at version 6, whose one file creates what SQLite's
/// versions 1 to 6 built up.
public enum PostgresLedgerMigrations {
    public static let all: [LedgerMigration] = [
        make(6, "postgres/0006_postgres_ledger.sql", PackageResources._006_postgres_ledger_sql),
    ]

    /// The newest schema version this build can read and write on PostgreSQL.
    public static var latestVersion: Int { all.last?.version ?? 0 }

    private static func make(_ version: Int, _ fileName: String, _ bytes: [UInt8]) -> LedgerMigration {
        LedgerMigration(version: version, fileName: fileName, sql: String(decoding: bytes, as: UTF8.self))
    }
}

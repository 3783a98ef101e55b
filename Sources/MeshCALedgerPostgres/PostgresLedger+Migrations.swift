import Foundation
import MeshCALedger
import MeshCAMigrations
import PostgresNIO

/// Schema migrations on PostgreSQL: the files of `Migrations/postgres/`, applied as on SQLite (each in its own
/// transaction, recorded in `schema_migrations`, a newer schema refused), under an advisory lock so replicas that
/// start together migrate once.
extension PostgresLedger {
    private static let createMigrationsTable = """
        CREATE TABLE schema_migrations (
            version    BIGINT PRIMARY KEY,
            file_name  TEXT   NOT NULL,
            applied_at BIGINT NOT NULL
        )
        """

    /// Applies each migration newer than the database's version; refuses a newer schema and a database that holds
    /// other tables but no `schema_migrations`.
    func migrate(to migrations: [LedgerMigration]) async throws {
        let latest = migrations.last?.version ?? 0
        let location = self.location
        let logger = self.logger
        try await perform("migrate the ledger") { connection in
            try await connection.query("BEGIN", logger: logger)
            do {
                try await connection.query(
                    "SELECT pg_advisory_xact_lock(\(Self.migrationLock.0), \(Self.migrationLock.1))", logger: logger)
                let applied = try await self.appliedVersion(on: connection)
                let current = if let applied { applied } else { try await self.prepareNewLedger(on: connection) }
                if current > latest {
                    throw LedgerError(
                        code: .newerSchema,
                        message: "The ledger at \(location) has schema version \(current), but this meshca understands "
                            + "up to \(latest). It was written by a newer meshca; upgrade meshca (do not downgrade a "
                            + "ledger).")
                }
                for migration in migrations where migration.version > current {
                    try await self.apply(migration, over: current, on: connection)
                }
                try await connection.query("COMMIT", logger: logger)
            } catch {
                await Self.rollBack(after: error, on: connection, logger: logger)
                throw error
            }
        }
    }

    /// The highest recorded migration, or nil when there is no `schema_migrations` table.
    func appliedVersion(on connection: PostgresConnection) async throws -> Int? {
        let exists = try await rows("SELECT to_regclass('schema_migrations') IS NOT NULL", on: connection)
        guard exists.first?.integer(0) == 1 else { return nil }
        return Int(try await rows("SELECT coalesce(max(version), 0) FROM schema_migrations", on: connection).first?.integer(0) ?? 0)
    }

    /// Creates `schema_migrations` in an empty database (its current schema); refuses one holding other tables.
    private func prepareNewLedger(on connection: PostgresConnection) async throws -> Int {
        let tables = try await rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() LIMIT 1",
            on: connection)
        if let table = tables.first?.text(0) {
            throw LedgerError(
                code: .notALedger,
                message: "Could not open the ledger: \(location) is a PostgreSQL database but not a meshca ledger (it "
                    + "has a table '\(table)' and no schema_migrations table). Point meshca at an empty database of "
                    + "its own (CREATE DATABASE meshca).")
        }
        try await connection.query(PostgresQuery(unsafeSQL: Self.createMigrationsTable), logger: logger)
        return 0
    }

    private func apply(_ migration: LedgerMigration, over current: Int, on connection: PostgresConnection) async throws {
        do {
            for statement in Self.statements(of: migration.sql) {
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
            }
        } catch {
            let failure = Self.failure(error, operation: "apply migration \(migration.fileName)", location: location, database: configuration.database)
            guard failure.code == .other else { throw failure }
            throw LedgerError(
                code: .migrationFailed,
                message: "Could not migrate the ledger at \(location): \(migration.fileName) failed (\(failure.message)). "
                    + "It was rolled back, so the ledger is still at schema version \(current). Keep running the "
                    + "previous meshca and report this message to the meshca maintainers.")
        }
        try await run(
            "INSERT INTO schema_migrations (version, file_name, applied_at) VALUES (?, ?, ?)",
            [.integer(Int64(migration.version)), .text(migration.fileName), .integer(UnixTime.floor(Date()))],
            on: connection)
    }

    /// The statements of a migration file: `--` comments removed, split at every `;` that ends a line. (The
    /// PostgreSQL files keep to that shape: no `;` inside a literal or a function body.)
    static func statements(of sql: String) -> [String] {
        let lines = sql.split(separator: "\n", omittingEmptySubsequences: false).map { line -> Substring in
            guard let comment = line.range(of: "--") else { return line }
            return line[..<comment.lowerBound]
        }
        var statements: [String] = []
        var current = ""
        for line in lines {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            current += trimmed.isEmpty ? "" : trimmed + "\n"
            if trimmed.hasSuffix(";") {
                statements.append(String(current.dropLast(2)))
                current = ""
            }
        }
        let rest = current.trimmingCharacters(in: .whitespacesAndNewlines)
        if !rest.isEmpty { statements.append(rest) }
        return statements
    }
}

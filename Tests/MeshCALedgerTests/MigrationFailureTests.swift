import Foundation
import MeshCALedger
@testable import MeshCAMigrations
import MeshCATestSupport
import Testing

@Suite("Migrations that cannot be applied")
struct MigrationFailureTests {
    @Test("A failing migration is rolled back completely and the ledger stays at its previous version")
    func failingMigrationRollsBack() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let path = directory.file("ledger.db")
            let broken = LedgerMigration(
                version: LedgerMigrations.latestVersion + 1,
                fileName: "0099_broken.sql",
                sql: "CREATE TABLE half_done (x INTEGER);\nSELECT * FROM no_such_table;"
            )
            let error = try #require(throws: LedgerError.self) {
                try SQLiteLedger(path: path, configuration: .init(), migrations: LedgerMigrations.all + [broken])
            }
            #expect(error.code == .migrationFailed)
            #expect(error.message.contains(path))
            #expect(error.message.contains("0099_broken.sql"))
            #expect(error.message.contains("no such table"))
            #expect(error.message.contains("schema version \(LedgerMigrations.latestVersion)"))

            let raw = try RawDatabase(path: path)
            #expect(try raw.integers("SELECT max(version) FROM schema_migrations") == [Int64(LedgerMigrations.latestVersion)])
            #expect(try raw.strings("SELECT name FROM sqlite_master WHERE name = 'half_done'").isEmpty)
            // The good migrations before the broken one stay applied, so the current meshca keeps working.
            #expect(try SQLiteLedger(path: path).schemaVersion == LedgerMigrations.latestVersion)
        }
    }

    @Test("A migration file that commits on its own is refused")
    func migrationMustNotCommit() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let path = directory.file("ledger.db")
            let committing = LedgerMigration(
                version: LedgerMigrations.latestVersion + 1, fileName: "0099_commits.sql",
                sql: "CREATE TABLE sneaky (x INTEGER); COMMIT;")
            let error = try #require(throws: LedgerError.self) {
                try SQLiteLedger(path: path, configuration: .init(), migrations: LedgerMigrations.all + [committing])
            }
            #expect(error.code == .migrationFailed)
            #expect(error.message.contains("0099_commits.sql"))
        }
    }
}

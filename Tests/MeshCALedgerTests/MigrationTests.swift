import Foundation
import MeshCALedger
import MeshCAMigrations
import MeshCATestSupport
import Testing

@Suite("Opening and migrating a ledger")
struct MigrationTests {
    @Test("Opening a new file applies every migration, uses WAL, and creates the file with mode 0600")
    func newLedger() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let path = directory.file("ledger.db")
            let ledger = try SQLiteLedger(path: path)
            #expect(try ledger.schemaVersion == LedgerMigrations.latestVersion)
            #expect(ledger.path == path)

            let raw = try RawDatabase(path: path)
            #expect(try raw.integers("SELECT version FROM schema_migrations ORDER BY version")
                == LedgerMigrations.all.map { Int64($0.version) })
            #expect(try raw.strings("SELECT file_name FROM schema_migrations ORDER BY version")
                == LedgerMigrations.all.map(\.fileName))
            #expect(try raw.strings("PRAGMA journal_mode") == ["wal"])
            #expect(try raw.strings("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                == ["issuances", "join_tokens", "ledger_checkpoints", "ledger_events", "rejections", "schema_migrations"])

            for file in [path, path + "-wal", path + "-shm"] where FileManager.default.fileExists(atPath: file) {
                let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
                #expect(mode == 0o600, "\(file) has mode \(String(mode ?? 0, radix: 8))")
            }
            #expect(FileManager.default.fileExists(atPath: path + "-wal"))
        }
    }

    @Test("Re-opening an existing ledger keeps its rows and applies nothing twice")
    func reopen() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let path = directory.file("ledger.db")
            let record = IssuanceRecord.fixture(serial: "0a1b")
            do {
                let ledger = try SQLiteLedger(path: path)
                try await ledger.record(record)
            }
            let before = try RawDatabase(path: path).strings("SELECT version || ':' || applied_at FROM schema_migrations")

            let reopened = try SQLiteLedger(path: path)
            #expect(try await reopened.allIssuances() == [record])
            let after = try RawDatabase(path: path).strings("SELECT version || ':' || applied_at FROM schema_migrations")
            #expect(after == before)
            #expect(after.count == LedgerMigrations.all.count)
        }
    }

    @Test("A version-1 ledger is migrated to the latest version and its rows survive with an empty peer")
    func fromVersion1() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let path = directory.file("ledger.db")
            do {
                let v1 = try SQLiteLedger(
                    path: path, configuration: .init(), migrations: Array(LedgerMigrations.all.prefix(1)))
                #expect(try v1.schemaVersion == 1)
            }
            // Rows as a version-1 meshca wrote them: no peer column exists yet.
            let raw = try RawDatabase(path: path)
            try raw.execute("""
                INSERT INTO issuances (serial, spiffe_id, trust_domain, namespace, service_account, sans, not_before,
                    not_after, issued_at, requested_ttl_seconds, granted_ttl_seconds, key_type, public_key_sha256,
                    csr_sha256, certificate_der, issuer_fingerprint, requester, auth_method)
                VALUES ('0a1b', 'spiffe://mesh.example/ns/payments/sa/api', 'mesh.example', 'payments', 'api',
                    '["URI:spiffe://mesh.example/ns/payments/sa/api"]', 1749999940, 1750003600, 1750000000, NULL, 3600,
                    'ec-p256', '\(String(repeating: "ab", count: 32))', '\(String(repeating: "cd", count: 32))',
                    X'3082010000ff', '\(String(repeating: "ef", count: 32))', 'local:root(uid 0)', 'local');
                INSERT INTO rejections (occurred_at, requester, auth_method, requested_identity, reason_code, message)
                VALUES (1750000010, 'token:ci', 'token', '', 'bad-csr', 'The CSR signature does not verify.');
                """)

            let ledger = try SQLiteLedger(path: path)
            #expect(try ledger.schemaVersion == LedgerMigrations.latestVersion)
            let issuances = try await ledger.allIssuances()
            #expect(issuances == [IssuanceRecord.fixture(serial: "0a1b")])
            #expect(issuances.first?.peer == "")
            let rejections = try await ledger.rejections(since: nil, limit: nil)
            #expect(rejections == [RejectionRecord(
                id: 1, occurredAt: at(10), requester: "token:ci", authMethod: "token", requestedIdentity: "",
                reasonCode: "bad-csr", message: "The CSR signature does not verify.")])
            #expect(try raw.integers("SELECT count(*) FROM join_tokens") == [0])
            // The migrated ledger takes new rows with a peer.
            var remote = IssuanceRecord.fixture(serial: "0a1c", issuedAt: at(1))
            remote.peer = "ipv4:127.0.0.1:53412"
            try await ledger.record(remote)
            #expect(try await ledger.allIssuances().map(\.peer) == ["", "ipv4:127.0.0.1:53412"])
        }
    }

    @Test("A ledger migrated by a newer meshca is refused with both versions in the message")
    func newerSchema() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let path = directory.file("ledger.db")
            _ = try SQLiteLedger(path: path)
            try RawDatabase(path: path).execute(
                "INSERT INTO schema_migrations (version, file_name, applied_at) VALUES (7, '0007_future.sql', 0)")

            let error = try #require(throws: LedgerError.self) { try SQLiteLedger(path: path) }
            #expect(error.code == .newerSchema)
            #expect(error.message.contains(path))
            #expect(error.message.contains("schema version 7"))
            #expect(error.message.contains("up to \(LedgerMigrations.latestVersion)"))
            #expect(error.message.contains("upgrade meshca"))
        }
    }

    @Test("An SQLite database belonging to another program is refused, not written to")
    func foreignDatabase() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let path = directory.file("ledger.db")
            #expect(FileManager.default.createFile(atPath: path, contents: nil))
            try RawDatabase(path: path).execute("CREATE TABLE photos (id INTEGER PRIMARY KEY)")

            let error = try #require(throws: LedgerError.self) { try SQLiteLedger(path: path) }
            #expect(error.code == .notALedger)
            #expect(error.message.contains(path))
            #expect(try RawDatabase(path: path).strings("SELECT name FROM sqlite_master WHERE type = 'table'") == ["photos"])
        }
    }

    @Test("The embedded migrations are exactly the numbered SQL files in the Migrations folder")
    func embeddedMatchFolder() throws {
        let folder = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // MeshCALedgerTests
            .deletingLastPathComponent()  // Tests
            .deletingLastPathComponent()  // package root
            .appendingPathComponent("Migrations", isDirectory: true)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".sql") }
            .sorted()
        try #require(!files.isEmpty, "no .sql files in \(folder.path)")

        #expect(LedgerMigrations.all.map(\.fileName) == files, "add .embedInCode for every file, in Package.swift and LedgerMigrations.all")
        #expect(LedgerMigrations.all.map(\.version) == Array(1...files.count), "versions must be 1...n without gaps")
        for migration in LedgerMigrations.all {
            #expect(migration.fileName.hasPrefix(String(format: "%04d_", migration.version)))
            let onDisk = try String(contentsOf: folder.appendingPathComponent(migration.fileName), encoding: .utf8)
            #expect(migration.sql == onDisk, "\(migration.fileName) differs from its embedded copy")
        }
        #expect(LedgerMigrations.latestVersion == files.count)
    }
}

import CSQLite
import Foundation
import MeshCALedger
import MeshCATestSupport
import Testing

@Suite("Failures leave the ledger unchanged and say what to do")
struct LedgerFailureTests {
    @Test("A duplicate serial is refused with .duplicateSerial and the original row stays intact")
    func duplicateSerial() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let path = directory.file("ledger.db")
            let ledger = try SQLiteLedger(path: path)
            let original = IssuanceRecord.fixture(serial: "0abc")
            try await ledger.record(original)

            let impostor = IssuanceRecord.fixture(serial: "0abc", namespace: "billing", issuedAt: at(99))
            let error = try await #require(throws: LedgerError.self) { try await ledger.record(impostor) }
            #expect(error.code == .duplicateSerial)
            #expect(error.message.contains("0abc"))
            #expect(error.message.contains(path))
            #expect(try await ledger.allIssuances() == [original])
            // The connection is still usable after the rolled-back transaction.
            try await ledger.record(.fixture(serial: "0abd"))
            #expect(try await ledger.allIssuances().count == 2)
        }
    }

    @Test("A full disk fails with .diskFull, writes nothing, and keeps earlier rows readable")
    func diskFull() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let path = directory.file("ledger.db")
            let earlier = (1...3).map { IssuanceRecord.fixture(serial: "0\($0)", issuedAt: at(Double($0))) }
            do {
                let ledger = try SQLiteLedger(path: path)
                for record in earlier { try await ledger.record(record) }
            }

            var configuration = SQLiteLedger.Configuration()
            // SQLite raises a limit below the current size to the current size: no room to grow at all.
            configuration.maxPageCount = 1
            let full = try SQLiteLedger(path: path, configuration: configuration)
            let big = IssuanceRecord.fixture(serial: "0f", certificateDER: Array(repeating: 0x5a, count: 64 * 1024))
            let error = try await #require(throws: LedgerError.self) { try await full.record(big) }
            #expect(error.code == .diskFull)
            #expect(error.message.contains(path))
            #expect(error.message.contains("nothing was recorded"))

            #expect(try await full.allIssuances() == earlier)
            let reopened = try SQLiteLedger(path: path)
            #expect(try await reopened.allIssuances() == earlier)
            #expect(try RawDatabase(path: path).strings("PRAGMA integrity_check") == ["ok"])
        }
    }

    @Test("A file of garbage bytes is refused as not a ledger and left untouched")
    func garbageFile() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let path = directory.file("ledger.db")
            let garbage = Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) })
            try garbage.write(to: URL(fileURLWithPath: path))

            let error = try #require(throws: LedgerError.self) { try SQLiteLedger(path: path) }
            #expect(error.code == .notALedger)
            #expect(error.message.contains(path))
            #expect(error.message.contains("not a meshca ledger or is corrupt"))
            #expect(error.message.contains("(sqlite: "))
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == garbage)
        }
    }

    @Test("A path in a missing directory fails with .cannotOpen naming the path and the directory")
    func missingDirectory() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let missing = directory.file("no/such/dir")
            let path = missing + "/ledger.db"

            let error = try #require(throws: LedgerError.self) { try SQLiteLedger(path: path) }
            #expect(error.code == .cannotOpen)
            #expect(error.message.contains(path))
            #expect(error.message.contains("must exist and be writable"))
            #expect(!FileManager.default.fileExists(atPath: missing))
        }
    }

    @Test("A write blocked by another process's lock fails with .locked after the busy timeout")
    func locked() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let path = directory.file("ledger.db")
            let ledger = try SQLiteLedger(path: path, configuration: .init(busyTimeout: .milliseconds(200)))
            let other = try RawDatabase(path: path)
            try other.execute("BEGIN EXCLUSIVE")

            let clock = ContinuousClock()
            let started = clock.now
            let error = try await #require(throws: LedgerError.self) { try await ledger.record(.fixture(serial: "0a")) }
            #expect(clock.now - started >= .milliseconds(150))
            #expect(error.code == .locked)
            #expect(error.message.contains(path))
            #expect(error.message.contains("locked by another process for more than 200ms"))

            // Reads still work while the other process writes (WAL), and the write succeeds once it is done.
            #expect(try await ledger.allIssuances().isEmpty)
            try other.execute("COMMIT")
            try await ledger.record(.fixture(serial: "0a"))
            #expect(try await ledger.allIssuances().map(\.serial) == ["0a"])
        }
    }

    @Test("A read-only ledger file fails writes with .readOnly", .disabled(if: geteuid() == 0, "root ignores file permissions"))
    func readOnly() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let path = directory.file("ledger.db")
            do { _ = try SQLiteLedger(path: path) }
            try FileManager.default.setAttributes([.posixPermissions: 0o400], ofItemAtPath: path)
            defer { try? FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path) }

            let error = try await #require(throws: LedgerError.self) {
                let ledger = try SQLiteLedger(path: path)
                try await ledger.record(.fixture(serial: "0b"))
            }
            #expect(error.code == .readOnly)
            #expect(error.message.contains(path))
        }
    }
}

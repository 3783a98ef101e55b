import Dispatch
import Foundation
import MeshCALedger
import MeshCAMigrations
import MeshCATestSupport
import Synchronization
import Testing

@Suite("Several connections on one ledger file")
struct ConcurrencyTests {
    @Test("Two ledgers on the same database writing 100 records each at once lose nothing", arguments: LedgerEngine.all)
    func concurrentWriters(_ engine: LedgerEngine) async throws {
        try await withLedgers(engine, count: 2) { writers async throws in
            let perWriter = 100

            try await withThrowingTaskGroup(of: Void.self) { group in
                for (writer, ledger) in writers.enumerated() {
                    group.addTask {
                        for index in 0..<perWriter {
                            let serial = String(format: "%02x%04x", writer + 1, index)
                            try await ledger.record(.fixture(serial: serial, issuedAt: at(Double(index))))
                        }
                    }
                }
                try await group.waitForAll()
            }

            let expected = Set((1...2).flatMap { writer in (0..<perWriter).map { String(format: "%02x%04x", writer, $0) } })
            for ledger in writers {
                let serials = try await ledger.allIssuances().map(\.serial)
                #expect(serials.count == 2 * perWriter)
                #expect(Set(serials) == expected)
            }
        }
    }

    @Test("Several connections opening the same brand-new file at the same moment all succeed, migrating once")
    func concurrentOpen() async throws {
        try await TemporaryDirectory.with("ledger") { directory in
            let path = directory.file("ledger.db")
            let openers = 6
            let failures = Mutex<[String]>([])
            // Real threads, so the opens truly overlap rather than taking turns on the cooperative pool.
            DispatchQueue.concurrentPerform(iterations: openers) { _ in
                do {
                    let ledger = try SQLiteLedger(path: path)
                    if try ledger.schemaVersion != LedgerMigrations.latestVersion {
                        failures.withLock { $0.append("wrong schema version") }
                    }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
            #expect(failures.withLock { $0 } == [])
            let raw = try RawDatabase(path: path)
            #expect(try raw.integers("SELECT version FROM schema_migrations ORDER BY version")
                == LedgerMigrations.all.map { Int64($0.version) })
            let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
            #expect(mode == 0o600)
        }
    }
}

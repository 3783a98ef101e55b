import Foundation
import MeshCATestSupport
import Synchronization
import Testing

@Suite("meshca backup and meshca restore", .timeLimit(.minutes(5)))
struct BackupRestoreTests {
    @Test(
        "A backup taken while issuances are in flight holds every finished one with its certificate, verifies, keeps keys 0600, and restores into a directory that serves")
    func backupUnderLoad() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        let serve = try Served(state: ws.state, create: true)
        defer { serve.process.terminate() }
        let address = try await serve.address()
        let token = try await ws.meshca("token", "create", "--sa", "was", "--uses", "1000", "--ttl", "1h")
        expectSuccess(token)
        try ws.dir.write("was.token", token.stdout)

        // Three workers issue through the daemon (`meshca issue --server`) until told to stop.
        let load = IssuanceLoad()
        let workers = DispatchGroup()
        for worker in 0..<3 {
            DispatchQueue.global().async(group: workers) {
                var round = 0
                while !load.isStopped {
                    let started = ContinuousClock.now
                    // A Dispatch thread, not the cooperative pool: blocking on the child is fine here.
                    let result = Result(catching: {
                        try Command.meshcaBlocking(
                            ["issue", "--sa", "was", "--server", address, "--token-file", "was.token", "--out",
                            "out-\(worker)-\(round)"], environment: ["MESHCA_STATE_DIR": ws.state], directory: ws.dir.path)
                    })
                    load.finished(result, started: started)
                    round += 1
                }
            }
        }
        defer {
            load.stop()
            workers.wait()
        }
        try await load.waitFor(issued: 4)

        let backupStarted = ContinuousClock.now
        let finishedBefore = Set(load.issued.map(\.serial))
        let backup = try await ws.meshca("backup", ws.dir.file("backup"))
        let backupEnded = ContinuousClock.now
        try await load.waitFor(issued: finishedBefore.count + 3)  // the daemon keeps issuing after the backup
        load.stop()
        await withCheckedContinuation { continuation in workers.notify(queue: .global()) { continuation.resume() } }

        expectSuccess(backup)
        #expect(load.failures.isEmpty, "issuances failed during the backup: \(load.failures)")
        #expect(
            load.issued.contains { $0.started < backupEnded && $0.ended > backupStarted },
            "no issuance was in flight while the backup ran")
        #expect(backup.stdout.contains("backed up \(ws.state) to \(ws.dir.file("backup"))"), "\(backup.stdout)")
        #expect(backup.stdout.contains("intact: yes"), "\(backup.stdout)")
        #expect(try ws.dir.mode("backup") == 0o700)
        #expect(try ws.dir.mode("backup/ca-key.pem") == 0o600)
        #expect(try ws.dir.mode("backup/ledger-key.pem") == 0o600)
        #expect(try ws.dir.mode("backup/ledger.db") == 0o600)
        #expect(try ws.dir.read("backup/ca-cert.pem") == ws.dir.read("state/ca-cert.pem"))
        #expect(FileManager.default.fileExists(atPath: ws.dir.file("backup/crl.pem")))
        #expect(!FileManager.default.fileExists(atPath: ws.dir.file("backup/.lock")))
        #expect(!FileManager.default.fileExists(atPath: ws.dir.file("backup/ledger.db-wal")), "the copy is closed")
        #expect(try siblings(of: ws.dir.file("backup")).isEmpty, "a staging directory was left behind")

        // Every issuance that had returned before the backup began is in it, and every issuance in it has its certificate.
        let records = try ws.json(try await ws.meshca("audit", "list", "--json", "--state-dir", ws.dir.file("backup")))
        let serials = Set(records.compactMap { $0["serial"] as? String })
        #expect(finishedBefore.isSubset(of: serials), "missing from the backup: \(finishedBefore.subtracting(serials))")
        for record in records {
            let serial = try #require(record["serial"] as? String)
            try ws.dir.write("record.pem", try #require(record["certificate_pem"] as? String, "\(serial) has no certificate"))
            let parsed = try await ws.openssl("x509", "-in", "record.pem", "-noout", "-serial")
            #expect(parsed.status == 0, "the certificate of \(serial) does not parse: \(parsed.stderr)")
            #expect(normalized(parsed.stdout.replacingOccurrences(of: "serial=", with: "")) == normalized(serial))
        }

        // While the daemon runs, its state directory is not restored over, even with --force.
        let unforced = try await ws.meshca("restore", ws.dir.file("backup"))
        #expect(unforced.status == 1)
        #expect(unforced.stderr.contains("The state directory \(ws.state) is not empty"), "\(unforced.stderr)")
        let busy = try await ws.meshca("restore", ws.dir.file("backup"), "--force")
        #expect(busy.status == 1)
        #expect(busy.stderr.contains("Another process has the ledger \(ws.state)/ledger.db open"), "\(busy.stderr)")
        #expect(try siblings(of: ws.state).isEmpty, "nothing moved aside or staged")
        #expect(try await serve.process.stop() == 0)

        // Restored into a new directory, the CA serves again, issues, and its ledger verifies.
        let restoredPath = ws.dir.file("restored")
        let restore = try await ws.meshca("restore", ws.dir.file("backup"), "--state-dir", restoredPath)
        expectSuccess(restore)
        #expect(restore.stdout.contains("restored \(ws.dir.file("backup")) into \(restoredPath)"), "\(restore.stdout)")
        #expect(restore.stdout.contains("intact: yes"))
        #expect(try ws.dir.mode("restored") == 0o700)
        #expect(try ws.dir.mode("restored/ca-key.pem") == 0o600)
        let restored = try Served(state: restoredPath)
        defer { restored.process.terminate() }
        let restoredAddress = try await restored.address()
        let newToken = try await ws.meshca("token", "create", "--sa", "api", "--state-dir", restoredPath)
        expectSuccess(newToken)
        try ws.dir.write("api.token", newToken.stdout)
        let issued = try await ws.meshca(
            "issue", "--sa", "api", "--server", restoredAddress, "--token-file", "api.token", "--out", "api")
        expectSuccess(issued)
        #expect(try ws.dir.read("api/root-cert.pem") == ws.dir.read("state/root-cert.pem"), "issued by the same CA")
        let verify = try await ws.meshca("audit", "verify", "--state-dir", restoredPath)
        expectSuccess(verify)
        #expect(verify.stdout.hasPrefix("OK    ledger intact"), "\(verify.stdout)")
        let after = try ws.json(try await ws.meshca("audit", "list", "--json", "--state-dir", restoredPath))
        #expect(Set(after.compactMap { $0["serial"] as? String }).isSuperset(of: serials))
        #expect(after.count > records.count)
        #expect(try await restored.process.stop() == 0)
    }

    @Test("backup refuses a non-empty destination; restore refuses a non-empty state directory unless --force, which moves it aside")
    func refusals() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try await ws.meshca("issue", "--sa", "was", "--out", "was"))
        let backupPath = ws.dir.file("backup")
        expectSuccess(try await ws.meshca("backup", backupPath))

        try FileManager.default.createDirectory(atPath: ws.dir.file("full"), withIntermediateDirectories: false)
        try ws.dir.write("full/notes.txt", "mine\n")
        let full = try await ws.meshca("backup", ws.dir.file("full"))
        #expect(full.status == 1)
        #expect(full.stderr.contains("The backup destination \(ws.dir.file("full")) is not empty (holds 1 entry: notes.txt)"), "\(full.stderr)")
        #expect(full.stderr.contains("Choose a new path"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: ws.dir.file("full")) == ["notes.txt"])
        #expect(try siblings(of: ws.dir.file("full")).isEmpty)

        let target = ws.dir.file("target")
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: false)
        try ws.dir.write("target/notes.txt", "mine\n")
        let refused = try await ws.meshca("restore", backupPath, "--state-dir", target)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("The state directory \(target) is not empty (holds 1 entry: notes.txt)"), "\(refused.stderr)")
        #expect(refused.stderr.contains("pass --force"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: target) == ["notes.txt"])
        #expect(try siblings(of: target).isEmpty)

        // A staging directory left by a restore that crashed is reported, not touched.
        try FileManager.default.createDirectory(atPath: target + ".restoring-crashed", withIntermediateDirectories: false)
        let forced = try await ws.meshca("restore", backupPath, "--state-dir", target, "--force")
        expectSuccess(forced)
        #expect(forced.stderr.contains("warning: \(target).restoring-crashed is left from an interrupted backup or restore"), "\(forced.stderr)")
        #expect(FileManager.default.fileExists(atPath: target + ".restoring-crashed"))
        let aside = try #require(try siblings(of: target).first { $0.hasPrefix("target.replaced-") })
        #expect(try ws.dir.read(aside + "/notes.txt") == "mine\n", "the previous contents are kept, not deleted")
        #expect(forced.stdout.contains("moved to \(ws.dir.file(aside))"), "\(forced.stdout)")
        #expect(try ws.dir.read("target/ca-cert.pem") == ws.dir.read("state/ca-cert.pem"))
        #expect(try ws.dir.mode("target/ca-key.pem") == 0o600)
        expectSuccess(try await ws.meshca("audit", "verify", "--state-dir", target))
    }

    @Test("A ledger that does not verify fails the backup and the restore, and leaves nothing behind")
    func unverifiable() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try await ws.meshca("issue", "--sa", "was", "--out", "was"))
        expectSuccess(try await ws.meshca("issue", "--sa", "api", "--out", "api"))
        let good = ws.dir.file("good")
        expectSuccess(try await ws.meshca("backup", good))

        // A backup whose ledger was edited is not restored.
        try await sqlite(good + "/ledger.db", "UPDATE issuances SET not_after = not_after + 86400")
        let restore = try await ws.meshca("restore", good, "--state-dir", ws.dir.file("restored"))
        #expect(restore.status == 1)
        #expect(restore.stderr.contains("The backup \(good) does not verify"), "\(restore.stderr)")
        #expect(restore.stderr.contains("FAIL  the ledger was changed outside meshca"))
        #expect(!FileManager.default.fileExists(atPath: ws.dir.file("restored")))
        #expect(try siblings(of: ws.dir.file("restored")).isEmpty)

        // A backup whose key is not its certificate's is not restored.
        let other = try Workspace()
        defer { other.remove() }
        expectSuccess(try await other.meshca("init"))
        let mismatched = ws.dir.file("mismatched")
        expectSuccess(try await ws.meshca("backup", mismatched))
        try FileManager.default.removeItem(atPath: mismatched + "/ca-key.pem")
        try FileManager.default.copyItem(atPath: other.state + "/ca-key.pem", toPath: mismatched + "/ca-key.pem")
        let wrongKey = try await ws.meshca("restore", mismatched, "--state-dir", ws.dir.file("restored"))
        #expect(wrongKey.status == 1)
        #expect(wrongKey.stderr.contains("\(mismatched) is not a usable meshca backup"), "\(wrongKey.stderr)")
        #expect(!FileManager.default.fileExists(atPath: ws.dir.file("restored")))

        // A state directory whose ledger was edited is not backed up.
        try await sqlite(ws.state + "/ledger.db", "DELETE FROM issuances WHERE serial = (SELECT subject FROM ledger_events WHERE seq = 2)")
        let backup = try await ws.meshca("backup", ws.dir.file("second"))
        #expect(backup.status == 1)
        #expect(backup.stderr.contains("The backup of \(ws.state) does not verify"), "\(backup.stderr)")
        #expect(backup.stderr.contains("The copy was removed"))
        #expect(!FileManager.default.fileExists(atPath: ws.dir.file("second")))
        #expect(try siblings(of: ws.dir.file("second")).isEmpty)
    }

    /// Entries beside `path` whose names start with its name and a dot: staging or moved-aside directories.
    private func siblings(of path: String) throws -> [String] {
        let parent = (path as NSString).deletingLastPathComponent
        let base = (path as NSString).lastPathComponent
        return try FileManager.default.contentsOfDirectory(atPath: parent).filter { $0.hasPrefix(base + ".") }.sorted()
    }

    /// A serial in hex, lowercase, without leading zeros or surrounding space.
    private func normalized(_ serial: String) -> String {
        let hex = serial.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        let trimmed = hex.drop { $0 == "0" }
        return trimmed.isEmpty ? "0" : String(trimmed)
    }

    /// Runs `sql` on a ledger file with the sqlite3 shell, as a hand edit would.
    private func sqlite(_ path: String, _ sql: String) async throws {
        let result = try await Command.run("sqlite3", [path, sql])
        #expect(result.status == 0, "sqlite3: \(result.stderr)")
    }
}

/// A `meshca serve` on loopback for `state`.
private struct Served {
    let process: BackgroundProcess

    /// `create`: the state directory is empty and the daemon creates the CA (`--init-if-missing`).
    init(state: String, create: Bool = false) throws {
        process = try BackgroundProcess(
            Command.meshcaBinary,
            // No rate limit: on an idle machine the three workers issue more than the default 100 per minute for one
            // identity, and a refused issuance would fail the test for a reason it does not test.
            ["serve", "--state-dir", state, "--listen", "127.0.0.1:0", "--monitoring", "127.0.0.1:0", "--rate-limit", "off"]
                + (create ? ["--init-if-missing"] : []))
    }

    /// The gRPC address, once the daemon says it is listening.
    func address() async throws -> String {
        let ready = try await process.waitForLine(containing: "listening on")
        return try #require(ready.split(separator: " ").first { $0.hasPrefix("127.0.0.1:") }).description
    }
}

/// Issuances made by worker threads: what each returned, and when it started and ended.
private final class IssuanceLoad: Sendable {
    struct Issued: Sendable {
        let serial: String
        let started: ContinuousClock.Instant
        let ended: ContinuousClock.Instant
    }

    private let state = Mutex<(issued: [Issued], failures: [String], stopped: Bool)>(([], [], false))

    var issued: [Issued] { state.withLock { $0.issued } }
    var failures: [String] { state.withLock { $0.failures } }
    var isStopped: Bool { state.withLock { $0.stopped } }

    func stop() { state.withLock { $0.stopped = true } }

    /// Records one `meshca issue` run: its serial, or why it failed.
    func finished(_ result: Result<Command.Result, any Error>, started: ContinuousClock.Instant) {
        let ended = ContinuousClock.now
        let serial = (try? result.get()).flatMap { run in
            run.status == 0
                ? run.stdout.split(separator: "\n").first { $0.contains("serial") }?.split(separator: " ").last.map(String.init)
                : nil
        }
        state.withLock {
            if let serial {
                $0.issued.append(Issued(serial: serial, started: started, ended: ended))
            } else {
                $0.failures.append((try? result.get()).map { "exit \($0.status): \($0.stderr)" } ?? "\(result)")
            }
        }
    }

    /// Waits until at least `count` issuances have returned (or one failed); the deadline only guards against a hang.
    func waitFor(issued count: Int, timeout: Duration = .seconds(120)) async throws {
        try await Wait.until("\(count) issuances returned (\(state.withLock { $0.issued.count }) did)", timeout: timeout) {
            let (done, failures) = state.withLock { ($0.issued.count, $0.failures) }
            if !failures.isEmpty { throw CLIError("issuance failed: \(failures)") }
            return done >= count
        }
    }
}

import Foundation
import MeshCACore
import MeshCAIO
import MeshCATestSupport
import Synchronization
import Testing
import X509

/// A real `meshca-agent` process (the sidecar executable; `meshca agent` runs the same code).
final class TestAgent: Sendable {
    let process: BackgroundProcess
    let statusAddress: String
    let out: String

    static func start(
        daemonAddress: String, token: String, out: String, sa: String = "was", replacingToken: [String]? = nil, extra: [String] = []
    ) async throws -> TestAgent {
        let process = try BackgroundProcess(
            Command.agentBinary,
            ["--ca", daemonAddress, "--sa", sa, "--out", out] + (replacingToken ?? ["--token", token])
                + ["--status-addr", "127.0.0.1:0", "--jitter", "0"] + extra
        )
        let line = try await process.waitForLine(containing: "status on http://")
        let address = String(line.split(separator: "/").last ?? "")
        return TestAgent(process: process, statusAddress: address, out: out)
    }

    private init(process: BackgroundProcess, statusAddress: String, out: String) {
        self.process = process
        self.statusAddress = statusAddress
        self.out = out
    }

    /// `/status`, decoded; empty when the agent does not answer.
    ///
    /// Fetched in this process (the HTTP client of `meshca agent status`), not with curl: tests poll it every few
    /// milliseconds, and a process per poll was a twentieth of the suite's CPU. What curl sees of the agent's
    /// endpoints is tested where that is the point (AgentMetricsScrapeTests, docs/recipes.md).
    func status() async throws -> [String: Any] {
        guard let url = URL(string: "http://\(statusAddress)/status"),
            let answer = try? await HTTPFetch.get(url, maximumBodyBytes: 1 << 20, what: "an agent's status")
        else { return [:] }
        return (try? JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any]) ?? [:]
    }

    /// Polls `/status` until `condition` holds (a hang guard, not a speed expectation).
    func waitUntil(timeout: Duration = .seconds(90), _ condition: ([String: Any]) -> Bool) async throws -> [String: Any] {
        do {
            return try await Wait.value("the agent's /status matches", timeout: timeout) {
                let status = try await self.status()
                return condition(status) ? status : nil
            }
        } catch is WaitError {
            throw BackgroundProcessError("agent status never matched; last: \(try await self.status()); stderr:\n\(process.errorOutput)")
        }
    }

    func stop() { process.terminate() }
}

/// Counters shared with the reader thread.
final class ReaderCounts: Sendable {
    let reads = Atomic<Int>(0)
    let mismatches = Atomic<Int>(0)
    let stopped = Atomic<Bool>(false)
}

/// Reads the credentials the way the README tells readers to: resolve `..data` once, read all three.
func readConsistently(_ out: String) -> (leaf: Certificate, keyMatches: Bool)? {
    guard let version = try? FileManager.default.destinationOfSymbolicLink(atPath: out + "/..data") else { return nil }
    let base = out + "/" + version
    guard let chain = FileManager.default.contents(atPath: base + "/cert-chain.pem"),
        let key = FileManager.default.contents(atPath: base + "/key.pem"),
        let leaf = try? Certificate.parseAll(pem: String(decoding: chain, as: UTF8.self)).first,
        let privateKey = try? Certificate.PrivateKey(pemEncoded: String(decoding: key, as: UTF8.self))
    else { return nil }
    return (leaf, privateKey.publicKey == leaf.publicKey)
}

@Suite("meshca agent against a real meshca serve")
struct AgentTests {
    @Test("Bootstraps with a single-use token, renews over mTLS, swaps files atomically and runs --on-rotate")
    func renewals() async throws {
        let daemon = try await TestDaemon.start()
        defer { daemon.stop() }
        let out = daemon.directory.file("was")
        let hookLog = daemon.directory.file("hook.log")
        let agent = try await TestAgent.start(
            daemonAddress: daemon.address, token: try daemon.token(uses: 1), out: out,
            extra: [
                // Renewal with 75 % left: every 1.5 s, 4.5 s before expiry.
                "--ttl", "6s", "--grace-ratio", "0.75", "--on-rotate",
                "echo \"rotated $MESHCA_SPIFFE_ID $MESHCA_CERT_DIR\" >> \(hookLog); grep SigIgn /proc/$$/status >> \(hookLog).signals",
            ]
        )
        defer { agent.stop() }

        // A reader loop runs throughout and must never see a key that does not belong to the chain. It runs on
        // its own thread: the test's process calls block cooperative threads and must not starve it.
        let counts = ReaderCounts()
        let reader = Thread {
            while !counts.stopped.load(ordering: .relaxed) {
                if let snapshot = readConsistently(out) {
                    counts.reads.add(1, ordering: .relaxed)
                    if !snapshot.keyMatches { counts.mismatches.add(1, ordering: .relaxed) }
                }
                usleep(2000)  // paces the reader between reads; it waits for nothing
            }
        }
        reader.start()
        let status = try await agent.waitUntil { ($0["renewals"] as? Int ?? 0) >= 3 }
        counts.stopped.store(true, ordering: .relaxed)
        #expect(counts.mismatches.load(ordering: .relaxed) == 0)
        #expect(counts.reads.load(ordering: .relaxed) > 0)
        #expect(status["state"] as? String == "ok")
        #expect(status["spiffe_id"] as? String == "spiffe://cluster.local/ns/default/sa/was")
        #expect((status["outage_budget_seconds"] as? Int ?? 0) > 0)

        let rows = try await daemon.ledger().filter { ($0["spiffe_id"] as? String) == "spiffe://cluster.local/ns/default/sa/was" }
        #expect(rows.filter { ($0["auth_method"] as? String) == "token" }.count == 1)
        #expect(rows.filter { ($0["auth_method"] as? String) == "mtls" }.count >= 2)
        let hookRuns = (try? String(contentsOfFile: hookLog, encoding: .utf8))?.split(separator: "\n") ?? []
        #expect(hookRuns.count >= 3)
        #expect(hookRuns.allSatisfy { $0 == "rotated spiffe://cluster.local/ns/default/sa/was \(out)" }, "\(hookRuns)")
        // The hook starts with default signal handling (the agent itself ignores SIGPIPE, as SwiftNIO does): no
        // standard signal (1-31) is ignored in it.
        let ignored = (try? String(contentsOfFile: hookLog + ".signals", encoding: .utf8))?.split(separator: "\n") ?? []
        #expect(!ignored.isEmpty)
        for line in ignored {
            let mask = UInt64(line.split(separator: "\t").last ?? "", radix: 16)
            #expect(mask.map { $0 & 0x7fff_ffff } == 0, "\(line)")
        }
        #expect(try await Command.run("openssl", ["verify", "-CAfile", out + "/root-cert.pem", out + "/cert-chain.pem"]).status == 0)
        #expect(try daemon.directory.mode("was/..data/key.pem") == 0o600)
        #expect(try await Command.meshca(["inspect", out]).status == 0)

        // `meshca agent status` reads the same endpoint (over meshca's own HTTP client).
        let shown = try await Command.meshca(["agent", "status", "--status-addr", agent.statusAddress])
        #expect(shown.status == 0, "\(shown.stderr)")
        #expect(shown.stdout.contains("spiffe://cluster.local/ns/default/sa/was"))
        let nobody = try await Command.meshca(["agent", "status", "--status-addr", "127.0.0.1:1"])
        #expect(nobody.status != 0)
        #expect(nobody.stderr.contains("No agent answers at 127.0.0.1:1"))
        // And so does the sidecar executable's own `status`.
        let slim = try await Command.run(Command.agentBinary, ["status", "--status-addr", agent.statusAddress])
        #expect(slim.status == 0, "\(slim.stderr)")
        #expect(slim.stdout.contains("state          ok"))
    }

    @Test("CA down at start, then up: the agent retries and succeeds; CA down at renewal: files kept, error shown, recovery")
    func caOutages() async throws {
        let first = try await TestDaemon.start()
        let address = first.address
        // Two uses: when the certificate expires before the third daemon answers (starting it may wait for a
        // daemon slot on a busy machine), the agent bootstraps again with the token, which is also a recovery.
        let token = try await first.token(uses: 2)
        try await first.shutdown(keepDirectory: true)

        let out = first.directory.file("was")
        // 12 s renewed with 60 % left: renewal 4.8 s after receipt (time enough to stop the second daemon first), and
        // 7.2 s more before expiry, so the CA's absence at renewal is seen well before the certificate expires.
        let agent = try await TestAgent.start(daemonAddress: address, token: token, out: out, extra: ["--ttl", "12s", "--grace-ratio", "0.6"])
        defer { agent.stop() }
        let failing = try await agent.waitUntil { ($0["consecutive_failures"] as? Int ?? 0) >= 1 }
        #expect((failing["last_error"] as? String)?.contains("unreachable") == true, "\(failing)")

        let second = try await TestDaemon.start(directory: first.directory, listen: address)
        let ok = try await agent.waitUntil { $0["state"] as? String == "ok" }
        let serial = try #require(ok["serial"] as? String)
        try await second.shutdown(keepDirectory: true)

        // The CA is gone at renewal time: the files stay, the status says why, retries continue.
        let down = try await agent.waitUntil { ($0["consecutive_failures"] as? Int ?? 0) >= 1 && $0["serial"] as? String == serial }
        #expect(down["state"] as? String == "renewing-failed")
        #expect(readConsistently(out)?.leaf.serialHex == serial)

        let third = try await TestDaemon.start(directory: first.directory, listen: address)
        defer { third.stop() }
        let recovered = try await agent.waitUntil { $0["state"] as? String == "ok" && $0["serial"] as? String != serial }
        #expect(recovered["obtained_by"] as? String == "mtls" || recovered["obtained_by"] as? String == "token")
    }

    @Test("A restarted agent reuses valid files instead of asking the CA again")
    func restartReuses() async throws {
        let daemon = try await TestDaemon.start()
        defer { daemon.stop() }
        let out = daemon.directory.file("was")
        let token = try await daemon.token(uses: 1)
        let first = try await TestAgent.start(daemonAddress: daemon.address, token: token, out: out)
        _ = try await first.waitUntil { $0["state"] as? String == "ok" }
        first.stop()
        let before = try await daemon.ledger().count

        // The token is used up: only reusing the files on disk can make this agent healthy.
        let second = try await TestAgent.start(daemonAddress: daemon.address, token: token, out: out)
        defer { second.stop() }
        let status = try await second.waitUntil { $0["state"] as? String == "ok" }
        #expect(status["obtained_by"] as? String == "reused")
        await #expect(try daemon.ledger().count == before)
    }

    @Test("A CA refusal is reported in the status; an unwritable --out stops the agent at start with what to do")
    func refusals() async throws {
        let daemon = try await TestDaemon.start()
        defer { daemon.stop() }
        let wrongIdentity = try await daemon.token(sa: "admin", uses: 3)
        let refused = try await TestAgent.start(daemonAddress: daemon.address, token: wrongIdentity, out: daemon.directory.file("a"))
        defer { refused.stop() }
        let status = try await refused.waitUntil { $0["last_error"] is String }
        #expect((status["last_error"] as? String)?.contains("permissionDenied") == true, "\(status)")
        #expect(!FileManager.default.fileExists(atPath: daemon.directory.file("a/key.pem")))

        try daemon.directory.write("occupied", "x")
        let blocked = try await Command.meshca(["agent", "--ca", daemon.address, "--sa", "was", "--out", daemon.directory.file("occupied"), "--token", try await daemon.token(), "--status-addr", "off"])
        #expect(blocked.status == 1)
        #expect(blocked.stderr.contains("is a file, not a directory"), "\(blocked.stderr)")
    }
}

@Suite("meshca agent's Workload API, read by py-spiffe")
struct AgentWorkloadAPITests {
    @Test("py-spiffe reads the agent's identity from the socket and sees its renewal")
    func pySpiffe() async throws {
        let python = GRPCInteropTests.python
        #expect(FileManager.default.isExecutableFile(atPath: python), "no \(python): run scripts/test.sh, which creates it")
        let daemon = try await TestDaemon.start()
        defer { daemon.stop() }
        let socket = daemon.directory.file("run/agent.sock")
        let agent = try await TestAgent.start(
            daemonAddress: daemon.address, token: try daemon.token(), out: daemon.directory.file("was"),
            extra: ["--ttl", "6s", "--grace-ratio", "0.75", "--workload-api-socket", socket]
        )
        defer { agent.stop() }
        _ = try await agent.waitUntil { $0["state"] as? String == "ok" }
        let script = GRPCInteropTests.packageRoot + "/Tests/MeshCAAgentTests/interop/workload_api_client.py"
        let result = try await Command.run(python, [script, socket])
        #expect(result.status == 0, "\(result.stderr)")
        let line = try #require(result.stdout.split(separator: "\n").last { $0.hasPrefix("RESULT ") })
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(line.dropFirst("RESULT ".count).utf8)) as? [String: Any])
        #expect(summary["spiffe_id"] as? String == "spiffe://cluster.local/ns/default/sa/was")
        #expect(summary["key_matches_leaf"] as? Bool == true)
        #expect(summary["leaf_issuer_in_bundle"] as? Bool == true)
        #expect(summary["rotation_seen"] as? Bool == true, "\(summary)")
        #expect(summary["no_header_code"] as? String == "INVALID_ARGUMENT")
    }
}

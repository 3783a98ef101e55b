import Foundation
import GRPCCore
import MeshCACore
import MeshCATestSupport
import MeshCATransport
import Synchronization
import Testing
import X509

@Suite("Running meshca serve: monitoring, configuration errors, graceful shutdown")
struct DaemonOperationTests {
    /// GET over plain HTTP with curl (an independent client).
    func get(_ url: String) async throws -> (status: String, body: String) {
        let result = try await Command.run("curl", ["-s", "-w", "\n%{http_code}", url])
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        return (String(lines.last ?? ""), lines.dropLast().joined(separator: "\n"))
    }

    @Test("/healthz, /readyz and /metrics answer with Istio's metric names")
    func monitoring() async throws {
        let daemon = try await TestDaemon.start()
        defer { daemon.stop() }
        let token = try await daemon.token()
        _ = try await daemon.client().createCertificate(csrPEM: workloadCSR().pem, ttl: nil, headers: bearer(token))
        await #expect(try get("http://\(daemon.monitoring)/healthz").status == "200")
        await #expect(try get("http://\(daemon.monitoring)/readyz").status == "200")
        let metrics = try await get("http://\(daemon.monitoring)/metrics")
        #expect(metrics.status == "200")
        #expect(metrics.body.contains("citadel_server_csr_count 1"))
        #expect(metrics.body.contains("citadel_server_success_cert_issuance_count 1"))
        #expect(metrics.body.contains("citadel_server_root_cert_expiry_timestamp"))
        #expect(metrics.body.contains("meshca_issuance_duration_seconds_bucket"))
    }

    @Test("The serving certificate is issued by the CA for localhost and 127.0.0.1, and recorded")
    func servingCertificate() async throws {
        let daemon = try await TestDaemon.start(["--dns-name", "ca.example.internal"])
        defer { daemon.stop() }
        let port = daemon.address.split(separator: ":").last.map(String.init) ?? ""
        let probe = try await Command.run(
            "openssl",
            ["s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", daemon.stateDir + "/root-cert.pem", "-alpn", "h2", "-verify_return_error", "-verify_ip", "127.0.0.1"],
            stdin: ""
        )
        let text = probe.stdout + probe.stderr
        #expect(text.contains("Verify return code: 0 (ok)"), "\(text)")
        #expect(text.contains("ALPN protocol: h2"), "\(text)")
        let serving = try await #require(try daemon.ledger().first { ($0["auth_method"] as? String) == "internal" })
        let sans = serving["sans"] as? [String] ?? []
        #expect(sans.contains("DNS:ca.example.internal") && sans.contains("IP:127.0.0.1"))
    }

    @Test("Bad settings are all reported at start, each naming its key, before any port is bound")
    func configurationErrors() async throws {
        let directory = try TemporaryDirectory("config")
        defer { directory.remove() }
        try directory.write("meshca.yaml", "max-ttl: 500d\nlisten: nowhere\ncolour: blue\n")
        let result = try await Command.meshca(["serve", "--config", directory.file("meshca.yaml"), "--rate-limit", "fast", "--state-dir", directory.file("state")])
        #expect(result.status == 64)
        for key in ["max-ttl", "listen", "colour", "rate-limit"] {
            #expect(result.stderr.contains(key), "missing \(key) in: \(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: directory.file("state")))
    }

    @Test("SIGTERM with requests in flight: every request either gets a recorded certificate or an error, none is lost")
    func gracefulShutdown() async throws {
        let daemon = try await TestDaemon.start(["--rate-limit", "off"])
        defer { daemon.stop() }  // the test stops the process itself; this removes the directory and frees the slot
        let token = try await daemon.token(uses: 10_000)
        let client = try daemon.client()
        // Eight clients issue back to back until the daemon stops answering, so requests are always on the wire.
        // Each request notes whether it started before the signal and ended after it: in flight when it arrived.
        let progress = ShutdownProgress()
        let results = try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var serials: [String] = []
                    while true {
                        let csr = try workloadCSR().pem
                        let startedBeforeSignal = !progress.signalled
                        let chain = try? await client.createCertificate(csrPEM: csr, ttl: nil, headers: bearer(token))
                        if startedBeforeSignal, progress.signalled { progress.inFlightAtSignal.add(1, ordering: .relaxed) }
                        guard let chain else { return serials }
                        serials.append(try CredentialBundle(istioChain: chain).leaf.serialHex)
                        progress.completed.add(1, ordering: .relaxed)
                    }
                }
            }
            // The signal goes once the daemon is busy: some requests answered, the clients still sending.
            try await Wait.until("the daemon answered 20 requests") { progress.completed.load(ordering: .relaxed) >= 20 }
            progress.signal()
            _ = try await daemon.process.stop()
            return try await group.reduce(into: [String]()) { $0 += $1 }
        }
        #expect(!daemon.process.isRunning)
        #expect(progress.inFlightAtSignal.load(ordering: .relaxed) > 0, "no request was in flight when SIGTERM arrived")
        let issued = Set(results)
        let recorded = await Set(try daemon.ledger().filter { ($0["auth_method"] as? String) == "token" }.compactMap { $0["serial"] as? String })
        #expect(issued.isSubset(of: recorded), "handed out but not recorded: \(issued.subtracting(recorded))")
        #expect(daemon.process.errorOutput.contains("stopped"))
    }
}

/// What the clients of ``DaemonOperationTests/gracefulShutdown()`` saw around the signal.
final class ShutdownProgress: Sendable {
    let completed = Atomic<Int>(0)
    let inFlightAtSignal = Atomic<Int>(0)
    private let sent = Atomic<Bool>(false)
    var signalled: Bool { sent.load(ordering: .sequentiallyConsistent) }
    func signal() { sent.store(true, ordering: .sequentiallyConsistent) }
}

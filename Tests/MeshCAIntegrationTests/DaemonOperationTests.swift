import Foundation
import GRPCCore
import MeshCACore
import MeshCATestSupport
import MeshCATransport
import Testing
import X509

@Suite("Running meshca serve: monitoring, configuration errors, graceful shutdown", .serialized)
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

    @Test("SIGTERM during a burst: every request either gets a recorded certificate or an error, none is lost")
    func gracefulShutdown() async throws {
        let daemon = try await TestDaemon.start(["--rate-limit", "off"])
        defer { daemon.stop() }  // the test stops the process itself; this removes the directory and frees the slot
        let token = try await daemon.token(uses: 200)
        let client = try daemon.client()
        let csrs = try (0..<60).map { _ in try workloadCSR().pem }
        let results = try await withThrowingTaskGroup(of: String?.self) { group in
            for (index, csr) in csrs.enumerated() {
                group.addTask {
                    try await Task.sleep(for: .milliseconds(index * 5))
                    guard let chain = try? await client.createCertificate(csrPEM: csr, ttl: nil, headers: bearer(token)) else { return nil }
                    return try CredentialBundle(istioChain: chain).leaf.serialHex
                }
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(120))
                _ = try await daemon.process.stop()
                return "stopped"
            }
            return try await group.reduce(into: [String?]()) { $0.append($1) }
        }
        #expect(!daemon.process.isRunning)
        let issued = Set(results.compactMap { $0 }.filter { $0 != "stopped" })
        let recorded = await Set(try daemon.ledger().filter { ($0["auth_method"] as? String) == "token" }.compactMap { $0["serial"] as? String })
        #expect(issued.isSubset(of: recorded), "handed out but not recorded: \(issued.subtracting(recorded))")
        #expect(daemon.process.errorOutput.contains("stopped"))
    }
}

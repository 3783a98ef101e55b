import Foundation
import MeshCATestSupport
import MeshCATransport
import Testing

/// The agent's `/metrics` on its status address, scraped from a real `meshca-agent` against a real `meshca serve`;
/// and every metric the Grafana dashboard and the alert rules in deploy/monitoring query, found in real scrapes.
@Suite("Agent metrics and the monitoring assets, scraped from real processes")
struct AgentMetricsScrapeTests {
    /// A daemon and an agent (with `--crl-url` and a Workload API socket) that has its first certificate and CRL.
    static func withAgent(_ body: (TestDaemon, TestAgent) async throws -> Void) async throws {
        let daemon = try await TestDaemon.start()
        defer { daemon.stop() }
        let agent = try await TestAgent.start(
            daemonAddress: daemon.address, token: try daemon.token(), out: daemon.directory.file("was"),
            extra: [
                "--ttl", "1h", "--crl-url", "http://\(daemon.monitoring)/crl",
                "--workload-api-socket", daemon.directory.file("run/agent.sock"),
            ])
        defer { agent.stop() }
        _ = try await agent.waitUntil { $0["state"] as? String == "ok" && $0["crl_number"] is Int }
        try await body(daemon, agent)
    }

    @Test("/metrics shows the certificate's expiry and time left, next renewal, renewals, failures by reason, clients, CRL age, build")
    func agentScrape() async throws {
        try await Self.withAgent { _, agent in
            let status = try await agent.status()
            let scrape = try await Scrape.fetch("http://\(agent.statusAddress)/metrics")
            let now = Date().timeIntervalSince1970
            let formatter = ISO8601DateFormatter()
            let notAfter = try #require((status["not_after"] as? String).flatMap(formatter.date(from:))).timeIntervalSince1970
            let nextRenewal = try #require((status["next_renewal"] as? String).flatMap(formatter.date(from:))).timeIntervalSince1970
            #expect(scrape["meshca_agent_certificate_expiry_timestamp_seconds"] == notAfter)
            let left = try #require(scrape["meshca_agent_certificate_expiry_seconds"])
            #expect(abs(left - (notAfter - now)) < 60, "\(left) seconds left, notAfter in \(notAfter - now)")
            #expect(left > 3_000 && left <= 3_600)
            #expect(scrape["meshca_agent_next_renewal_timestamp_seconds"] == nextRenewal)
            #expect(nextRenewal > now && nextRenewal < notAfter)
            #expect(scrape["meshca_agent_renewals_total"] == 1)
            #expect(scrape["meshca_agent_consecutive_failures"] == 0)
            let reasons = ["ca-unreachable", "refused", "bootstrap-refused", "invalid-answer", "write-failed", "configuration", "other"]
            #expect(scrape.series(of: "meshca_agent_renewal_failures_total").map(\.series).sorted()
                == reasons.map { "meshca_agent_renewal_failures_total{reason=\"\($0)\"}" }.sorted())
            #expect(scrape.series(of: "meshca_agent_renewal_failures_total").allSatisfy { $0.value == 0 })
            #expect(scrape["meshca_agent_workload_api_clients"] == 0)
            let crlAge = try #require(scrape["meshca_agent_crl_age_seconds"])
            #expect(crlAge >= 0 && crlAge < 600)
            #expect((scrape["meshca_agent_crl_next_update_timestamp_seconds"] ?? 0) > now)
            let build = scrape.series(of: "meshca_agent_build_info")
            #expect(build.count == 1 && build.first?.value == 1)
            #expect(build.first?.series.hasPrefix("meshca_agent_build_info{version=\"0.1.0\",commit=\"") == true, "\(build)")
            #expect((scrape["process_resident_memory_bytes"] ?? 0) > 1_000_000)
            #expect(scrape["process_open_fds"] != nil)
            // The sample values, for the record.
            print(scrape.samples.filter { $0.series.hasPrefix("meshca_agent_") }.map { "SAMPLE \($0.series) \($0.value)" }.joined(separator: "\n"))
        }
    }

    /// Metric names a query in `text` uses: the identifiers with meshca's, Istio's or the process prefix.
    static func metricNames(in text: String) -> Set<String> {
        let pattern = /\b(?:meshca|citadel_server|process)_[a-z0-9_]+/
        return Set(text.matches(of: pattern).map { String($0.output) })
    }

    /// Every query in the dashboard and every expression of the alert rules.
    static func queriedMetrics() throws -> Set<String> {
        let monitoring = GRPCInteropTests.packageRoot + "/deploy/monitoring/"
        let dashboard = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: monitoring + "meshca-dashboard.json")))
        var queries: [String] = []
        func collect(_ value: Any) {
            if let object = value as? [String: Any] {
                for (key, field) in object {
                    if (key == "expr" || key == "query"), let text = field as? String { queries.append(text) } else { collect(field) }
                }
            } else if let array = value as? [Any] {
                array.forEach(collect)
            }
        }
        collect(dashboard)
        // The rules file's expressions (its comments name no metric; a stray name there would only make the test stricter).
        queries.append(try String(contentsOfFile: monitoring + "meshca-alerts.yml", encoding: .utf8))
        return queries.reduce(into: Set()) { $0.formUnion(metricNames(in: $1)) }
    }

    /// Metrics that appear only after something went wrong, which a healthy run cannot show.
    static let onlyAfterAnError: [String: String] = [
        "citadel_server_csr_sign_err_count": "a certificate could not be signed or recorded in the ledger (labelled series appear on the first error)",
    ]

    @Test("Every metric the Grafana dashboard and the alert rules query appears in a scrape of the daemon or the agent")
    func dashboardAndRulesUseScrapedMetrics() async throws {
        let queried = try Self.queriedMetrics()
        #expect(queried.count > 20, "\(queried.sorted())")
        #expect(queried.contains("meshca_agent_certificate_expiry_seconds"))
        try await Self.withAgent { daemon, agent in
            // One refusal besides the agent's issuance, so the refusal counter has a series.
            let garbage = await RPCResult.code { _ = try await daemon.client().createCertificate(csrPEM: "not a CSR", ttl: nil) }
            #expect(garbage != nil)
            // A signed checkpoint, as the daily `audit verify --checkpoint` makes, so the checkpoint age shows.
            let verify = try await daemon.meshca("audit", "verify", "--checkpoint")
            #expect(verify.status == 0, "\(verify.stderr)")
            let daemonScrape = try await Scrape.fetch("http://\(daemon.monitoring)/metrics", until: "the checkpoint age") {
                $0["meshca_ledger_checkpoint_age_seconds"] != nil
            }
            let agentScrape = try await Scrape.fetch("http://\(agent.statusAddress)/metrics")
            // Histograms are queried by their _bucket series, which the scrape lists by that name.
            let scraped = daemonScrape.names.union(agentScrape.names)
            let missing = queried.subtracting(scraped).subtracting(Self.onlyAfterAnError.keys)
            #expect(missing.isEmpty, "queried but not scraped: \(missing.sorted())")
            let stale = Set(Self.onlyAfterAnError.keys).subtracting(queried)
            #expect(stale.isEmpty, "listed as error-only but no longer queried: \(stale.sorted())")
        }
    }
}

import Crypto
import Foundation
import GRPCCore
import MeshCATransport
import MeshCATestSupport
import Testing

/// One scrape of a `/metrics` page: sample lines as `name{labels}` -> value, in the order they came.
struct Scrape {
    let samples: [(series: String, value: Double)]

    init(_ text: String) {
        samples = text.split(separator: "\n").compactMap { line in
            guard !line.hasPrefix("#"), let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                return nil
            }
            return (String(line[..<space]), value)
        }
    }

    /// The metric names present (the part before `{`).
    var names: Set<String> { Set(samples.map { String($0.series.prefix { $0 != "{" }) }) }

    /// The value of the one series named exactly `series` (with its labels, if any).
    subscript(series: String) -> Double? { samples.first { $0.series == series }?.value }

    /// Every series of metric `name`.
    func series(of name: String) -> [(series: String, value: Double)] {
        samples.filter { $0.series == name || $0.series.hasPrefix(name + "{") }
    }

    /// GETs `url` with curl (an independent client).
    static func fetch(_ url: String) async throws -> Scrape {
        let result = try await Command.run("curl", ["-sf", url])
        guard result.status == 0 else { throw BackgroundProcessError("curl \(url) failed: \(result.stderr)") }
        return Scrape(result.stdout)
    }

    /// Scrapes until `condition` holds (the daemon refreshes some gauges every second); fails naming `what`
    /// after 20 s.
    static func fetch(_ url: String, until what: String, _ condition: @escaping (Scrape) -> Bool) async throws -> Scrape {
        try await Wait.value("a scrape of \(url) shows \(what)", timeout: .seconds(20)) {
            let scrape = try await fetch(url)
            return condition(scrape) ? scrape : nil
        }
    }
}

@Suite("Every daemon metric, scraped from a real meshca serve")
struct DaemonMetricsTests {
    @Test("Istio's expiry gauges in seconds, ID extraction errors, build info, ledger, CRL, gRPC status and process metrics")
    func scrape() async throws {
        let directory = try TemporaryDirectory("metrics")
        let signingKey = P256.Signing.PrivateKey()
        try directory.write("jwks.pem", signingKey.publicKey.pemRepresentation)
        let issuer = "https://kubernetes.default.svc.cluster.local"
        let daemon = try await TestDaemon.start(["--jwt-keys", directory.file("jwks.pem"), "--jwt-issuer", issuer], directory: directory)
        defer { daemon.stop() }
        let url = "http://\(daemon.monitoring)/metrics"
        let token = try await daemon.token(uses: 2)
        let client = try daemon.client()
        _ = try await client.createCertificate(csrPEM: workloadCSR().pem, ttl: nil, headers: bearer(token))
        let garbage = await RPCResult.code { _ = try await client.createCertificate(csrPEM: "not a CSR", ttl: nil, headers: bearer(token)) }
        #expect(garbage == .invalidArgument)
        // A valid JWT that names no service account: the identity cannot be extracted.
        let now = Int(Date().timeIntervalSince1970)
        let anonymous = try JWTText.es256(["iss": issuer, "aud": ["istio-ca"], "exp": now + 600, "iat": now, "sub": "someone"], key: signingKey)
        let extraction = await RPCResult.code { _ = try await client.createCertificate(csrPEM: workloadCSR().pem, ttl: nil, headers: bearer(anonymous)) }
        #expect(extraction == .unauthenticated)
        // A signed checkpoint, so its age shows.
        let verify = try await daemon.meshca("audit", "verify", "--checkpoint")
        #expect(verify.status == 0, "\(verify.stderr)")

        let scrape = try await Scrape.fetch(url, until: "the checkpoint age") { $0["meshca_ledger_checkpoint_age_seconds"] != nil }
        let clock = Date().timeIntervalSince1970
        let rootExpiry = try #require(scrape["citadel_server_root_cert_expiry_timestamp"])
        let rootSeconds = try #require(scrape["citadel_server_root_cert_expiry_seconds"])
        #expect(abs(rootSeconds - (rootExpiry - clock)) < 60, "seconds left \(rootSeconds) vs timestamp \(rootExpiry)")
        #expect(rootSeconds > 86_400 * 365)
        let chainSeconds = try #require(scrape["citadel_server_cert_chain_expiry_seconds"])
        #expect(abs(chainSeconds - (try #require(scrape["citadel_server_cert_chain_expiry_timestamp"]) - clock)) < 60)
        #expect(scrape["citadel_server_id_extraction_err_count"] == 1)
        #expect(scrape["citadel_server_authentication_failure_count"] == 1)
        #expect(scrape.series(of: "meshca_build_info").count == 1)
        #expect(scrape.series(of: "meshca_build_info").first?.series.contains("version=\"0.1.0\",commit=\"") == true)
        #expect(scrape.series(of: "meshca_build_info").first?.value == 1)
        #expect((scrape["meshca_ledger_database_bytes"] ?? 0) > 4096)
        #expect(scrape["meshca_ledger_wal_bytes"] != nil)
        // The serving certificate, the token, its use, the issuance, two rejections: at least 6 events.
        #expect((scrape["meshca_ledger_events"] ?? 0) >= 6)
        #expect((scrape["meshca_ledger_checkpoint_age_seconds"] ?? -1) >= 0)
        #expect((scrape["meshca_ledger_checkpoint_age_seconds"] ?? .infinity) < 60)
        #expect(abs((scrape["meshca_ledger_checkpoint_timestamp_seconds"] ?? 0) - clock) < 60)
        #expect(scrape["meshca_ledger_usable"] == 1)
        #expect(scrape["meshca_ca_usable"] == 1)
        let nextUpdate = try #require(scrape["meshca_crl_next_update_timestamp_seconds"])
        #expect(nextUpdate > clock)
        let create = "istio.v1.auth.IstioCertificateService/CreateCertificate"
        #expect(scrape["meshca_grpc_requests_total{method=\"\(create)\",code=\"OK\"}"] == 1)
        #expect(scrape["meshca_grpc_requests_total{method=\"\(create)\",code=\"INVALID_ARGUMENT\"}"] == 1)
        #expect(scrape["meshca_grpc_requests_total{method=\"\(create)\",code=\"UNAUTHENTICATED\"}"] == 1)
        let rss = try #require(scrape["process_resident_memory_bytes"])
        #expect(rss > 1_000_000 && rss < 4_000_000_000)
        #expect((scrape["process_open_fds"] ?? 0) > 3)
        #expect((scrape["process_max_fds"] ?? 0) >= (scrape["process_open_fds"] ?? 0))
        let started = try #require(scrape["process_start_time_seconds"])
        #expect(started <= clock && started > clock - 600)
        #expect(scrape["process_cpu_seconds_total"] != nil)
        #expect(scrape["meshca_rejections_total{reason=\"malformed-csr\"}"] == 1)
    }
}

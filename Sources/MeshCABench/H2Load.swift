import Foundation
import MeshCAErrors
import MeshCATestSupport
import MeshCAPlatform

/// Phase 7: an independent load generator, `h2load` (nghttp2's benchmarking client, Debian's
/// `nghttp2-client`), driving both servers with one connection per client and one request in flight per
/// connection (`-c N -m 1`): gRPC over TLS to `meshca serve`, HTTP/1.1 (`--h1`) to `cfssl serve`, the same CSR
/// in every request of a level. A server can look fast to the client its own team wrote and slow to everyone
/// else's; this client shares no code with meshca.
///
/// meshca answers a repeated request (same credential, same key, within its `retry-window`) with the certificate
/// it already issued and signs nothing; with one CSR per level every request after the first would be such a
/// repeat, so this phase runs its own daemon with `--retry-window off`, where each request is an issuance, as at cfssl.
///
/// h2load counts a request as succeeded when its HTTP status is 2xx. A gRPC call that fails still answers
/// HTTP 200, with the failure in `grpc-status` in the trailers, which h2load does not read. So the server's
/// own record decides: after each level the ledger (or cfssl's certificate database) must have grown by
/// exactly the number of 2xx answers, which for meshca also proves that every one of them carried
/// grpc-status 0 (a certificate is only answered after its ledger row commits, and only a certificate is
/// answered with status 0). A mismatch fails the run.
struct H2Load {
    /// The h2load executable.
    let binary: String

    /// `explicit`, else h2load on PATH (scripts/bench.sh installs nghttp2-client).
    static func locate(explicit: String?) -> H2Load? {
        (explicit ?? CFSSLServe.which("h2load")).map(H2Load.init(binary:))
    }

    /// One level's figures.
    struct Level {
        var concurrency: Int
        /// Requests sent.
        var requests: Int
        /// What h2load reports: requests it counted as succeeded (HTTP 2xx), failed (other status), errored
        /// (stream or connection error) and timed out.
        var succeeded: Int
        var failed: Int
        var errored: Int
        var timedOut: Int
        /// Rows the server's record gained during the level.
        var recorded: Int
        /// h2load's own duration of the level (from its first connection to its last response).
        var seconds: Double
        /// Each successful request's time from sending to the end of its stream, ascending, in milliseconds
        /// (from h2load's `--log-file`).
        var latencies: [Double]
        var serverCPUSeconds: Double?
        var generatorCPUSeconds: Double

        /// Issuances per second, counting only what the server recorded.
        var rate: Double { Double(recorded) / seconds }
        var recordedExactly: Bool { recorded == succeeded && succeeded == requests }
        func percentile(_ p: Double) -> Double { nearestRank(latencies, p) }
        var mean: Double { latencies.isEmpty ? .nan : latencies.reduce(0, +) / Double(latencies.count) }
        var serverMicrosecondsPerIssuance: Double? { serverCPUSeconds.map { $0 * 1e6 / Double(max(recorded, 1)) } }

        var json: [String: Any] {
            var document: [String: Any] = [
                "concurrency": concurrency, "connections": concurrency, "requests": requests, "h2load_succeeded_2xx": succeeded,
                "h2load_failed": failed, "h2load_errored": errored, "h2load_timeout": timedOut, "recorded": recorded,
                "recorded_exactly": recordedExactly, "seconds": seconds, "issuances_per_second": rate, "mean_ms": mean,
                "p50_ms": percentile(0.5), "p90_ms": percentile(0.9), "p99_ms": percentile(0.99), "max_ms": latencies.last ?? .nan,
                "load_generator_cpu_seconds": generatorCPUSeconds,
            ]
            if let serverCPUSeconds { document["server_cpu_seconds"] = serverCPUSeconds }
            if let serverMicrosecondsPerIssuance { document["server_cpu_us_per_issuance"] = serverMicrosecondsPerIssuance }
            return document
        }
    }

    /// gRPC over TLS to meshca's `CreateCertificate`: `requests` calls of `csr` with `level` connections.
    /// `recorded` counts the ledger rows of the level's service account.
    func meshca(
        address: String, token: String, csr: String, level: Int, requests: Int, serverPID: Int32, directory: TemporaryDirectory,
        recorded: () async throws -> Int
    ) async throws -> Level {
        let body = directory.file("h2load-grpc-c\(level).bin")
        try Data(Self.grpcFrame(Self.istioCertificateRequest(csr: csr))).write(to: URL(fileURLWithPath: body))
        return try await run(
            level: level, requests: requests, serverPID: serverPID, directory: directory, recorded: recorded,
            arguments: [
                "-d", body, "-H", "content-type: application/grpc", "-H", "te: trailers", "-H", "authorization: Bearer \(token)",
                "https://\(address)/istio.v1.auth.IstioCertificateService/CreateCertificate",
            ])
    }

    /// HTTP/1.1 to cfssl's `POST /api/v1/cfssl/sign`; `recorded` counts the rows of its certificate database.
    func cfssl(port: Int, csr: String, level: Int, requests: Int, serverPID: Int32, directory: TemporaryDirectory, recorded: () async throws -> Int) async throws -> Level {
        let body = directory.file("h2load-cfssl-c\(level).json")
        try JSONSerialization.data(withJSONObject: ["certificate_request": csr]).write(to: URL(fileURLWithPath: body))
        return try await run(
            level: level, requests: requests, serverPID: serverPID, directory: directory, recorded: recorded,
            arguments: ["--h1", "-d", body, "-H", "content-type: application/json", "http://127.0.0.1:\(port)/api/v1/cfssl/sign"])
    }

    private func run(
        level: Int, requests: Int, serverPID: Int32, directory: TemporaryDirectory, recorded: () async throws -> Int, arguments: [String]
    ) async throws -> Level {
        let log = directory.file("h2load-\(UUID().uuidString).log")
        let requests = max(requests, level)  // h2load needs at least one request per client
        let before = try await recorded()
        let serverBefore = ProcessStats.cpuSeconds(pid: serverPID)
        let childrenBefore = ProcessStats.childrenCPUSeconds
        let run = try Command.runBlocking(binary, ["-n", String(requests), "-c", String(level), "-m", "1", "-t", "1", "--log-file", log] + arguments)
        let serverAfter = ProcessStats.cpuSeconds(pid: serverPID)
        let childrenAfter = ProcessStats.childrenCPUSeconds
        guard run.status == 0 else { throw BenchError(.toolFailed, "h2load exited \(run.status): \(run.stderr.suffix(500))\(run.stdout.suffix(500))") }
        let counts = try Self.counts(run.stdout)
        let latencies = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").compactMap { line -> Double? in
            let fields = line.split(separator: "\t")
            guard fields.count == 3, let status = Int(fields[1]), (200..<300).contains(status), let micros = Double(fields[2]) else { return nil }
            return micros / 1000
        }
        return Level(
            concurrency: level, requests: requests, succeeded: counts.succeeded, failed: counts.failed, errored: counts.errored,
            timedOut: counts.timedOut, recorded: try await recorded() - before, seconds: counts.seconds, latencies: latencies.sorted(),
            serverCPUSeconds: zip2(serverBefore, serverAfter).map { $0.1 - $0.0 }, generatorCPUSeconds: childrenAfter - childrenBefore)
    }

    /// The counts and duration from h2load's summary:
    /// `finished in 1.23s, 812.30 req/s, 1.05MB/s` and
    /// `requests: 1000 total, 1000 started, 1000 done, 1000 succeeded, 0 failed, 0 errored, 0 timeout`.
    static func counts(_ output: String) throws -> (succeeded: Int, failed: Int, errored: Int, timedOut: Int, seconds: Double) {
        func seconds(_ text: Substring) -> Double? {
            for (suffix, scale) in [("ms", 1e-3), ("us", 1e-6), ("s", 1.0)] where text.hasSuffix(suffix) {
                return Double(text.dropLast(suffix.count)).map { $0 * scale }
            }
            return nil
        }
        let lines = output.split(separator: "\n")
        guard let finished = lines.first(where: { $0.hasPrefix("finished in ") }),
            let duration = finished.dropFirst("finished in ".count).split(separator: ",").first.flatMap(seconds),
            let requests = lines.first(where: { $0.hasPrefix("requests: ") })
        else { throw BenchError(.badResponse, "h2load printed no summary: \(output.suffix(500))") }
        var counts: [String: Int] = [:]
        for part in requests.dropFirst("requests: ".count).split(separator: ",") {
            let words = part.split(separator: " ")
            if words.count == 2, let value = Int(words[0]) { counts[String(words[1])] = value }
        }
        guard let succeeded = counts["succeeded"] else { throw BenchError(.badResponse, "h2load's summary has no succeeded count: \(requests)") }
        return (succeeded, counts["failed"] ?? 0, counts["errored"] ?? 0, counts["timeout"] ?? 0, duration)
    }

    /// The protobuf encoding of `istio.v1.auth.IstioCertificateRequest { csr = 1 }`, written out here so the
    /// request shares no code with meshca's client.
    static func istioCertificateRequest(csr: String) -> [UInt8] {
        [0x0A] + varint(UInt64(csr.utf8.count)) + Array(csr.utf8)
    }

    /// A gRPC length-prefixed message: not compressed, 4-byte big-endian length.
    static func grpcFrame(_ message: [UInt8]) -> [UInt8] {
        let length = UInt32(message.count)
        return [0, UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)] + message
    }

    static func varint(_ value: UInt64) -> [UInt8] {
        var value = value
        var bytes: [UInt8] = []
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        return bytes + [UInt8(value)]
    }
}

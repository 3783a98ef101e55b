import ArgumentParser
import Foundation
import GRPCCore
import MeshCACore
import MeshCALedger
import MeshCATestSupport
import MeshCATransport
import X509

/// `meshca-bench`: issuance throughput and latency of a real `meshca serve` over gRPC/TLS.
///
/// The daemon runs as its own process with a durable ledger (synchronous=FULL); this process is the
/// load generator. CSRs are generated before timing starts. After each level the ledger is read back
/// and must hold exactly the serials that were handed out.
@main
struct IssuanceBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshca-bench",
        abstract: "Benchmark certificate issuance through meshca serve (build with -c release for real numbers)."
    )

    @Option(help: "Issuances per concurrency level.")
    var requests: Int = 2000

    @Option(help: "Comma-separated concurrency levels (requests in flight).")
    var concurrency: String = "1,8,64"

    @Option(help: "The meshca binary to run as the daemon (default: the one next to this program).")
    var meshca: String?

    @Option(help: "Write the results as JSON to this file.")
    var json: String?

    func run() async throws {
        let levels = concurrency.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.filter { $0 > 0 }
        guard !levels.isEmpty, requests > 0 else { throw ValidationError("--requests and --concurrency must be positive.") }
        let binary = meshca ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("meshca").path
        let directory = try TemporaryDirectory("bench")
        defer { directory.remove() }
        let state = directory.file("state")
        let daemon = try BackgroundProcess(binary, ["serve", "--listen", "127.0.0.1:0", "--monitoring", "127.0.0.1:0", "--state-dir", state, "--rate-limit", "off", "--log-level", "warning"])
        defer { daemon.terminate() }
        let line = try await daemon.waitForLine(containing: "listening on")
        let words = line.split(separator: " ")
        let address = String(words[(words.firstIndex(of: "on") ?? 0) + 1])
        let roots = try Certificate.parseAll(pem: String(contentsOfFile: state + "/root-cert.pem", encoding: .utf8))
        let client = try CAClient(address: address, trust: .roots(roots))
        let ledger = try SQLiteLedger(path: state + "/ledger.db")
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "" } ?? "unknown"
        print("meshca-bench: \(requests) issuances per level, ECDSA P-256 CA and workload keys, durable ledger")
        print("machine: \(cpu), \(ProcessInfo.processInfo.activeProcessorCount) cores")
        print("concurrency  issuances/s  p50 ms  p90 ms  p99 ms  ledger")
        var results: [[String: Any]] = []
        for level in levels {
            let result = try await runLevel(level, client: client, directory: directory, state: state, ledger: ledger)
            print(
                String(level).padding(toLength: 13, withPad: " ", startingAt: 0)
                    + String(format: "%11.0f  %6.2f  %6.2f  %6.2f  %@", result.rate, result.p50, result.p90, result.p99, result.ledgerOK ? "exact" : "MISMATCH")
            )
            results.append(["concurrency": level, "issuances_per_second": result.rate, "p50_ms": result.p50, "p90_ms": result.p90, "p99_ms": result.p99, "ledger_exact": result.ledgerOK])
            guard result.ledgerOK else { throw ValidationError("the ledger does not hold exactly the issued serials at concurrency \(level)") }
        }
        let rss = Self.peakRSS(pid: daemon.pid)
        print("daemon peak RSS: \(rss.map { "\($0 / 1024) MiB" } ?? "unknown")")
        if let json {
            let document: [String: Any] = ["cpu": cpu, "cores": ProcessInfo.processInfo.activeProcessorCount, "requests_per_level": requests, "levels": results, "daemon_peak_rss_kib": rss ?? -1]
            try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: json))
        }
    }

    struct LevelResult {
        var rate: Double
        var p50: Double
        var p90: Double
        var p99: Double
        var ledgerOK: Bool
    }

    func runLevel(_ level: Int, client: CAClient, directory: TemporaryDirectory, state: String, ledger: SQLiteLedger) async throws -> LevelResult {
        let sa = "bench-\(level)"
        let token = try Command.meshca(["token", "create", "--sa", sa, "--uses", String(requests), "--ttl", "1h", "--state-dir", state])
        guard token.status == 0 else { throw ValidationError("token create failed: \(token.stderr)") }
        let headers: Metadata = ["authorization": "Bearer \(token.stdout.trimmingCharacters(in: .whitespacesAndNewlines))"]
        let identity = try SPIFFEID(trustDomain: TrustDomain("cluster.local"), namespace: "default", serviceAccount: sa)
        let csrs = try (0..<requests).map { _ in try WorkloadCSR.pem(WorkloadCSR.make(for: identity, key: KeyType.ecP256.generate())) }
        let connections = min(level, 8)
        let started = ContinuousClock.now
        let outcomes = try await withThrowingTaskGroup(of: [(String, Double)].self) { group in
            for connection in 0..<connections {
                let workers = (0..<level).filter { $0 % connections == connection }
                group.addTask {
                    try await client.withConnection { open in
                        try await withThrowingTaskGroup(of: [(String, Double)].self) { inner in
                            for worker in workers {
                                inner.addTask {
                                    var done: [(String, Double)] = []
                                    for index in stride(from: worker, to: csrs.count, by: level) {
                                        let begin = ContinuousClock.now
                                        let chain = try await open.createCertificate(csrPEM: csrs[index], ttl: nil, headers: headers)
                                        let elapsed = ContinuousClock.now - begin
                                        let serial = try Certificate.parseAll(pem: chain[0])[0].serialHex
                                        done.append((serial, Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000))
                                    }
                                    return done
                                }
                            }
                            return try await inner.reduce(into: []) { $0 += $1 }
                        }
                    }
                }
            }
            return try await group.reduce(into: [(String, Double)]()) { $0 += $1 }
        }
        let wall = ContinuousClock.now - started
        let seconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
        let latencies = outcomes.map(\.1).sorted()
        func percentile(_ p: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
        let recorded = Set(try await ledger.issuances(matching: IssuanceQuery(serviceAccount: sa)).map(\.serial))
        return LevelResult(
            rate: Double(outcomes.count) / seconds, p50: percentile(0.5), p90: percentile(0.9), p99: percentile(0.99),
            ledgerOK: recorded == Set(outcomes.map(\.0)) && outcomes.count == requests
        )
    }

    /// VmHWM of a process, in KiB.
    static func peakRSS(pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return nil }
        return Int(line.split(separator: " ").dropFirst().first ?? "")
    }
}

import ArgumentParser
import Foundation
import MeshCACore
import MeshCATestSupport
import X509

/// `meshca-bench`: meshca's issuance measured on this machine, in one run, against the crypto bound and
/// against cfssl (`scripts/bench.sh` builds it in release mode and runs it).
///
/// Phases, in order: (1) ECDSA P-256 sign/verify rates through swift-crypto; (2) a real `meshca serve`
/// process driven over gRPC/TLS at each concurrency level; (5a) its peak RSS and (5b) a `meshca-agent`'s
/// steady RSS; (3) `cfssl serve` with its SQLite certificate database, given the same CSRs at the same
/// levels over HTTP; (4) one-shot `meshca issue` against `cfssl gencert`; (6) `meshca audit list` over a
/// ledger of a million issuances. This process is the load generator for both servers; CSRs are
/// generated before timing starts. Prints one table and writes it, with every detail, as JSON.
@main
struct IssuanceBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshca-bench",
        abstract: "Benchmark meshca's issuance against the crypto bound and cfssl (build with -c release for real numbers).",
        discussion: """
            Options left unset take full-size defaults, or tiny ones in a smoke run (--smoke, or --requests below 100): \
            crypto 50 ms per figure, 2 one-shot runs, a 1,000-row ledger, and cfssl only when already installed.
            """
    )

    @Option(help: "Issuances per concurrency level (default 2000; 10 in a smoke run).")
    var requests: Int?

    @Option(help: "Comma-separated concurrency levels (requests in flight).")
    var concurrency: String = "1,8,64"

    @Option(help: "The meshca binary to run (default: the one next to this program).")
    var meshca: String?

    @Option(help: "Write the results as JSON to this file.")
    var json: String?

    @Option(help: "Renewals to watch when measuring meshca agent's memory (default 3; 1 in a smoke run; 0 skips the agent).")
    var agentRenewals: Int?

    @Flag(help: "Skip the phase that issues with the CA key in SoftHSM (it runs when softhsm2 is installed).")
    var skipHSM = false

    @Flag(help: "Do not compare with cfssl.")
    var skipCFSSL = false

    @Option(name: .customLong("cfssl"), help: "The cfssl binary (default: cfssl on PATH, installed with apt-get when absent).")
    var cfsslBinary: String?

    @Option(help: "Seconds each crypto figure is measured (default 1; 0.05 in a smoke run).")
    var cryptoSeconds: Double?

    @Option(help: "Runs of each one-shot command (default 9; 2 in a smoke run; 0 skips).")
    var oneshotRuns: Int?

    @Option(help: "Issuances in the ledger-at-scale phase (default 1000000; 1000 in a smoke run; 0 skips).")
    var ledgerRows: Int?

    @Option(help: "Timed runs of each audit query (default 7; 2 in a smoke run).")
    var queryRuns: Int?

    @Option(help: ArgumentHelp("Run meshca serve under this command, e.g. \"valgrind --tool=callgrind\" (split at spaces).", valueName: "command"))
    var daemonPrefix: String?

    @Flag(help: "Tiny sizes everywhere, to check that the benchmark still runs (no timing claims).")
    var smoke = false

    func run() async throws {
        let small = smoke || (requests ?? 2000) < 100
        let requests = self.requests ?? (small ? 10 : 2000)
        let levels = concurrency.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.filter { $0 > 0 }
        guard !levels.isEmpty, requests > 0 else { throw ValidationError("--requests and --concurrency must be positive.") }
        let binary = meshca ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("meshca").path
        setenv("MESHCA_BIN", binary, 1)  // `meshca token create` and friends run this same binary
        let agentBinary = Command.agentBinary  // the sidecar executable, built beside it
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let directory = try TemporaryDirectory("bench")
        defer { directory.remove() }

        let loadAtStart = ProcessStats.loadAverage
        print("meshca-bench: ECDSA P-256 CA and workload keys; \(requests) issuances per level at concurrency \(levels.map(String.init).joined(separator: ", "))")
        print("machine: \(ProcessStats.cpuModel), \(cores) cores; load average at start \(loadAtStart)")

        // 1. The crypto bound.
        let crypto = try CryptoBound.measure(seconds: cryptoSeconds ?? (small ? 0.05 : 1), cores: cores)
        print(String(format: "crypto: sign %.0f/s, verify %.0f/s on 1 core; %.0f/s, %.0f/s on %d", crypto.signOneCore, crypto.verifyOneCore, crypto.signAllCores, crypto.verifyAllCores, cores))

        // CSRs for every level, before any timing; both CAs get the same ones.
        let identities = try levels.indices.map { try SPIFFEID(trustDomain: TrustDomain("cluster.local"), namespace: "default", serviceAccount: "bench-\($0)-c\(levels[$0])") }
        let csrs = try identities.map { identity in try (0..<requests).map { _ in try WorkloadCSR.pem(WorkloadCSR.make(for: identity, key: KeyType.ecP256.generate())) } }

        // 2. meshca serve, then 5. memory (the daemon's peak; the agent renewing from it).
        let daemon = try await MeshCAServe.start(binary: binary, directory: directory, prefix: daemonPrefix.map { $0.split(separator: " ").map(String.init) } ?? [])
        var meshcaLevels: [LevelResult] = []
        var daemonRSS: Int?
        var daemonAnon: Int?
        var agentRSS: Int?
        var agentAnon: Int?
        do {
            for (index, level) in levels.enumerated() {
                let result = try await daemon.run(level: level, csrs: csrs[index], serviceAccount: identities[index].workload?.serviceAccount ?? "")
                print(Self.describe("meshca serve", result))
                meshcaLevels.append(result)
                guard result.recordedExactly else {
                    throw BenchError("meshca's ledger does not hold exactly the \(result.serials.count) issued serials at concurrency \(level) (\(result.failures) failed: \(result.firstFailure ?? "-"))")
                }
            }
            daemonRSS = daemon.peakRSS
            daemonAnon = daemon.anonymousRSS
            let renewals = agentRenewals ?? (small ? 1 : 3)
            if renewals > 0 {
                (agentRSS, agentAnon) = try await AgentMemory.measure(binary: agentBinary, daemon: daemon, directory: directory, renewals: renewals)
            }
        } catch {
            daemon.stop()
            throw error
        }
        daemon.stop()

        // 2b. The same issuance with the CA key in SoftHSM (PKCS#11), against the file key measured just above.
        var hsmNotes: [String] = []
        if skipHSM || !SoftHSM.isAvailable {
            print("hsm: skipped (\(skipHSM ? "--skip-hsm" : SoftHSM.unavailableReason))")
        } else {
            let hsm = try SoftHSM.make()
            defer { hsm.directory.remove() }
            let hsmDaemon = try await MeshCAServe.start(
                binary: binary, directory: directory, stateName: "state-hsm", initArguments: ["--key", hsm.uri(object: "bench-ca")],
                environment: hsm.environment)
            do {
                for (index, level) in levels.enumerated() {
                    let result = try await hsmDaemon.run(level: level, csrs: csrs[index], serviceAccount: identities[index].workload?.serviceAccount ?? "")
                    print(Self.describe("meshca serve, key in SoftHSM", result))
                    guard result.recordedExactly else {
                        throw BenchError("the HSM daemon's ledger does not hold exactly the \(result.serials.count) issued serials at concurrency \(level)")
                    }
                    let file = meshcaLevels[index]
                    hsmNotes.append(
                        String(
                            format: "SoftHSM key at concurrency %d: %.0f issuances/s (p99 %.1f ms) against %.0f/s (p99 %.1f ms) with the file key, %.0f%%",
                            level, result.rate, result.percentile(0.99), file.rate, file.percentile(0.99), 100 * result.rate / file.rate))
                }
            } catch {
                hsmDaemon.stop()
                throw error
            }
            hsmDaemon.stop()
        }

        // 3. cfssl serve with the same CSRs.
        var cfssl = skipCFSSL ? nil : try CFSSLServe.locate(explicit: cfsslBinary, install: !small)
        if !skipCFSSL, cfssl == nil { print("cfssl: not installed, skipped in this smoke run (a full run installs golang-cfssl)") }
        if cfssl != nil, small, CFSSLServe.which("sqlite3") == nil {
            print("cfssl: the sqlite3 shell (which creates its certificate database) is not installed; skipped in this smoke run")
            cfssl = nil
        }
        var cfsslLevels: [LevelResult] = []
        var cfsslRSS: Int?
        var cfsslAnon: Int?
        if let cfssl {
            let peer = try await CFSSLServe.start(binary: cfssl, directory: directory)
            do {
                for (index, level) in levels.enumerated() {
                    let result = try await peer.run(level: level, csrs: csrs[index])
                    print(Self.describe("cfssl serve", result))
                    cfsslLevels.append(result)
                }
                cfsslRSS = peer.peakRSS
                cfsslAnon = peer.anonymousRSS
            } catch {
                peer.stop()
                throw error
            }
            peer.stop()
        }

        // 4. One-shot issuance.
        let oneshotRuns = self.oneshotRuns ?? (small ? 2 : 9)
        let oneshot = oneshotRuns > 0 ? try OneShot.measure(meshcaBinary: binary, cfsslBinary: cfssl, directory: directory, runs: oneshotRuns) : nil
        if let oneshot {
            print(String(format: "one-shot: meshca issue %.1f ms, cfssl gencert %.1f ms (medians of %d)", median(oneshot.meshca), median(oneshot.cfssl), oneshotRuns))
        }

        // 6. The ledger at scale.
        var rows = ledgerRows ?? (small ? 1000 : 1_000_000)
        if rows > 0, small, CFSSLServe.which("sqlite3") == nil {
            print("ledger: the sqlite3 shell is not installed; the ledger phase is skipped in this smoke run")
            rows = 0
        }
        let ledger = rows > 0 ? try LedgerAtScale.measure(meshcaBinary: binary, directory: directory, rows: rows, runs: queryRuns ?? (small ? 2 : 7)) : nil
        if let ledger {
            print(String(format: "ledger: %d rows filled in %.1f s (%.0f MiB)", ledger.rows, ledger.fillSeconds, Double(ledger.fileBytes) / 1_048_576)
                + (ledger.backfillSeconds.map { String(format: ", chained by the next open in %.1f s", $0) } ?? ""))
        }

        let loadAtEnd = ProcessStats.loadAverage
        var report = Self.assemble(
            crypto: crypto, levels: levels, meshca: meshcaLevels, cfssl: cfsslLevels, memory: Memory(
                daemonPeak: daemonRSS, daemonAnonymous: daemonAnon, cfsslPeak: cfsslRSS, cfsslAnonymous: cfsslAnon, agent: agentRSS, agentAnonymous: agentAnon
            ), oneshot: oneshot, ledger: ledger, requests: requests
        )
        print("")
        print(report.render(), terminator: "")
        report.notes.append(contentsOf: hsmNotes)
        report.notes.append("load average at start \(loadAtStart), at end \(loadAtEnd) (\(cores) cores)")
        for note in report.notes { print("note: \(note)") }
        if small { print("targets: not evaluated in a smoke run (sizes too small to mean anything)") }
        for line in small ? [] : Self.targets(crypto: crypto, levels: levels, meshca: meshcaLevels, cfssl: cfsslLevels, daemonRSS: daemonRSS, agentRSS: agentRSS, agentAnonymous: agentAnon, oneshot: oneshot, ledger: ledger) {
            print(line)
        }
        if let json {
            let machine: [String: Any] = [
                "cpu": ProcessStats.cpuModel, "cores": cores, "load_average_start": loadAtStart, "load_average_end": loadAtEnd,
                "kernel": (try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown",
                "date": Date().formatted(.iso8601),
            ]
            try JSONSerialization.data(withJSONObject: report.json(machine: machine), options: [.prettyPrinted, .sortedKeys])
                .write(to: URL(fileURLWithPath: json))
            print("results written to \(json)")
        }
    }

    /// Resident memory figures, KiB.
    struct Memory {
        var daemonPeak: Int?
        var daemonAnonymous: Int?
        var cfsslPeak: Int?
        var cfsslAnonymous: Int?
        var agent: Int?
        var agentAnonymous: Int?
    }

    static func describe(_ name: String, _ result: LevelResult) -> String {
        String(
            format: "%@ c=%d: %.0f issuances/s, p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, %d failed, server %.2f cores, load generator %.2f cores, record %@",
            name, result.concurrency, result.rate, result.percentile(0.5), result.percentile(0.9), result.percentile(0.99), result.failures,
            result.serverCores ?? .nan, result.generatorCores, result.recordedExactly ? "exact" : "MISMATCH"
        )
    }

    /// Builds the table rows and the JSON details.
    static func assemble(
        crypto: CryptoBound, levels: [Int], meshca: [LevelResult], cfssl: [LevelResult], memory: Memory,
        oneshot: OneShot?, ledger: LedgerAtScale?, requests: Int
    ) -> BenchReport {
        var report = BenchReport()
        let n = crypto.cores
        report.add("ECDSA P-256 sign, 1 core", "/s", bound: crypto.signOneCore)
        report.add("ECDSA P-256 verify, 1 core", "/s", bound: crypto.verifyOneCore)
        report.add("ECDSA P-256 sign, \(n) cores", "/s", bound: crypto.signAllCores)
        report.add("ECDSA P-256 verify, \(n) cores", "/s", bound: crypto.verifyAllCores)
        report.add("issuance bound (verify+sign), 1 core", "/s", bound: crypto.issuances(cores: false))
        report.add("issuance bound (verify+sign), \(n) cores", "/s", bound: crypto.issuances(cores: true))
        report.add("bound incl. self-check verify, \(n) cores", "/s", bound: crypto.issuancesWithSelfCheck(cores: true))
        for (index, level) in levels.enumerated() {
            let m = meshca.indices.contains(index) ? meshca[index] : nil
            let c = cfssl.indices.contains(index) ? cfssl[index] : nil
            report.add("issuances, c=\(level)", "/s", meshca: m?.rate, cfssl: c?.rate, bound: crypto.issuances(cores: true))
            report.add("p50 latency, c=\(level)", "ms", meshca: m?.percentile(0.5), cfssl: c?.percentile(0.5))
            report.add("p90 latency, c=\(level)", "ms", meshca: m?.percentile(0.9), cfssl: c?.percentile(0.9))
            report.add("p99 latency, c=\(level)", "ms", meshca: m?.percentile(0.99), cfssl: c?.percentile(0.99))
            report.add("server CPU per issuance, c=\(level)", "us", meshca: m?.serverMicrosecondsPerIssuance, cfssl: c?.serverMicrosecondsPerIssuance, bound: crypto.microsecondsPerIssuance)
        }
        if let top = levels.indices.last {
            let m = meshca.indices.contains(top) ? meshca[top] : nil
            let c = cfssl.indices.contains(top) ? cfssl[top] : nil
            report.add("server cores busy, c=\(levels[top])", "cores", meshca: m?.serverCores, cfssl: c?.serverCores, bound: Double(n))
            report.add("load generator cores busy, c=\(levels[top])", "cores", meshca: m?.generatorCores, cfssl: c?.generatorCores)
        }
        if let oneshot {
            report.add("one-shot issue, median of \(oneshot.meshca.count)", "ms", meshca: median(oneshot.meshca), cfssl: oneshot.cfssl.isEmpty ? nil : median(oneshot.cfssl))
        }
        let mib = { (kib: Int?) in kib.map { Double($0) / 1024 } }
        report.add("daemon peak RSS, after c=\(levels.last ?? 0)", "MiB", meshca: mib(memory.daemonPeak), cfssl: mib(memory.cfsslPeak))
        report.add("daemon private (RssAnon), after c=\(levels.last ?? 0)", "MiB", meshca: mib(memory.daemonAnonymous), cfssl: mib(memory.cfsslAnonymous))
        report.add("meshca-agent steady RSS, Workload API on", "MiB", meshca: mib(memory.agent))
        report.add("meshca-agent private (RssAnon)", "MiB", meshca: mib(memory.agentAnonymous))
        if let ledger {
            for query in ledger.queries {
                report.add("\(query.name), \(ledger.rows) rows", "ms", meshca: median(query.samples))
            }
            report.add("\(ledger.floor.name) (process floor)", "ms", meshca: median(ledger.floor.samples))
            if !ledger.verifySamples.isEmpty {
                report.add("audit verify (whole chain), \(ledger.rows) rows", "ms", meshca: median(ledger.verifySamples))
            }
        }

        func levelsJSON(_ results: [LevelResult]) -> [[String: Any]] { results.map(\.json) }
        report.details["settings"] = [
            "requests_per_level": requests, "concurrency_levels": levels, "grpc_connections": levels.map { min($0, 8) },
            "meshca_ledger": "SQLite WAL, synchronous=FULL, group commit; one join-token use consumed per issuance",
            "cfssl_database": "SQLite WAL, synchronous=FULL (go-sqlite3 _sync=FULL), busy timeout 10 s; HTTP/1.1 keep-alive, one connection per worker",
        ]
        report.details["crypto"] = [
            "sign_per_second_1_core": crypto.signOneCore, "verify_per_second_1_core": crypto.verifyOneCore,
            "sign_per_second_all_cores": crypto.signAllCores, "verify_per_second_all_cores": crypto.verifyAllCores, "cores": crypto.cores,
            "issuance_bound_1_core": crypto.issuances(cores: false), "issuance_bound_all_cores": crypto.issuances(cores: true),
            "issuance_bound_with_self_check_all_cores": crypto.issuancesWithSelfCheck(cores: true),
            "crypto_us_per_issuance": crypto.microsecondsPerIssuance,
        ]
        report.details["meshca_serve"] = levelsJSON(meshca)
        report.details["cfssl_serve"] = levelsJSON(cfssl)
        if let oneshot { report.details["one_shot_ms"] = ["meshca_issue": oneshot.meshca, "cfssl_gencert": oneshot.cfssl] }
        report.details["memory_kib"] = [
            "meshca_daemon_peak_vmhwm": memory.daemonPeak ?? -1, "meshca_daemon_rssanon": memory.daemonAnonymous ?? -1,
            "cfssl_serve_peak_vmhwm": memory.cfsslPeak ?? -1, "cfssl_serve_rssanon": memory.cfsslAnonymous ?? -1,
            "meshca_agent_vmrss": memory.agent ?? -1, "meshca_agent_rssanon": memory.agentAnonymous ?? -1,
        ]
        if let ledger {
            report.details["ledger"] = [
                "rows": ledger.rows, "fill_seconds": ledger.fillSeconds, "file_bytes": ledger.fileBytes,
                "queries": (ledger.queries + [ledger.floor]).map { ["name": $0.name, "arguments": $0.arguments, "samples_ms": $0.samples, "listed": $0.resultCount] },
                "chain_backfill_seconds": ledger.backfillSeconds ?? -1, "verify_samples_ms": ledger.verifySamples,
                "verify_intact": ledger.verifyIntact.map { $0 ? "yes" : "no" } ?? "not run",
            ]
        }
        report.notes.append("this process is the load generator and shares the \(n) cores with the server it drives")
        if !cfssl.isEmpty { report.notes.append("cfssl 1.2 ignores the CSR's URI SAN, so its certificates carry no SPIFFE ID") }
        if oneshot != nil { report.notes.append("one-shot: meshca issue also commits a ledger row (fsync) and writes 3 files; cfssl gencert prints JSON and records nothing") }
        return report
    }

    /// The issue's targets, each with the measured value and whether it is met.
    static func targets(
        crypto: CryptoBound, levels: [Int], meshca: [LevelResult], cfssl: [LevelResult], daemonRSS: Int?, agentRSS: Int?,
        agentAnonymous: Int?, oneshot: OneShot?, ledger: LedgerAtScale?
    ) -> [String] {
        var lines = ["targets:"]
        func check(_ met: Bool?, _ text: String) { lines.append("  \(met.map { $0 ? "met   " : "MISSED" } ?? "n/a   ")  \(text)") }
        if let best = meshca.max(by: { $0.rate < $1.rate }) {
            let bound = crypto.issuances(cores: true)
            check(best.rate >= 0.5 * bound, String(format: "throughput >= 50%% of the %d-core crypto bound: %.0f/s of %.0f/s (%.0f%%) at c=%d", crypto.cores, best.rate, bound, 100 * best.rate / bound, best.concurrency))
        }
        for (m, c) in zip(meshca, cfssl) {
            check(m.rate >= 5 * c.rate, String(format: ">= 5x cfssl at c=%d: %.2fx", m.concurrency, m.rate / c.rate))
        }
        if let eight = meshca.first(where: { $0.concurrency == 8 }) {
            check(eight.percentile(0.99) <= 2, String(format: "p99 at c=8 <= 2 ms: %.2f ms", eight.percentile(0.99)))
        }
        if let oneshot, !oneshot.cfssl.isEmpty {
            check(median(oneshot.meshca) <= median(oneshot.cfssl), String(format: "one-shot no slower than cfssl gencert: %.1f vs %.1f ms", median(oneshot.meshca), median(oneshot.cfssl)))
        }
        if let daemonRSS { check(daemonRSS <= 64 * 1024, String(format: "daemon <= 64 MiB: %.1f MiB", Double(daemonRSS) / 1024)) }
        if let agentRSS {
            check(agentRSS <= 12 * 1024, String(format: "agent <= 12 MiB: %.1f MiB resident (%.1f MiB of it private)", Double(agentRSS) / 1024, Double(agentAnonymous ?? 0) / 1024))
        }
        if let ledger, let query = ledger.queries.first {
            check(ledger.rows >= 1_000_000 ? median(query.samples) <= 50 : nil, String(format: "filtered audit query over 1M rows <= 50 ms: %.1f ms over %d rows", median(query.samples), ledger.rows))
        }
        return lines
    }
}

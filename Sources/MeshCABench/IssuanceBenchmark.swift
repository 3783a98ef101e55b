import ArgumentParser
import Foundation
import MeshCACore
import MeshCAErrors
import MeshCALedger
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

    @Flag(help: "Skip the phase with the ledger in PostgreSQL, one and two replicas (it runs when PostgreSQL is installed).")
    var skipPostgres = false

    @Option(help: "Rounds of the PostgreSQL phase, each one replica and two, alternating which goes first; the table shows each level's median round (default 3; 1 in a smoke run).")
    var postgresRounds: Int?

    @Flag(help: "In the PostgreSQL phase, count every statement with pg_stat_statements and print the counts per level (a diagnosis: it costs CPU).")
    var postgresStatements = false

    @Flag(help: "Do not compare with cfssl.")
    var skipCFSSL = false

    @Option(name: .customLong("cfssl"), help: "The cfssl binary (default: cfssl on PATH, installed with apt-get when absent).")
    var cfsslBinary: String?

    @Option(help: "Seconds each crypto figure is measured (default 1; 0.05 in a smoke run).")
    var cryptoSeconds: Double?

    @Option(help: "Runs of each one-shot command (default 9; 2 in a smoke run; 0 skips).")
    var oneshotRuns: Int?

    @Option(help: "Runs of `meshca --version`, timed as whole processes (default 51; 3 in a smoke run; 0 skips).")
    var startupRuns: Int?

    @Option(help: "Agents run at once for the proportional set size (PSS) per agent (default 10; 2 in a smoke run; 0 skips).")
    var agents: Int?

    @Option(help: "Issuances in the ledger-at-scale phase (default 1000000; 1000 in a smoke run; 0 skips).")
    var ledgerRows: Int?

    @Option(help: "Timed runs of each audit query (default 7; 2 in a smoke run).")
    var queryRuns: Int?

    @Option(help: ArgumentHelp("Run meshca serve under this command, e.g. \"valgrind --tool=callgrind\" (split at spaces).", valueName: "command"))
    var daemonPrefix: String?

    @Option(name: .customLong("h2load"), help: "The h2load binary, the independent load generator (default: h2load on PATH; scripts/bench.sh installs nghttp2-client).")
    var h2loadBinary: String?

    @Flag(help: "Skip the phase where h2load drives both servers with one connection per client.")
    var skipH2load = false

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
        // 7. h2load sends one CSR per level, the same to both servers, for a service account of its own.
        let h2load = skipH2load ? nil : H2Load.locate(explicit: h2loadBinary)
        if !skipH2load, h2load == nil { print("h2load: not installed, skipped (scripts/bench.sh installs nghttp2-client; or pass --h2load PATH)") }
        let h2loadIdentities = try levels.indices.map { try SPIFFEID(trustDomain: TrustDomain("cluster.local"), namespace: "default", serviceAccount: "h2load-\($0)-c\(levels[$0])") }
        let h2loadCSRs = try h2loadIdentities.map { try WorkloadCSR.pem(WorkloadCSR.make(for: $0, key: KeyType.ecP256.generate())) }
        var h2loadMeshca: [H2Load.Level] = []
        var h2loadCFSSL: [H2Load.Level] = []

        // 2. meshca serve, then 5. memory (the daemon's peak; the agent renewing from it).
        let daemon = try await MeshCAServe.start(binary: binary, directory: directory, prefix: daemonPrefix.map { $0.split(separator: " ").map(String.init) } ?? [])
        var meshcaLevels: [LevelResult] = []
        var daemonRSS: Int?
        var daemonAnon: Int?
        var agent: AgentMemory.Figures?
        var agentsTogether: AgentMemory.Figures?
        try await whileRunning(daemon) {
            for (index, level) in levels.enumerated() {
                let result = try await daemon.run(level: level, csrs: csrs[index], serviceAccount: identities[index].workload?.serviceAccount ?? "")
                print(Self.describe("meshca serve", result))
                meshcaLevels.append(result)
                guard result.recordedExactly else {
                    throw BenchError(.countMismatch, "meshca's ledger does not hold exactly the \(result.serials.count) issued serials at concurrency \(level) (\(result.failures) failed: \(result.firstFailure ?? "-"))")
                }
            }
            daemonRSS = daemon.peakRSS
            daemonAnon = daemon.anonymousRSS
            let renewals = agentRenewals ?? (small ? 1 : 3)
            if renewals > 0 {
                agent = try await AgentMemory.measure(binary: agentBinary, daemon: daemon, directory: directory, renewals: renewals)
                let count = agents ?? (small ? 2 : 10)
                if count > 0 {
                    agentsTogether = try await AgentMemory.measure(binary: agentBinary, daemon: daemon, directory: directory, renewals: renewals, count: count)
                }
            }
        }

        // 2c. The ledger in PostgreSQL: one replica, then two on one database, with the same CSRs and levels.
        var postgres: PostgresReplicas?
        if skipPostgres || !PostgreSQLServer.isAvailable {
            print("postgres: skipped (\(skipPostgres ? "--skip-postgres" : PostgreSQLServer.unavailableReason))")
        } else {
            postgres = try await PostgresReplicas.measure(
                binary: binary, directory: directory, levels: levels, csrs: csrs,
                serviceAccounts: identities.map { $0.workload?.serviceAccount ?? "" }, rounds: postgresRounds ?? (small ? 1 : 3), statements: postgresStatements, describe: Self.describe)
        }

        // 7a. h2load against meshca serve: a daemon of its own with --retry-window off, because h2load sends the
        // same CSR in every request, and within the retry window meshca answers a repeat (same credential, same
        // key) with the certificate it already issued, signing nothing (each request must be an issuance, as at cfssl).
        if let h2load {
            let h2loadDaemon = try await MeshCAServe.start(binary: binary, directory: directory, stateName: "state-h2load", serveArguments: ["--retry-window", "off"])
            try await whileRunning(h2loadDaemon) {
                for (index, level) in levels.enumerated() {
                    let serviceAccount = h2loadIdentities[index].workload?.serviceAccount ?? ""
                    let result = try await h2load.meshca(
                        address: h2loadDaemon.address, token: try h2loadDaemon.token(for: serviceAccount, uses: max(requests, level)), csr: h2loadCSRs[index],
                        level: level, requests: requests, serverPID: h2loadDaemon.daemon.pid, directory: directory
                    ) { try await h2loadDaemon.ledger.serials(serviceAccount: serviceAccount).count }
                    print(Self.describe("meshca serve, h2load", result))
                    h2loadMeshca.append(result)
                    guard result.recordedExactly else {
                        throw BenchError(.countMismatch, "h2load at c=\(level): \(result.succeeded) of \(result.requests) requests answered HTTP 2xx but meshca's ledger gained \(result.recorded) rows (a gRPC failure is HTTP 200 with grpc-status in the trailers, which h2load does not read)")
                    }
                }
            }
        }

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
            try await whileRunning(hsmDaemon) {
                for (index, level) in levels.enumerated() {
                    let result = try await hsmDaemon.run(level: level, csrs: csrs[index], serviceAccount: identities[index].workload?.serviceAccount ?? "")
                    print(Self.describe("meshca serve, key in SoftHSM", result))
                    guard result.recordedExactly else {
                        throw BenchError(.countMismatch, "the HSM daemon's ledger does not hold exactly the \(result.serials.count) issued serials at concurrency \(level)")
                    }
                    let file = meshcaLevels[index]
                    hsmNotes.append(
                        String(
                            format: "SoftHSM key at concurrency %d: %.0f issuances/s (p99 %.1f ms) against %.0f/s (p99 %.1f ms) with the file key, %.0f%%",
                            level, result.rate, result.percentile(0.99), file.rate, file.percentile(0.99), 100 * result.rate / file.rate))
                }
            }
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
            try await whileRunning(peer) {
                for (index, level) in levels.enumerated() {
                    let result = try await peer.run(level: level, csrs: csrs[index])
                    print(Self.describe("cfssl serve", result))
                    cfsslLevels.append(result)
                }
                cfsslRSS = peer.peakRSS
                cfsslAnon = peer.anonymousRSS
                if let h2load {
                    for (index, level) in levels.enumerated() {
                        let result = try await h2load.cfssl(
                            port: peer.port, csr: h2loadCSRs[index], level: level, requests: requests, serverPID: peer.process.pid, directory: directory
                        ) { try peer.rowCount() }
                        print(Self.describe("cfssl serve, h2load --h1", result))
                        h2loadCFSSL.append(result)
                        guard result.recordedExactly else {
                            throw BenchError(.countMismatch, "h2load at c=\(level): \(result.succeeded) of \(result.requests) requests answered HTTP 2xx but cfssl's database gained \(result.recorded) rows")
                        }
                    }
                }
            }
        }

        // 4. One-shot issuance.
        let oneshotRuns = self.oneshotRuns ?? (small ? 2 : 9)
        let oneshot = oneshotRuns > 0 ? try OneShot.measure(meshcaBinary: binary, cfsslBinary: cfssl, directory: directory, runs: oneshotRuns) : nil
        if let oneshot {
            print(String(format: "one-shot: meshca issue %.1f ms, cfssl gencert %.1f ms (medians of %d)", median(oneshot.meshca), median(oneshot.cfssl), oneshotRuns))
        }
        let startupRuns = self.startupRuns ?? (small ? 3 : 51)
        let startup = startupRuns > 0 ? try Startup.measure(meshcaBinary: binary, cfsslBinary: cfssl, runs: startupRuns) : nil
        if let startup {
            print(String(format: "start-up: meshca --version %.1f ms, cfssl version %.1f ms (medians of %d)", median(startup.meshca), median(startup.cfssl), startupRuns))
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
            crypto: crypto, levels: levels, meshca: meshcaLevels, cfssl: cfsslLevels, h2loadMeshca: h2loadMeshca, h2loadCFSSL: h2loadCFSSL, memory: Memory(
                daemonPeak: daemonRSS, daemonAnonymous: daemonAnon, cfsslPeak: cfsslRSS, cfsslAnonymous: cfsslAnon, agent: agent, agentsTogether: agentsTogether
            ), oneshot: oneshot, startup: startup, ledger: ledger, requests: requests
        )
        print("")
        print(report.render(), terminator: "")
        if let postgres {
            print("")
            print(postgres.render(levels: levels, sqlite: meshcaLevels), terminator: "")
            report.details["postgres"] = postgres.json
            report.notes.append(
                "PostgreSQL: a server of the benchmark's own on loopback TCP (fsync=on, synchronous_commit=on, wal_sync_method=\(postgres.settings["wal_sync_method"] ?? "?")) on the same cores; "
                    + "one database and state directory per replica count and round; two replicas get alternate requests from every worker; daemon CPU is both replicas'; "
                    + ((postgres.rounds[1]?.count ?? 0) > 1
                        ? "each PostgreSQL row is the median of \(postgres.rounds[1]?.count ?? 0) rounds by issuance rate (one replica and two alternate which goes first)"
                        : "one round of one replica and two"))
        }
        report.notes.append(contentsOf: hsmNotes)
        report.notes.append("load average at start \(loadAtStart), at end \(loadAtEnd) (\(cores) cores)")
        for note in report.notes { print("note: \(note)") }
        if small { print("targets: not evaluated in a smoke run (sizes too small to mean anything)") }
        let targets = Self.targets(
            levels: levels, meshca: meshcaLevels, cfssl: cfsslLevels, h2loadMeshca: h2loadMeshca, h2loadCFSSL: h2loadCFSSL, daemonRSS: daemonRSS,
            agent: agent, agentsTogether: agentsTogether, oneshot: oneshot, startup: startup, ledger: ledger)
        for line in small ? [] : targets {
            print(line)
        }
        for target in small ? [] : postgres?.targetLines() ?? [] {
            print("  \(target.met ? "met   " : "MISSED")  \(target.text)")
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
        /// One agent alone, then several running at once.
        var agent: AgentMemory.Figures?
        var agentsTogether: AgentMemory.Figures?
    }

    static func describe(_ name: String, _ result: H2Load.Level) -> String {
        String(
            format: "%@ c=%d (%d connections): %.0f issuances/s, mean %.2f ms, p50 %.2f ms, p99 %.2f ms; h2load: %d of %d succeeded (HTTP 2xx), %d failed, %d errored; server %.0f us CPU per issuance; record %@ (%d rows)",
            name, result.concurrency, result.concurrency, result.rate, result.mean, result.percentile(0.5), result.percentile(0.99), result.succeeded, result.requests,
            result.failed, result.errored, result.serverMicrosecondsPerIssuance ?? .nan, result.recordedExactly ? "exact" : "MISMATCH", result.recorded
        )
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
        crypto: CryptoBound, levels: [Int], meshca: [LevelResult], cfssl: [LevelResult], h2loadMeshca: [H2Load.Level], h2loadCFSSL: [H2Load.Level], memory: Memory,
        oneshot: OneShot?, startup: Startup?, ledger: LedgerAtScale?, requests: Int
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
            let hm = h2loadMeshca.indices.contains(index) ? h2loadMeshca[index] : nil
            let hc = h2loadCFSSL.indices.contains(index) ? h2loadCFSSL[index] : nil
            if hm != nil || hc != nil {
                report.add("h2load, \(level) connections: issuances", "/s", meshca: hm?.rate, cfssl: hc?.rate, bound: crypto.issuances(cores: true))
                report.add("h2load, \(level) connections: mean latency", "ms", meshca: hm?.mean, cfssl: hc?.mean)
                report.add("h2load, \(level) connections: p99 latency", "ms", meshca: hm?.percentile(0.99), cfssl: hc?.percentile(0.99))
                report.add("h2load, \(level) connections: server CPU per issuance", "us", meshca: hm?.serverMicrosecondsPerIssuance, cfssl: hc?.serverMicrosecondsPerIssuance, bound: crypto.microsecondsPerIssuance)
            }
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
        if let startup {
            report.add("meshca --version / cfssl version, median of \(startup.meshca.count)", "ms", meshca: median(startup.meshca), cfssl: startup.cfssl.isEmpty ? nil : median(startup.cfssl))
        }
        let mib = { (kib: Int?) in kib.map { Double($0) / 1024 } }
        report.add("daemon peak RSS, after c=\(levels.last ?? 0)", "MiB", meshca: mib(memory.daemonPeak), cfssl: mib(memory.cfsslPeak))
        report.add("daemon private (RssAnon), after c=\(levels.last ?? 0)", "MiB", meshca: mib(memory.daemonAnonymous), cfssl: mib(memory.cfsslAnonymous))
        report.add("meshca-agent steady RSS, Workload API on", "MiB", meshca: mib(memory.agent.flatMap { AgentMemory.Figures.mean($0.resident) }))
        report.add("meshca-agent private (RssAnon)", "MiB", meshca: mib(memory.agent.flatMap { AgentMemory.Figures.mean($0.anonymous) }))
        if let together = memory.agentsTogether {
            let n = together.proportional.count
            report.add("meshca-agent PSS per agent, \(n) running", "MiB", meshca: mib(AgentMemory.Figures.mean(together.proportional)))
            report.add("meshca-agent RSS per agent, \(n) running", "MiB", meshca: mib(AgentMemory.Figures.mean(together.resident)))
        }
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
        report.details["h2load_meshca_serve"] = h2loadMeshca.map(\.json)
        report.details["h2load_cfssl_serve"] = h2loadCFSSL.map(\.json)
        if let startup { report.details["startup_ms"] = ["meshca_version": startup.meshca, "cfssl_version": startup.cfssl] }
        if let oneshot { report.details["one_shot_ms"] = ["meshca_issue": oneshot.meshca, "cfssl_gencert": oneshot.cfssl] }
        report.details["memory_kib"] = [
            "meshca_daemon_peak_vmhwm": memory.daemonPeak ?? -1, "meshca_daemon_rssanon": memory.daemonAnonymous ?? -1,
            "cfssl_serve_peak_vmhwm": memory.cfsslPeak ?? -1, "cfssl_serve_rssanon": memory.cfsslAnonymous ?? -1,
            "meshca_agent_vmrss": memory.agent?.resident.first ?? -1, "meshca_agent_rssanon": memory.agent?.anonymous.first ?? -1,
            "meshca_agent_pss": memory.agent?.proportional.first ?? -1,
            "meshca_agents_together": memory.agentsTogether.map { ["vmrss": $0.resident, "rssanon": $0.anonymous, "pss": $0.proportional] } ?? [:],
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
        if !h2loadMeshca.isEmpty || !h2loadCFSSL.isEmpty {
            report.notes.append(
                "h2load: one connection per client, one request in flight on each (-c N -m 1, one h2load thread); gRPC over TLS to meshca (its own daemon, --retry-window off), "
                    + "HTTP/1.1 to cfssl, one CSR per level; issuances counted from the server's record, which must equal h2load's 2xx count "
                    + "(h2load counts a gRPC call by its HTTP status, 200 even when grpc-status is not 0)")
        }
        if !cfssl.isEmpty { report.notes.append("cfssl 1.2 ignores the CSR's URI SAN, so its certificates carry no SPIFFE ID") }
        if oneshot != nil { report.notes.append("one-shot: meshca issue also commits a ledger row (fsync) and writes 3 files; cfssl gencert prints JSON and records nothing") }
        return report
    }

    /// The targets (issue 16; the daemon's memory and the audit query from the first round), each with the
    /// measured value and whether it is met. Ratios are meshca / cfssl within this run.
    static func targets(
        levels: [Int], meshca: [LevelResult], cfssl: [LevelResult], h2loadMeshca: [H2Load.Level], h2loadCFSSL: [H2Load.Level], daemonRSS: Int?,
        agent: AgentMemory.Figures?, agentsTogether: AgentMemory.Figures?, oneshot: OneShot?, startup: Startup?, ledger: LedgerAtScale?
    ) -> [String] {
        var lines = ["targets:"]
        func check(_ met: Bool?, _ text: String) { lines.append("  \(met.map { $0 ? "met   " : "MISSED" } ?? "n/a   ")  \(text)") }
        for (m, c) in zip(meshca, cfssl) {
            let goal: Double? = m.concurrency == 1 ? 1 : m.concurrency == 64 ? 3 : nil
            if let goal { check(m.rate >= goal * c.rate, String(format: "issuances/s at c=%d >= %.0fx cfssl: %.2fx", m.concurrency, goal, m.rate / c.rate)) }
        }
        for m in meshca {
            let goal: Double? = m.concurrency == 1 ? 350 : m.concurrency == 64 ? 200 : nil
            if let goal, let cpu = m.serverMicrosecondsPerIssuance {
                check(cpu <= goal, String(format: "server CPU per issuance at c=%d <= %.0f us: %.0f us", m.concurrency, goal, cpu))
            }
        }
        if let eight = meshca.first(where: { $0.concurrency == 8 }) {
            check(eight.percentile(0.99) <= 3, String(format: "p99 at c=8 <= 3 ms: %.2f ms", eight.percentile(0.99)))
        }
        if let startup { check(median(startup.meshca) <= 4, String(format: "meshca --version <= 4 ms: %.1f ms", median(startup.meshca))) }
        if let oneshot, !oneshot.cfssl.isEmpty {
            let ratio = median(oneshot.meshca) / median(oneshot.cfssl)
            check(ratio <= 1.5, String(format: "one-shot meshca issue <= 1.5x cfssl gencert: %.2fx (%.1f vs %.1f ms)", ratio, median(oneshot.meshca), median(oneshot.cfssl)))
        }
        for (m, c) in zip(h2loadMeshca, h2loadCFSSL) {
            let goal = m.concurrency >= 64 ? 1.5 : 1.0
            check(m.rate >= goal * c.rate, String(format: "h2load, %d connections, >= %.1fx cfssl: %.2fx", m.concurrency, goal, m.rate / c.rate))
        }
        if let together = agentsTogether, let pss = AgentMemory.Figures.mean(together.proportional) {
            check(pss <= 5 * 1024, String(format: "agent PSS with %d running <= 5 MiB: %.1f MiB per agent", together.proportional.count, Double(pss) / 1024))
        }
        if let agent, let rss = AgentMemory.Figures.mean(agent.resident) {
            check(rss <= 20 * 1024, String(format: "one agent resident <= 20 MiB: %.1f MiB", Double(rss) / 1024))
        }
        if let daemonRSS { check(daemonRSS <= 64 * 1024, String(format: "daemon <= 64 MiB: %.1f MiB", Double(daemonRSS) / 1024)) }
        if let ledger, let query = ledger.queries.first {
            check(ledger.rows >= 1_000_000 ? median(query.samples) <= 50 : nil, String(format: "filtered audit query over 1M rows <= 50 ms: %.1f ms over %d rows", median(query.samples), ledger.rows))
        }
        return lines
    }
}

/// A server the benchmark starts and must stop again.
protocol BenchServer {
    /// Ends the server's process.
    func stop()
}

extension MeshCAServe: BenchServer {}
extension CFSSLServe: BenchServer {}

/// Runs `body` while `server` runs, then stops the server, also when `body` throws.
func whileRunning<Server: BenchServer>(_ server: Server, _ body: () async throws -> Void) async throws {
    defer { server.stop() }
    try await body()
}

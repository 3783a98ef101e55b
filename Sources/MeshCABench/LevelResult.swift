import Foundation
import MeshCAErrors

/// What one concurrency level of closed-loop load produced against one CA: every request's latency,
/// the serials handed out, failures, and the CPU time the server and this load generator used meanwhile.
struct LevelResult: Sendable {
    /// One request's outcome: the response (decoded only after the clock stops, so the load generator spends
    /// less of the shared CPU while the server is measured) and the latency, or why it failed.
    typealias Outcome = Result<(response: String, milliseconds: Double), BenchError>

    /// Requests in flight at all times.
    var concurrency: Int
    /// Latencies of the successful requests, ascending, in milliseconds.
    var latencies: [Double]
    /// Serials of the certificates received, lowercase hex without leading zeros.
    var serials: [String]
    /// Requests that failed, and the first failure's text.
    var failures: Int
    var firstFailure: String?
    /// Wall time from the first request sent to the last response.
    var seconds: Double
    /// CPU seconds the server process (every replica) used during the level.
    var serverCPUSeconds: Double?
    /// CPU seconds the database server (PostgreSQL: the postmaster and every process it started) used during the
    /// level; nil when the ledger is in the daemon's own SQLite file.
    var databaseCPUSeconds: Double?
    /// CPU seconds this process (the load generator) used during the level.
    var generatorCPUSeconds: Double
    /// Whether the server's own record (ledger, certdb) holds exactly the serials received; set by the caller.
    var recordedExactly = false
    /// The rows the record holds for the level, when the caller counted them.
    var recorded: Int?

    /// Issuances per second.
    var rate: Double { Double(serials.count) / seconds }

    /// The latency below which a fraction `p` of the requests finished (nearest rank), in milliseconds.
    func percentile(_ p: Double) -> Double { nearestRank(latencies, p) }

    /// Server CPU microseconds per issuance.
    var serverMicrosecondsPerIssuance: Double? { serverCPUSeconds.map { $0 * 1e6 / Double(max(serials.count, 1)) } }
    /// Cores the server kept busy on average (CPU seconds / wall seconds).
    var serverCores: Double? { serverCPUSeconds.map { $0 / seconds } }
    /// Database CPU microseconds per issuance.
    var databaseMicrosecondsPerIssuance: Double? { databaseCPUSeconds.map { $0 * 1e6 / Double(max(serials.count, 1)) } }
    /// Cores the database server kept busy on average.
    var databaseCores: Double? { databaseCPUSeconds.map { $0 / seconds } }
    /// Cores the load generator kept busy on average.
    var generatorCores: Double { generatorCPUSeconds / seconds }

    /// Runs `load` (which returns every request's outcome) and measures wall and CPU time around it; then
    /// `serial` extracts each certificate's serial (lowercase hex) from its response.
    static func measure(
        concurrency: Int, serverPID: Int32, serial: (String) throws -> String, _ load: () async throws -> [Outcome]
    ) async rethrows -> LevelResult {
        try await measure(concurrency: concurrency, serverPIDs: [serverPID], serial: serial, load)
    }

    /// ``measure(concurrency:serverPID:serial:_:)`` with several server processes (replicas), whose CPU time is
    /// summed; `database`, when given, lists the database server's processes, read before and after the level
    /// (a process that started meanwhile counts from zero).
    static func measure(
        concurrency: Int, serverPIDs: [Int32], database: (() -> [Int32])? = nil, serial: (String) throws -> String,
        _ load: () async throws -> [Outcome]
    ) async rethrows -> LevelResult {
        func serverCPU() -> Double? {
            let each = serverPIDs.map { ProcessStats.cpuSeconds(pid: $0) }
            return each.contains { $0 == nil } ? nil : each.reduce(0) { $0 + ($1 ?? 0) }
        }
        func databaseCPU() -> [Int32: Double] {
            Dictionary((database?() ?? []).compactMap { pid in ProcessStats.cpuSeconds(pid: pid).map { (pid, $0) } }) { a, _ in a }
        }
        let serverBefore = serverCPU()
        let databaseBefore = databaseCPU()
        let ownBefore = ProcessStats.ownCPUSeconds
        let started = ContinuousClock.now
        let outcomes = try await load()
        let wall = (ContinuousClock.now - started).seconds
        let serverAfter = serverCPU()
        let databaseAfter = databaseCPU()
        let ownAfter = ProcessStats.ownCPUSeconds
        var latencies: [Double] = []
        var serials: [String] = []
        var failures: [BenchError] = []
        for outcome in outcomes {
            switch outcome {
            case .success(let done):
                do {
                    serials.append(try serial(done.response))
                    latencies.append(done.milliseconds)
                } catch {
                    failures.append(error as? BenchError ?? BenchError(.badResponse, "unreadable response: \(error)"))
                }
            case .failure(let error):
                failures.append(error)
            }
        }
        return LevelResult(
            concurrency: concurrency,
            latencies: latencies.sorted(),
            serials: serials,
            failures: failures.count,
            firstFailure: failures.first?.description,
            seconds: wall,
            serverCPUSeconds: zip2(serverBefore, serverAfter).map { $0.1 - $0.0 },
            databaseCPUSeconds: database == nil ? nil : databaseAfter.reduce(0) { $0 + $1.value - (databaseBefore[$1.key] ?? 0) },
            generatorCPUSeconds: ownAfter - ownBefore
        )
    }

    /// The JSON form.
    var json: [String: Any] {
        var document: [String: Any] = [
            "concurrency": concurrency, "issued": serials.count, "failed": failures, "seconds": seconds,
            "issuances_per_second": rate, "p50_ms": percentile(0.5), "p90_ms": percentile(0.9), "p99_ms": percentile(0.99),
            "max_ms": latencies.last ?? .nan, "recorded_exactly": recordedExactly,
            "load_generator_cpu_seconds": generatorCPUSeconds, "load_generator_cores": generatorCores,
        ]
        if let firstFailure { document["first_failure"] = firstFailure }
        if let serverCPUSeconds { document["server_cpu_seconds"] = serverCPUSeconds }
        if let serverCores { document["server_cores"] = serverCores }
        if let serverMicrosecondsPerIssuance { document["server_cpu_us_per_issuance"] = serverMicrosecondsPerIssuance }
        if let databaseCPUSeconds { document["database_cpu_seconds"] = databaseCPUSeconds }
        if let databaseMicrosecondsPerIssuance { document["database_cpu_us_per_issuance"] = databaseMicrosecondsPerIssuance }
        if let recorded { document["recorded"] = recorded }
        return document
    }
}

/// The value below which a fraction `p` of the ascending `samples` lie (nearest rank); NaN when empty.
func nearestRank(_ samples: [Double], _ p: Double) -> Double {
    guard !samples.isEmpty else { return .nan }
    let rank = Int((Double(samples.count) * p).rounded(.up)) - 1
    return samples[min(max(rank, 0), samples.count - 1)]
}

/// Both values, when both are there.
func zip2<A, B>(_ a: A?, _ b: B?) -> (A, B)? {
    guard let a, let b else { return nil }
    return (a, b)
}

import Foundation

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
    /// CPU seconds the server process used during the level.
    var serverCPUSeconds: Double?
    /// CPU seconds this process (the load generator) used during the level.
    var generatorCPUSeconds: Double
    /// Whether the server's own record (ledger, certdb) holds exactly the serials received; set by the caller.
    var recordedExactly = false

    /// Issuances per second.
    var rate: Double { Double(serials.count) / seconds }

    /// The latency below which a fraction `p` of the requests finished (nearest rank), in milliseconds.
    func percentile(_ p: Double) -> Double { nearestRank(latencies, p) }

    /// Server CPU microseconds per issuance.
    var serverMicrosecondsPerIssuance: Double? { serverCPUSeconds.map { $0 * 1e6 / Double(max(serials.count, 1)) } }
    /// Cores the server kept busy on average (CPU seconds / wall seconds).
    var serverCores: Double? { serverCPUSeconds.map { $0 / seconds } }
    /// Cores the load generator kept busy on average.
    var generatorCores: Double { generatorCPUSeconds / seconds }

    /// Runs `load` (which returns every request's outcome) and measures wall and CPU time around it; then
    /// `serial` extracts each certificate's serial (lowercase hex) from its response.
    static func measure(
        concurrency: Int, serverPID: Int32, serial: (String) throws -> String, _ load: () async throws -> [Outcome]
    ) async rethrows -> LevelResult {
        let serverBefore = ProcessStats.cpuSeconds(pid: serverPID)
        let ownBefore = ProcessStats.ownCPUSeconds
        let started = ContinuousClock.now
        let outcomes = try await load()
        let wall = (ContinuousClock.now - started).seconds
        let serverAfter = ProcessStats.cpuSeconds(pid: serverPID)
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
                    failures.append(error as? BenchError ?? BenchError("unreadable response: \(error)"))
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

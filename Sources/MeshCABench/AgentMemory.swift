import Foundation
import MeshCAErrors
import MeshCATestSupport

/// Phase 5 (second half): `meshca-agent` (the agent's own small executable, what a sidecar runs) with the
/// SPIFFE Workload API serving, renewing 4-second certificates from the benchmark's daemon, and its memory
/// once it has renewed a few times: first one agent alone, then several at once, as on a node with several pods.
enum AgentMemory {
    /// Each agent's memory in KiB: all it has resident (VmRSS, which counts the shared, clean pages of the
    /// binary and the libraries it touched in full), its private part (RssAnon: heap, stacks, relocated data),
    /// and its proportional set size (Pss from /proc/PID/smaps_rollup: private pages plus each shared page
    /// divided by the number of processes mapping it), which is what one more agent adds when several run.
    struct Figures {
        var resident: [Int]
        var anonymous: [Int]
        var proportional: [Int]

        static func mean(_ values: [Int]) -> Int? { values.isEmpty ? nil : values.reduce(0, +) / values.count }
    }

    /// Starts `count` agents, waits until each has renewed `renewals` times, and reads their memory.
    ///
    /// - Parameter binary: The `meshca-agent` executable.
    static func measure(binary: String, daemon: MeshCAServe, directory: TemporaryDirectory, renewals: Int, count: Int = 1) async throws -> Figures {
        var agents: [(process: BackgroundProcess, out: String)] = []
        defer { for agent in agents { agent.process.terminate() } }
        for index in 0..<count {
            let name = "bench-agent-\(count)-\(index)"
            let token = try daemon.token(for: name, uses: 1)
            let out = directory.file(name)
            let agent = try BackgroundProcess(binary, [
                "--ca", daemon.address, "--sa", name, "--token", token,
                "--out", out, "--ttl", "4s", "--workload-api-socket", directory.file(name + ".sock"), "--status-addr", "127.0.0.1:0",
                "--log-level", "warning",
            ])
            agents.append((agent, out))
            _ = try await agent.waitForLine(containing: "status on")
        }
        var versions = Array(repeating: Set<String>(), count: count)
        let deadline = ContinuousClock.now + .seconds(30 + 4 * renewals)
        while versions.contains(where: { $0.count <= renewals }), ContinuousClock.now < deadline {
            for (index, agent) in agents.enumerated() {
                if let version = try? FileManager.default.destinationOfSymbolicLink(atPath: agent.out + "/..data") { versions[index].insert(version) }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        if let lagging = versions.min(by: { $0.count < $1.count }), lagging.count <= renewals {
            throw BenchError(.countMismatch, "an agent renewed \(max(lagging.count - 1, 0)) times, expected \(renewals)")
        }
        let pids = agents.map(\.process.pid)
        return Figures(
            resident: pids.compactMap { ProcessStats.memory(pid: $0, field: "VmRSS") },
            anonymous: pids.compactMap { ProcessStats.memory(pid: $0, field: "RssAnon") },
            proportional: pids.compactMap { ProcessStats.memory(pid: $0, field: "Pss", file: "smaps_rollup") })
    }
}

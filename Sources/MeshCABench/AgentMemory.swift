import Foundation
import MeshCATestSupport

/// Phase 5 (second half): `meshca-agent` (the agent's own small executable, what a sidecar runs) with the
/// SPIFFE Workload API serving, renewing 4-second certificates from the benchmark's daemon, and its resident
/// memory once it has renewed a few times.
enum AgentMemory {
    /// Waits for `renewals` renewals and returns the agent's resident memory in KiB: all of it (VmRSS, which
    /// counts the shared, clean pages of the binary and the Swift libraries it touched) and its private part
    /// (RssAnon: heap, stacks, relocated data).
    ///
    /// - Parameter binary: The `meshca-agent` executable.
    static func measure(binary: String, daemon: MeshCAServe, directory: TemporaryDirectory, renewals: Int) async throws -> (resident: Int?, anonymous: Int?) {
        let token = try daemon.token(for: "bench-agent", uses: 1)
        let out = directory.file("agent")
        let agent = try BackgroundProcess(binary, [
            "--ca", daemon.address, "--sa", "bench-agent", "--token", token,
            "--out", out, "--ttl", "4s", "--workload-api-socket", directory.file("agent.sock"), "--status-addr", "127.0.0.1:0",
            "--log-level", "warning",
        ])
        defer { agent.terminate() }
        _ = try await agent.waitForLine(containing: "status on")
        var versions = Set<String>()
        let deadline = ContinuousClock.now + .seconds(30 + 4 * renewals)
        while versions.count <= renewals, ContinuousClock.now < deadline {
            if let version = try? FileManager.default.destinationOfSymbolicLink(atPath: out + "/..data") { versions.insert(version) }
            try await Task.sleep(for: .milliseconds(100))
        }
        guard versions.count > renewals else { throw BenchError("the agent renewed \(versions.count - 1) times, expected \(renewals)") }
        return (ProcessStats.memory(pid: agent.pid, field: "VmRSS"), ProcessStats.memory(pid: agent.pid, field: "RssAnon"))
    }
}

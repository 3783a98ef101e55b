import Foundation
import MeshCAAgent
import MeshCACore
import MeshCAIO
import MeshCATestSupport
import Testing

/// The agent's retries when the CA cannot be reached, on a test clock: the delays double from the schedule's
/// first backoff up to its cap and stay there, and the status says why. Minutes of retries in milliseconds.
@Suite("Agent backoff on a test clock")
struct AgentBackoffTests {
    @Test("Retries against an unreachable CA wait 1, 2, 4 … seconds, capped at the maximum backoff")
    func backoffDoublesUpToTheCap() async throws {
        // random 1: each delay is the full backoff for its attempt (the upper end of its jittered range).
        let (agent, closed, roots) = try UnreachableCA.agent(random: 1)
        defer {
            withExtendedLifetime(closed) {}  // the port refuses connections until here
            roots.remove()
            Task { await agent.stop() }
        }

        var delays: [Double] = []
        for attempt in 1...8 {
            let status = try await agent.waitForStatus("failure \(attempt)") { $0.consecutiveFailures == attempt }
            #expect(status.state == "renewing-failed")
            #expect(status.lastError?.contains("127.0.0.1:\(closed.port)") == true, "\(status.lastError ?? "no error")")
            let pending = try #require(agent.clock.pendingDeadlines.first)
            delays.append((pending.seconds * 1000).rounded() / 1000)
            agent.clock.advance(by: pending)
        }
        #expect(delays == [1, 2, 4, 8, 16, 20, 20, 20])
        #expect(agent.status.current.serial == nil, "nothing was written")
    }
}

/// An agent on a test clock whose CA is a port nothing listens on, so every attempt fails at once with
/// "connection refused"; the schedule backs off from 1 s to at most 20 s. Keep the port (it refuses while it
/// lives) and remove the roots directory when done.
enum UnreachableCA {
    static func agent(random: Double = 0.5) throws -> (AgentFixture, ClosedPort, TemporaryDirectory) {
        let pki = try TestPKI()
        let roots = try TemporaryDirectory("roots")
        try roots.write("root-cert.pem", pki.root.pem)
        let closed = try ClosedPort()
        let agent = try AgentFixture.start(clock: TestClock(), random: random) { out in
            AgentConfiguration(
                caAddress: "127.0.0.1:\(closed.port)", identity: try pki.identity(), outDirectory: out,
                bootstrap: .token("not-used-the-ca-is-unreachable"), rootCertFile: roots.file("root-cert.pem"),
                schedule: try RenewalSchedule(initialBackoff: .seconds(1), maximumBackoff: .seconds(20)), statusAddress: nil)
        }
        return (agent, closed, roots)
    }
}

import Foundation
import MeshCAAgent
import MeshCACore
import MeshCAIO
import MeshCATestSupport
import Testing
import X509

/// The agent's renewal loop on a test clock against a real CA: renewal at half-life over mTLS, and the two ways
/// back from a certificate that cannot renew (expired while the CA was away, revoked), each in milliseconds.
@Suite("Agent renewal on a test clock")
struct AgentRenewalClockTests {
    static let identity = try! SPIFFEID(trustDomain: TrustDomain("cluster.local"), namespace: "default", serviceAccount: "was")

    /// An agent for `spiffe://cluster.local/ns/default/sa/was` against `daemon`, trusting its root file.
    static func agent(
        _ daemon: InProcessDaemon, bootstrap: AgentConfiguration.Bootstrap, clock: TestClock
    ) throws -> AgentFixture {
        try AgentFixture.start(clock: clock) { out in
            AgentConfiguration(
                caAddress: daemon.grpcAddress, identity: identity, outDirectory: out, bootstrap: bootstrap,
                rootCertFile: daemon.directory.file("state/root-cert.pem"), ttl: .seconds(3600),
                schedule: try RenewalSchedule(), statusAddress: nil)
        }
    }

    static func serialOnDisk(_ agent: AgentFixture) throws -> String {
        let chain = try Certificate.parseAll(pem: String(contentsOfFile: agent.outDirectory + "/cert-chain.pem", encoding: .utf8))
        return chain.first?.serialHex ?? ""
    }

    @Test("The agent renews over mTLS at half-life of the lifetime it received, and not a moment before")
    func renewsAtHalfLife() async throws {
        let (daemon, token) = try await InProcessDaemon.start()
        defer { Task { await daemon.stop() } }
        let clock = TestClock()
        let agent = try Self.agent(daemon, bootstrap: .token(token), clock: clock)
        defer { Task { await agent.stop() } }

        let first = try await agent.waitForStatus("the first certificate") { $0.renewals == 1 }
        #expect(first.obtainedBy == "token")
        let notAfter = try #require(first.notAfter)
        // With no jitter drawn the renewal is exactly at half the lifetime, counted from receipt (the clock's start).
        let halfLife = clock.start.addingTimeInterval(notAfter.timeIntervalSince(clock.start) / 2)
        let due = try #require(first.nextRenewal)
        #expect(abs(due.timeIntervalSince(halfLife)) < 0.001)
        #expect(try Self.serialOnDisk(agent) == first.serial)

        clock.advance(to: due.addingTimeInterval(-1))
        #expect(clock.sleepers == 1, "one second before half-life the loop still sleeps")
        #expect(agent.status.current.renewals == 1)

        // Past the moment by a millisecond: the deadline comes from a wall-clock Date, whose floating-point
        // seconds can land a few hundred nanoseconds either side of the exact half-life.
        clock.advance(to: due.addingTimeInterval(0.001))
        let second = try await agent.waitForStatus("the renewal") { $0.renewals == 2 }
        #expect(second.obtainedBy == "mtls")
        #expect(second.serial != first.serial)
        #expect(try Self.serialOnDisk(agent) == second.serial)
        let next = try #require(second.nextRenewal)
        #expect(next > clock.date)
    }

    @Test("A certificate that expired while the agent could not renew is replaced through the token file")
    func rebootstrapsAfterExpiry() async throws {
        // The CA runs on the agent's clock, so what it issues after the jump is valid at the agent's "now".
        let clock = TestClock()
        let (daemon, token) = try await InProcessDaemon.start(time: ServiceTime(clock: clock, now: { clock.date }))
        defer { Task { await daemon.stop() } }
        let tokenFile = daemon.directory.file("token")
        try token.write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let agent = try Self.agent(daemon, bootstrap: .tokenFile(tokenFile), clock: clock)
        defer { Task { await agent.stop() } }

        let first = try await agent.waitForStatus("the first certificate") { $0.renewals == 1 }
        // The first token has expired by then (1h); the operator puts a fresh one in the file.
        try await daemon.token(uses: 1, ttl: "48h").write(toFile: tokenFile, atomically: true, encoding: .utf8)
        // The renewal sleeps through half-life and expiry (a suspended machine); it wakes after notAfter.
        clock.advance(to: try #require(first.notAfter).addingTimeInterval(1))
        let second = try await agent.waitForStatus("a certificate from the token again") { $0.renewals == 2 }
        #expect(second.obtainedBy == "token")
        #expect(second.serial != first.serial)
        #expect(second.state == "ok")
    }

    @Test("A revoked certificate is refused for renewal and the agent bootstraps again from its token file")
    func rebootstrapsAfterRevocation() async throws {
        let (daemon, token) = try await InProcessDaemon.start(tokenUses: 2)
        defer { Task { await daemon.stop() } }
        let tokenFile = daemon.directory.file("token")
        try token.write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let clock = TestClock()
        let agent = try Self.agent(daemon, bootstrap: .tokenFile(tokenFile), clock: clock)
        defer { Task { await agent.stop() } }

        let first = try await agent.waitForStatus("the first certificate") { $0.renewals == 1 }
        let revoke = try await Command.meshca(["revoke", try #require(first.serial), "--state-dir", daemon.stateDir])
        #expect(revoke.status == 0, "\(revoke.stderr)")

        clock.advance(to: try #require(first.nextRenewal).addingTimeInterval(0.001))
        let second = try await agent.waitForStatus("a certificate from the token after the refusal") { $0.renewals == 2 }
        #expect(second.obtainedBy == "token")
        #expect(second.state == "ok")
        _ = try await agent.log.waitForLine(containing: "the CA refused the current certificate; bootstrapping again")
        // The refused renewal is in the ledger, over mTLS, saying why.
        let rejections = try await daemon.meshca(["audit", "rejections", "--json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(rejections.stdout.utf8)) as? [[String: Any]])
        #expect(rows.contains { $0["auth_method"] as? String == "mtls" && ($0["message"] as? String)?.contains("revoked") == true }, "\(rows)")
    }
}

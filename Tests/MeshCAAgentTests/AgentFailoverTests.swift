import Foundation
import MeshCAAgent
import MeshCACore
import MeshCAIO
import MeshCATestSupport
import Testing
import X509

/// The agent with several CA addresses (`--ca` repeated), on a test clock against real daemons: it stays with the
/// replica that answers, moves to the next when that one is gone, and backs off only after a whole round failed.
@Suite("Agent failover between CA replicas")
struct AgentFailoverTests {
    static let identity = try! SPIFFEID(
        trustDomain: TrustDomain("cluster.local"), namespace: "default", serviceAccount: "was")

    /// The serial of the certificate in the agent's `cert-chain.pem`, and whether the key beside it matches it.
    static func filesOnDisk(_ agent: AgentFixture) throws -> (serial: String, keyMatches: Bool) {
        let chain = try Certificate.parseAll(
            pem: String(contentsOfFile: agent.outDirectory + "/cert-chain.pem", encoding: .utf8))
        let key = try Certificate.PrivateKey(
            pemEncoded: String(contentsOfFile: agent.outDirectory + "/key.pem", encoding: .utf8))
        let leaf = try #require(chain.first)
        return (leaf.serialHex, leaf.publicKey == key.publicKey)
    }

    @Test("With two addresses the agent renews through the second replica after the first stopped, and stays there")
    func renewsThroughTheSecondReplica() async throws {
        let (daemon, token) = try await InProcessDaemon.start()
        defer { Task { await daemon.stop() } }
        // The replica shares the daemon's state directory: the same CA, ledger and tokens.
        let replica = try await daemon.replica()
        let clock = TestClock()
        let agent = try AgentFixture.start(clock: clock) { out in
            var configuration = AgentConfiguration(
                caAddress: replica.grpcAddress, identity: Self.identity, outDirectory: out, bootstrap: .token(token),
                rootCertFile: daemon.stateDir + "/root-cert.pem", ttl: .seconds(3600), schedule: try RenewalSchedule(),
                statusAddress: nil)
            configuration.caAddresses.append(daemon.grpcAddress)
            return configuration
        }
        defer { Task { await agent.stop() } }

        let first = try await agent.waitForStatus("the first certificate") { $0.renewals == 1 }
        #expect(first.obtainedBy == "token")
        #expect(first.caAddress == replica.grpcAddress, "the first address answers while it is up")

        await replica.stop()
        clock.advance(to: try #require(first.nextRenewal).addingTimeInterval(0.001))
        let second = try await agent.waitForStatus("the renewal through the second address") { $0.renewals == 2 }
        #expect(second.state == "ok")
        #expect(
            second.obtainedBy == "mtls", "the current certificate still renews: the second replica shares the ledger")
        #expect(second.caAddress == daemon.grpcAddress)
        #expect(
            second.consecutiveFailures == 0 && second.failures.isEmpty,
            "a failover within a round is not a failed round")
        #expect(second.serial != first.serial)
        let files = try Self.filesOnDisk(agent)
        #expect(files.serial == second.serial && files.keyMatches)
        let failover = try await agent.log.waitForLine(
            containing: "no answer from the CA at this address; asking the next")
        #expect(
            failover.contains("ca=\(replica.grpcAddress)") && failover.contains("next=\(daemon.grpcAddress)"),
            "\(failover)")
        #expect(failover.contains("connection refused"), "\(failover)")
        let written = try await agent.log.waitForLine(containing: "via=mtls")
        #expect(written.contains("certificate written ca=\(daemon.grpcAddress)"), "\(written)")

        // Sticky: the next renewal asks the address that answered, without trying the stopped one first.
        clock.advance(to: try #require(second.nextRenewal).addingTimeInterval(0.001))
        let third = try await agent.waitForStatus("the next renewal") { $0.renewals == 3 }
        #expect(third.caAddress == daemon.grpcAddress)
        #expect(
            agent.log.all.filter { $0.contains("asking the next") }.count == 1,
            "\(agent.log.all.joined(separator: "\n"))")
    }

    @Test("When no address answers, the status names each one, the round counts once, and the backoff is as with one")
    func allAddressesDown() async throws {
        let pki = try TestPKI()
        let roots = try TemporaryDirectory("roots")
        defer { roots.remove() }
        try roots.write("root-cert.pem", pki.root.pem)
        let (a, b) = (try ClosedPort(), try ClosedPort())
        let agent = try AgentFixture.start(clock: TestClock(), random: 1) { out in
            var configuration = AgentConfiguration(
                caAddress: "127.0.0.1:\(a.port)", identity: try pki.identity(), outDirectory: out,
                bootstrap: .token("not-used-the-ca-is-unreachable"), rootCertFile: roots.file("root-cert.pem"),
                schedule: try RenewalSchedule(initialBackoff: .seconds(1), maximumBackoff: .seconds(20)),
                statusAddress: nil)
            configuration.caAddresses.append("127.0.0.1:\(b.port)")
            return configuration
        }
        defer {
            withExtendedLifetime((a, b)) {}  // the ports refuse connections until here
            Task { await agent.stop() }
        }

        let status = try await agent.waitForStatus("the first failed round") { $0.consecutiveFailures == 1 }
        let error = try #require(status.lastError)
        #expect(error.contains("Cannot reach a CA at any of its 2 addresses"), "\(error)")
        #expect(error.contains("127.0.0.1:\(a.port): connection refused"), "\(error)")
        #expect(error.contains("127.0.0.1:\(b.port): connection refused"), "\(error)")
        #expect(error.contains("Is `meshca serve` running at each address?"), "\(error)")
        #expect(status.failures == [.caUnreachable: 1])
        #expect(status.caAddress == nil)
        // The first backoff (1 s at random 1) follows the whole round, not each address.
        #expect(agent.clock.pendingDeadlines.first.map { ($0.seconds * 1000).rounded() / 1000 } == 1)
    }
}

import Foundation
import GRPCCore
import MeshCAAgent
import MeshCACore
import MeshCADaemon
import MeshCATestSupport
import MeshCATransport
import SwiftASN1
import Testing
import X509

/// Two `meshca serve` replicas on one state directory and one PostgreSQL database (a fresh database per test on the
/// test kit's shared server), and the real `meshca` commands on the same ledger.
@Suite(
    "Two meshca serve replicas on one PostgreSQL ledger",
    .enabled(if: PostgreSQLServer.isAvailable, "\(PostgreSQLServer.unavailableReason)"))
struct ReplicaTests {
    struct Replicas {
        let first: InProcessDaemon
        let second: InProcessDaemon

        var both: [InProcessDaemon] { [first, second] }

        func stop() async {
            await second.stop()
            await first.stop()
        }
    }

    /// Two replicas on a new database, and a join token for `was` with `tokenUses` uses.
    func replicas(tokenUses: Int = 1) async throws -> (Replicas, token: String) {
        let server = try await PostgreSQLServer.shared
        let url = server.url(database: try await server.createDatabase())
        let (first, token) = try await InProcessDaemon.start(tokenUses: tokenUses, environment: ["MESHCA_LEDGER": url]) {
            $0.ledgerURL = url
        }
        let second = try await first.replica { $0.ledgerURL = url }
        return (Replicas(first: first, second: second), token)
    }

    /// `meshca audit list --json` on the shared ledger.
    func issued(_ daemon: InProcessDaemon) async throws -> [[String: Any]] {
        let listed = try await daemon.meshca(["audit", "list", "--json"])
        #expect(listed.status == 0, "\(listed.stderr)")
        return (try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]]) ?? []
    }

    @Test("A single-use token sent to both replicas at the same instant yields exactly one certificate")
    func singleUseTokenRace() async throws {
        let (replicas, token) = try await self.replicas()
        let clients = [try replicas.first.client(), try replicas.second.client()]
        let outcomes = try await withThrowingTaskGroup(of: RPCError.Code?.self) { group in
            for index in 0..<8 {
                let client = clients[index % 2]
                let csr = try workloadCSR().pem
                group.addTask {
                    await RPCResult.code { _ = try await client.createCertificate(csrPEM: csr, ttl: nil, headers: bearer(token)) }
                }
            }
            return try await group.reduce(into: [RPCError.Code?]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == nil }.count == 1, "\(outcomes)")
        #expect(outcomes.filter { $0 == .unauthenticated }.count == 7, "\(outcomes)")
        #expect(try await issued(replicas.first).filter { ($0["auth_method"] as? String) == "token" }.count == 1)
        await replicas.stop()
    }

    @Test("Both replicas issuing at once: every certificate handed out has its row, and audit verify proves one chain")
    func concurrentIssuanceOneChain() async throws {
        // Uses to spare: a commit whose answer came too late is a used token use and an UNAVAILABLE answer.
        let (replicas, token) = try await self.replicas(tokenUses: 80)
        // All 40 calls start at once and queue behind each other in this process: each one's deadline is a hang
        // guard for the whole batch, not the 15 s a single call gets (a busy machine took longer than that).
        var clients = [try replicas.first.client(), try replicas.second.client()]
        for index in clients.indices { clients[index].timeout = .seconds(120) }
        let serials = try await withThrowingTaskGroup(of: String.self) { group in
            for index in 0..<40 {
                let client = clients[index % 2]
                let csr = try workloadCSR().pem
                group.addTask {
                    // UNAVAILABLE says nothing was handed out and asks for a retry, which Istio's agent and meshca's
                    // make: on a machine busy with other work, a replica's wait for a database connection can run
                    // out (seen beside two `yes` processes). Every other answer ends the call.
                    let chain = try await RPCResult.retryingUnavailable {
                        try await client.createCertificate(csrPEM: csr, ttl: nil, headers: bearer(token))
                    }
                    return try Certificate(pemEncoded: chain[0]).serialHex
                }
            }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(serials.count == 40)
        let rows = Set(try await issued(replicas.second).compactMap { $0["serial"] as? String })
        #expect(serials.isSubset(of: rows), "every certificate handed out is in the shared ledger")
        let verified = try await replicas.first.meshca(["audit", "verify", "--checkpoint"])
        #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
        #expect(verified.stdout.contains("ledger intact"), "\(verified.stdout)")
        await replicas.stop()
    }

    @Test("A revocation made with the CLI is refused at renewal by both replicas and listed on both CRLs")
    func revocationReachesBoth() async throws {
        let (replicas, token) = try await self.replicas()
        let (key, csr) = try workloadCSR()
        let chain = try await replicas.first.client().createCertificate(csrPEM: csr, ttl: nil, headers: bearer(token))
        let leaf = try Certificate(pemEncoded: chain[0])
        let revoked = try await replicas.second.meshca(["revoke", leaf.serialHex, "--reason", "keyCompromise"])
        #expect(revoked.status == 0, "\(revoked.stderr)")
        let identity = CAClient.ClientIdentity(chainPEM: chain.joined(), keyPEM: try key.serializeAsPEM().pemString)
        for replica in replicas.both {
            let client = try CAClient(address: replica.grpcAddress, trust: .roots(replica.roots()), identity: identity)
            let renewal = await RPCResult.failure { _ = try await client.createCertificate(csrPEM: try workloadCSR().pem, ttl: nil) }
            #expect(renewal?.code == .unauthenticated, "\(String(describing: renewal))")
            #expect(renewal?.message.contains("was revoked at") == true, "\(String(describing: renewal))")
            // Each replica's CRL follows the ledger by its 1 s poll; the timeout is a hang guard.
            let der = replica.directory.file("crl.der")
            try await Wait.until("the replica on \(replica.grpcAddress) lists \(leaf.serialHex) on /crl") {
                let fetched = try await Command.run("curl", ["-fsS", "-o", der, "http://127.0.0.1:\(replica.monitoringPort)/crl"])
                guard fetched.status == 0 else { return false }
                let text = try await Command.run("openssl", ["crl", "-inform", "DER", "-in", der, "-noout", "-text"])
                return text.stdout.contains("Serial Number: \(leaf.serialHex.uppercased())")
            }
        }
        await replicas.stop()
    }
}

/// A daemon whose PostgreSQL server stops and starts again. Its own server (the test stops it), so it never
/// disturbs the shared one.
@Suite(
    "meshca serve when its PostgreSQL ledger goes away",
    .enabled(if: PostgreSQLServer.isAvailable, "\(PostgreSQLServer.unavailableReason)"))
struct LedgerOutageTests {
    @Test("PostgreSQL stopped with requests in flight: every refused request is UNAVAILABLE naming the database, nothing sent while it is down is recorded, and issuing resumes when it is back")
    func databaseStopsAndReturns() async throws {
        let server = try await PostgreSQLServer.start()
        let database = try await server.createDatabase()
        // A request waits at most 2 s for a database connection (5 s by default) before it is refused.
        let url = server.url(database: database, options: "sslmode=disable&connect_timeout=2")
        let (daemon, token) = try await InProcessDaemon.start(tokenUses: 12, environment: ["MESHCA_LEDGER": url]) {
            $0.ledgerURL = url
        }
        let client = try daemon.client()
        _ = try await client.createCertificate(csrPEM: try workloadCSR().pem, ttl: nil, headers: bearer(token))

        // Four requests in flight as the server stops, and four more while it is down: each is UNAVAILABLE.
        @Sendable func fourAtOnce() async -> [RPCError] {
            await withTaskGroup(of: RPCError?.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        await RPCResult.failure {
                            _ = try await client.createCertificate(csrPEM: try workloadCSR().pem, ttl: nil, headers: bearer(token))
                        }
                    }
                }
                return await group.reduce(into: [RPCError]()) { if let failure = $1 { $0.append(failure) } }
            }
        }
        let inFlight = Task { await fourAtOnce() }
        try await server.stop()
        var failures = await inFlight.value
        let answeredInFlight = 4 - failures.count
        failures += await fourAtOnce()
        let failure = failures.last
        #expect(failures.count >= 4, "at least the four sent while the server was down failed")
        for failure in failures {
            #expect(failure.code == .unavailable, "\(failure)")
            #expect(failure.message.contains("PostgreSQL database \"\(database)\""), "\(failure)")
        }
        #expect(failure?.message.contains("127.0.0.1:\(server.port)") == false, "where the database is stays in the log")
        #expect(daemon.log.all.contains { $0.contains(database) }, "the daemon's log names the database")

        try await server.startServer()
        _ = try await Wait.value("a request is answered once PostgreSQL is back") {
            try? await client.createCertificate(csrPEM: try workloadCSR().pem, ttl: nil, headers: bearer(token))
        }
        let inFlightRefused = 4 - answeredInFlight
        let listed = try await daemon.meshca(["audit", "list", "--json"])
        let rows = (try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]]) ?? []
        // One before, the requests in flight that were answered, and one after; a request in flight whose commit
        // reached the server just before it stopped may have its row without its answer; none sent while it was down.
        let recorded = rows.filter { ($0["auth_method"] as? String) == "token" }.count
        let answered = 1 + answeredInFlight + 1
        #expect(recorded >= answered && recorded <= answered + inFlightRefused, "\(recorded) rows, \(answered) answered")
        await daemon.stop()
        await server.remove()
    }
}

/// Real `meshca serve` processes: one is killed while `meshca issue` goes through both.
@Suite(
    "Two meshca serve processes on one PostgreSQL ledger",
    .enabled(if: PostgreSQLServer.isAvailable, "\(PostgreSQLServer.unavailableReason)"))
struct ReplicaProcessTests {
    /// Runs `count` `meshca serve` processes on one new state directory and PostgreSQL database, with a join token
    /// for `was` of `tokenUses` uses in `dir/was.token`; `body` gets the processes, their gRPC addresses, the state
    /// directory and the environment naming the ledger.
    func withReplicas(
        _ count: Int, tokenUses: Int,
        _ body: (_ replicas: [BackgroundProcess], _ addresses: [String], _ dir: TemporaryDirectory, _ state: String,
            _ environment: [String: String]) async throws -> Void
    ) async throws {
        let server = try await PostgreSQLServer.shared
        let url = server.url(database: try await server.createDatabase())
        let dir = try TemporaryDirectory("replicas")
        defer { dir.remove() }
        let state = dir.file("state")
        let environment = ["MESHCA_LEDGER": url]
        let initialized = try await Command.meshca(["init", "--state-dir", state], environment: environment)
        try #require(initialized.status == 0, "\(initialized.stderr)")
        let token = try await Command.meshca(
            ["token", "create", "--sa", "was", "--uses", String(tokenUses), "--state-dir", state], environment: environment)
        try #require(token.status == 0, "\(token.stderr)")
        try dir.write("was.token", token.stdout)

        for _ in 0..<count { await ProcessSlots.daemons.acquire() }
        defer { for _ in 0..<count { ProcessSlots.daemons.release() } }
        var addresses: [String] = []
        var replicas: [BackgroundProcess] = []
        defer { for replica in replicas { replica.terminate() } }
        for _ in 0..<count {
            let serve = try BackgroundProcess(
                Command.meshcaBinary,
                ["serve", "--state-dir", state, "--listen", "127.0.0.1:0", "--monitoring", "127.0.0.1:0"],
                environment: environment)
            replicas.append(serve)
            let line = try await serve.waitForLine(containing: "listening on")
            let address = line.split(separator: " ").first { $0.hasPrefix("127.0.0.1:") }
            addresses.append(String(try #require(address, "\(line)")))
        }
        try await body(replicas, addresses, dir, state, environment)
    }

    /// The serials `meshca audit list` shows, and whether `meshca audit verify` passes, on the replicas' ledger.
    func ledger(state: String, environment: [String: String]) async throws -> (serials: Set<String>, verified: Bool) {
        let listed = try await Command.meshca(["audit", "list", "--json", "--state-dir", state], environment: environment)
        let recorded = ((try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]]) ?? [])
            .compactMap { $0["serial"] as? String }
        let verified = try await Command.meshca(["audit", "verify", "--state-dir", state], environment: environment)
        return (Set(recorded), verified.status == 0)
    }

    @Test("kill -9 of one replica while four agents renew through both: every agent renews, keeps files that match, and every certificate has its row")
    func killOneReplicaUnderAgents() async throws {
        try await withReplicas(2, tokenUses: 4) { replicas, addresses, dir, state, environment in
            let identity = try SPIFFEID(trustDomain: TrustDomain("cluster.local"), namespace: "default", serviceAccount: "was")
            let token = try String(contentsOfFile: dir.file("was.token"), encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            var agents: [AgentFixture] = []
            defer { for agent in agents { Task { await agent.stop() } } }
            for index in 0..<4 {
                // Half ask replica A first, half replica B.
                let order = index % 2 == 0 ? addresses : addresses.reversed()
                agents.append(
                    try AgentFixture.start(clock: TestClock()) { out in
                        var configuration = AgentConfiguration(
                            caAddress: order[0], identity: identity, outDirectory: out, bootstrap: .token(token),
                            rootCertFile: state + "/root-cert.pem", ttl: .seconds(3600), schedule: try RenewalSchedule(),
                            statusAddress: nil)
                        configuration.caAddresses.append(order[1])
                        return configuration
                    })
            }
            var handedOut: Set<String> = []
            for round in 1...3 {
                var statuses: [AgentStatus] = []
                for agent in agents {
                    statuses.append(try await agent.waitForStatus("certificate \(round)") { $0.renewals == round })
                }
                for (agent, status) in zip(agents, statuses) {
                    #expect(status.state == "ok", "\(status)")
                    let chain = try Certificate.parseAll(
                        pem: String(contentsOfFile: agent.outDirectory + "/cert-chain.pem", encoding: .utf8))
                    let key = try Certificate.PrivateKey(
                        pemEncoded: String(contentsOfFile: agent.outDirectory + "/key.pem", encoding: .utf8))
                    #expect(
                        chain.first?.serialHex == status.serial && chain.first?.publicKey == key.publicKey,
                        "the files on disk are the status's certificate and its key")
                    handedOut.insert(try #require(status.serial))
                }
                guard round < 3 else { break }
                // Every agent's renewal starts at once; in the second round replica A is killed as they start.
                for (agent, status) in zip(agents, statuses) {
                    agent.clock.advance(to: try #require(status.nextRenewal).addingTimeInterval(0.001))
                }
                if round == 2 { _ = try await replicas[0].stop(signal: SIGKILL) }
            }
            #expect(handedOut.count == 12)
            #expect(
                agents.allSatisfy { $0.status.current.caAddress == addresses[1] },
                "after the kill every agent is on replica B")
            let ledger = try await ledger(state: state, environment: environment)
            #expect(handedOut.isSubset(of: ledger.serials), "every certificate an agent holds or held was recorded")
            #expect(ledger.verified)
        }
    }

    @Test("kill -9 of one replica while meshca issue names both: every request is answered, every certificate has its row")
    func killOneReplica() async throws {
        try await withReplicas(2, tokenUses: 12) { replicas, addresses, dir, state, environment in
            var serials: [String] = []
            for round in 0..<12 {
                if round == 6 { _ = try await replicas[0].stop(signal: SIGKILL) }
                let issued = try await Command.meshca(
                    [
                        "issue", "--sa", "was", "--server", addresses[0], "--server", addresses[1], "--token-file",
                        dir.file("was.token"), "--out", dir.file("out\(round)"), "--json",
                    ], environment: environment)
                try #require(issued.status == 0, "round \(round): \(issued.stderr)")
                let object = try JSONSerialization.jsonObject(with: Data(issued.stdout.utf8)) as? [String: Any]
                serials.append(try #require(object?["serial"] as? String))
            }
            let ledger = try await ledger(state: state, environment: environment)
            #expect(Set(serials).isSubset(of: ledger.serials), "every certificate handed out was recorded")
            #expect(ledger.verified)
        }
    }
}

import Foundation
import MeshCACore
import MeshCATestSupport
import Testing
import X509

/// What the agent's credential directory holds right now.
private func credentials(_ out: String) -> (leaf: Certificate, roots: [Certificate])? {
    guard let chain = FileManager.default.contents(atPath: out + "/cert-chain.pem"),
        let roots = FileManager.default.contents(atPath: out + "/root-cert.pem"),
        let leaf = try? Certificate.parseAll(pem: String(decoding: chain, as: UTF8.self)).first,
        let bundle = try? Certificate.parseAll(pem: String(decoding: roots, as: UTF8.self))
    else { return nil }
    return (leaf, bundle)
}

@Suite("Root rotation under traffic: two agents, a handshake loop, prepare → activate → retire")
struct RootRotationEndToEndTests {
    @Test("Every handshake between the two workloads succeeds through the whole rotation, and the daemon's own certificate follows the active root")
    func zeroFailedHandshakes() async throws {
        let daemon = try await TestDaemon.start(["--serving-cert-ttl", "8s"])
        defer { daemon.stop() }
        // Each agent renews with 80 % of its 8 s left: a new certificate (and bundle) every 1.6 s, 6.4 s before expiry.
        let renewFast = ["--ttl", "8s", "--grace-ratio", "0.8"]
        let web = try await TestAgent.start(daemonAddress: daemon.address, token: try daemon.token(), out: daemon.directory.file("web"), extra: renewFast)
        defer { web.stop() }
        let db = try await TestAgent.start(
            daemonAddress: daemon.address, token: try daemon.token(sa: "db"), out: daemon.directory.file("db"), sa: "db", extra: renewFast)
        defer { db.stop() }
        _ = try await web.waitUntil { $0["state"] as? String == "ok" }
        _ = try await db.waitUntil { $0["state"] as? String == "ok" }
        let oldRoot = try #require(try daemon.roots().first)

        var handshakes = 0
        var failures: [String] = []
        /// Runs handshakes (db serves, web connects, both verify each other) until `done` holds; 120 s is a hang guard.
        func handshakeUntil(_ what: String, _ done: () async throws -> Bool) async throws {
            try await Wait.until("\(what) (\(handshakes) handshakes so far)", timeout: .seconds(120)) {
                if try await done() { return true }
                let result = try await Command.meshca([
                    "handshake", "--server", daemon.directory.file("db"), "--client", daemon.directory.file("web"),
                    "--expect-server-id", "spiffe://cluster.local/ns/default/sa/db",
                    "--expect-client-id", "spiffe://cluster.local/ns/default/sa/was",
                ])
                handshakes += 1
                if result.status != 0 { failures.append("[\(what)] " + result.stdout + result.stderr) }
                return false
            }
        }
        let agents = [daemon.directory.file("web"), daemon.directory.file("db")]
        func everyAgent(_ check: (Certificate, [Certificate]) -> Bool) -> Bool {
            agents.allSatisfy { credentials($0).map { check($0.leaf, $0.roots) } ?? false }
        }

        // Prepare: the agents pick up the two-root bundle at their next renewal. Issuances count as carrying it from
        // 2 s after prepare (5 s by default), twice the daemon's 1 s state poll.
        #expect(try await daemon.meshca("root", "prepare", "--pick-up-margin", "2s").status == 0)
        let newRoot = try #require(try daemon.roots().last)
        #expect(newRoot != oldRoot)
        try await handshakeUntil("both agents hold both roots") {
            everyAgent { _, roots in roots.contains(newRoot) && roots.contains(oldRoot) }
        }
        // ... and the ledger has seen both renew since prepare (the activation gate).
        try await handshakeUntil("no identity lags") {
            let status = try await daemon.meshca("root", "status", "--json")
            let json = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
            return json?["lagging"] as? Int == 0
        }
        let activate = try await daemon.meshca("root", "activate")
        #expect(activate.status == 0, "\(activate.stderr)")

        // Activate: renewals now come from the new root, while peers still on the old root keep verifying.
        try await handshakeUntil("both agents hold certificates from the new root") {
            everyAgent { leaf, _ in leaf.issuer == newRoot.subject }
        }
        // The daemon's serving certificate follows the active root (checked by OpenSSL, not by meshca).
        let served = try await Command.run("sh", ["-c", "openssl s_client -connect \(daemon.address) -alpn h2 </dev/null 2>/dev/null | openssl x509 -noout -issuer"])
        #expect(served.stdout.contains("meshca root"), "serving certificate issuer: \(served.stdout)")

        // Retire: once both agents have renewed onto the new root nothing depends on the old one (the daemon's
        // serving certificates from it were superseded when it replaced them), so it goes through at once, without
        // waiting for the old root's certificates to expire and without revoking any by hand.
        // The daemon replaces its serving certificate on its own schedule after the activation (its CA-state watch),
        // which can come after the agents' renewals: wait for the ledger to show the old one superseded.
        var status: [String: Any]? = nil
        try await handshakeUntil("the daemon's serving certificate from the old root is recorded as superseded") {
            status = try JSONSerialization.jsonObject(with: Data(try await daemon.meshca("root", "status", "--json").stdout.utf8)) as? [String: Any]
            return (status?["serving_superseded_on_old_root"] as? Int ?? 0) >= 1
        }
        #expect((status?["blockers"] as? [Any])?.isEmpty == true, "\(status ?? [:])")
        let retire = try await daemon.meshca("root", "retire")
        #expect(retire.status == 0, "\(retire.stderr)")
        #expect(try daemon.roots() == [newRoot])
        try await handshakeUntil("both agents hold only the new root") {
            everyAgent { _, roots in roots == [newRoot] }
        }

        #expect(failures.isEmpty, "\(failures.count) of \(handshakes) handshakes failed: \(failures.first ?? "")")
        #expect(handshakes >= 5)
        let verify = try await daemon.meshca("audit", "verify")
        #expect(verify.status == 0, "\(verify.stdout)")
    }

    @Test("After a forced activation an agent that never saw the new root still renews, through the daemon's bridge certificate")
    func forcedActivationRecovers() async throws {
        let daemon = try await TestDaemon.start()
        defer { daemon.stop() }
        let out = daemon.directory.file("web")
        let web = try await TestAgent.start(daemonAddress: daemon.address, token: try daemon.token(), out: out, extra: ["--ttl", "6s"])
        defer { web.stop() }
        _ = try await web.waitUntil { $0["state"] as? String == "ok" }
        let oldRoot = try #require(try daemon.roots().first)
        #expect(try await daemon.meshca("root", "prepare").status == 0)
        let forced = try await daemon.meshca("root", "activate", "--force")
        #expect(forced.status == 0, "\(forced.stderr)")
        let newRoot = try #require(try daemon.roots().first)
        #expect(newRoot != oldRoot)
        // The agent trusted only the old root when the daemon's certificate moved to the new one.
        let renewals = try await web.status()["renewals"] as? Int ?? 0
        _ = try await web.waitUntil { ($0["renewals"] as? Int ?? 0) > renewals && $0["state"] as? String == "ok" }
        _ = try await web.waitUntil { _ in credentials(out).map { $0.leaf.issuer == newRoot.subject && $0.roots.contains(oldRoot) } ?? false }
    }
}

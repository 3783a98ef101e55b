import Foundation
import GRPCCore
import MeshCACore
import MeshCATestSupport
import MeshCATransport
import SwiftASN1
import Testing
import X509

@Suite("Revocation against a running meshca serve")
struct RevocationTests {
    /// GETs `url` with curl into `file` and returns the HTTP status and content type.
    private func download(_ url: String, to file: String) async throws -> (status: String, contentType: String) {
        let result = try await Command.run("curl", ["-s", "-o", file, "-w", "%{http_code} %{content_type}", url])
        let parts = result.stdout.split(separator: " ", maxSplits: 1).map(String.init)
        return (parts.first ?? "", parts.count > 1 ? parts[1] : "")
    }

    @Test("A certificate revoked with the CLI can no longer renew, the refusal is recorded, and /crl lists it")
    func revokedCannotRenew() async throws {
        let daemon = try await TestDaemon.start()
        defer { daemon.stop() }
        let token = try await daemon.token()
        let (key, csr) = try workloadCSR()
        let first = try await daemon.client().createCertificate(csrPEM: csr, ttl: nil, headers: bearer(token))
        let leaf = try CredentialBundle(istioChain: first).leaf
        let identity = CAClient.ClientIdentity(chainPEM: first.joined(), keyPEM: try key.serializeAsPEM().pemString)
        _ = try await daemon.client(identity: identity).createCertificate(csrPEM: workloadCSR().pem, ttl: nil)

        let revoke = try await daemon.meshca("revoke", leaf.serialHex, "--reason", "keyCompromise")
        #expect(revoke.status == 0, "\(revoke.stderr)")

        let refusal = await RPCResult.failure {
            _ = try await daemon.client(identity: identity).createCertificate(csrPEM: try workloadCSR().pem, ttl: nil)
        }
        #expect(refusal?.code == .unauthenticated)
        #expect(refusal?.message.contains("serial \(leaf.serialHex)") == true, "\(String(describing: refusal))")
        #expect(refusal?.message.contains("was revoked at") == true)
        #expect(refusal?.message.contains("reason: keyCompromise") == true)
        #expect(refusal?.message.contains("join token") == true)
        let rejections = try await daemon.rejections()
        #expect(rejections.contains { ($0["message"] as? String)?.contains("was revoked at") == true }, "\(rejections)")

        // The daemon picks the CLI's revocation up by polling the ledger; wait for it (bounded, not timed).
        let der = daemon.directory.file("crl.der")
        var listed = ""
        try await Wait.until("/crl lists \(leaf.serialHex)") {
            let (status, type) = try await download("http://\(daemon.monitoring)/crl", to: der)
            #expect(status == "200")
            #expect(type == "application/pkix-crl")
            let text = try await Command.run(
                "openssl",
                ["crl", "-inform", "DER", "-in", der, "-noout", "-text", "-CAfile", daemon.stateDir + "/ca-cert.pem"])
            listed = text.stdout + text.stderr
            return listed.contains("Serial Number: \(leaf.serialHex.uppercased())")
        }
        #expect(listed.contains("Serial Number: \(leaf.serialHex.uppercased())"), "\(listed)")
        #expect(listed.contains("verify OK"))
        #expect(listed.contains("Key Compromise"))

        let pem = daemon.directory.file("crl.pem")
        await #expect(try download("http://\(daemon.monitoring)/crl.pem", to: pem).status == "200")
        #expect(try String(contentsOfFile: pem, encoding: .utf8).hasPrefix("-----BEGIN X509 CRL-----"))
    }
}

@Suite("meshca agent --crl-url against a running meshca serve")
struct AgentCRLTests {
    @Test("The agent writes the CA's CRL next to its files and follows a revocation made with the CLI")
    func agentFetchesCRL() async throws {
        let daemon = try await TestDaemon.start()
        defer { daemon.stop() }
        let out = daemon.directory.file("was")
        let agent = try await TestAgent.start(
            daemonAddress: daemon.address, token: try daemon.token(), out: out,
            extra: ["--crl-url", "http://\(daemon.monitoring)/crl", "--crl-refresh", "1s"])
        defer { agent.stop() }
        _ = try await agent.waitUntil { $0["state"] as? String == "ok" }

        // Another workload's certificate, then revoked with the CLI: the agent's copy must come to list it.
        let token = try await daemon.token(sa: "db")
        let other = try await daemon.client().createCertificate(
            csrPEM: try workloadCSR(sa: "db").pem, ttl: nil, headers: bearer(token))
        let serial = try CredentialBundle(istioChain: other).leaf.serialHex
        #expect(try await daemon.meshca("revoke", serial, "--reason", "superseded").status == 0)

        var text = ""
        try await Wait.until("the agent's crl.pem lists \(serial); agent stderr:\n\(agent.process.errorOutput)") {
            let result = try await Command.run(
                "openssl", ["crl", "-in", out + "/crl.pem", "-noout", "-text", "-CAfile", out + "/root-cert.pem"])
            text = result.stdout + result.stderr
            return text.contains("Serial Number: \(serial.uppercased())")
        }
        #expect(text.contains("Serial Number: \(serial.uppercased())"), "\(text)\n\(agent.process.errorOutput)")
        #expect(text.contains("verify OK"))
        #expect(try daemon.directory.mode("was/crl.pem") == 0o644)

        let bad = try await Command.meshca([
            "agent", "--ca", daemon.address, "--sa", "was", "--out", out, "--token", try daemon.token(),
            "--crl-url", "https://\(daemon.monitoring)/crl",
        ])
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("plain http://"))
    }
}

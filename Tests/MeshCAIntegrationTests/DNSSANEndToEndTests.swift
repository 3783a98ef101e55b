import Foundation
import GRPCCore
import MeshCACore
import MeshCATestSupport
import MeshCATransport
import Testing
import X509

@Suite("meshca agent --dns-name against meshca serve --allow-dns-sans")
struct DNSSANEndToEndTests {
    @Test("The agent's certificate carries the allowed DNS names (OpenSSL verifies the host name); a name outside the policy is refused")
    func agentDNSNames() async throws {
        let daemon = try await TestDaemon.start(["--allow-dns-sans", "default/was=web.example.internal,default/was=*.svc.example.internal"])
        defer { daemon.stop() }
        let out = daemon.directory.file("was")
        let agent = try await TestAgent.start(
            daemonAddress: daemon.address, token: try daemon.token(uses: 1), out: out,
            extra: ["--dns-name", "web.example.internal", "--dns-name", "api.svc.example.internal"])
        defer { agent.stop() }
        _ = try await agent.waitUntil { $0["state"] as? String == "ok" }
        let leaf = try #require(try Certificate.parseAll(pem: String(contentsOfFile: out + "/cert-chain.pem", encoding: .utf8)).first)
        #expect(leaf.uriSANs == ["spiffe://cluster.local/ns/default/sa/was"])
        #expect(leaf.dnsSANs == ["web.example.internal", "api.svc.example.internal"])
        let verify = try await Command.run(
            "openssl", ["verify", "-CAfile", out + "/root-cert.pem", "-verify_hostname", "api.svc.example.internal", out + "/cert-chain.pem"])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        let rows = try await daemon.ledger()
        #expect(rows.contains { ($0["sans"] as? [String])?.contains("DNS:web.example.internal") == true }, "\(rows)")

        // Another identity, or a name no pattern matches, gets INVALID_ARGUMENT saying why.
        let key = try KeyType.ecP256.generate()
        let identity = try SPIFFEID(parsing: "spiffe://cluster.local/ns/default/sa/api")
        let other = try WorkloadCSR.pem(WorkloadCSR.make(for: identity, dnsNames: ["web.example.internal"], key: key))
        let refused = await RPCResult.failure {
            _ = try await daemon.client().createCertificate(csrPEM: other, ttl: nil, headers: bearer(try await daemon.token(sa: "api")))
        }
        #expect(refused?.code == .invalidArgument)
        #expect(refused?.message.contains("allow-dns-sans") == true, "\(refused?.message ?? "")")
        let outside = try WorkloadCSR.pem(WorkloadCSR.make(for: try SPIFFEID(parsing: "spiffe://cluster.local/ns/default/sa/was"), dnsNames: ["db.internal"], key: key))
        let denied = await RPCResult.failure {
            _ = try await daemon.client().createCertificate(csrPEM: outside, ttl: nil, headers: bearer(try await daemon.token()))
        }
        #expect(denied?.code == .invalidArgument)
        #expect(denied?.message.contains("may have only DNS names matching web.example.internal, *.svc.example.internal") == true, "\(denied?.message ?? "")")
    }
}

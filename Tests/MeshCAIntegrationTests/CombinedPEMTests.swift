import Foundation
import MeshCATestSupport
import Testing

@Suite("meshca-agent --combined-pem: chain and key in one file, swapped with the others")
struct CombinedPEMTests {
    @Test("Across renewals the combined file is the current cert-chain.pem followed by the current key.pem; OpenSSL reads both")
    func combined() async throws {
        let daemon = try await TestDaemon.start()
        defer { daemon.stop() }
        let out = daemon.directory.file("was")
        let agent = try await TestAgent.start(
            daemonAddress: daemon.address, token: try daemon.token(uses: 1), out: out, extra: ["--ttl", "6s", "--combined-pem", "haproxy.pem"])
        defer { agent.stop() }
        _ = try await agent.waitUntil { ($0["renewals"] as? Int ?? 0) >= 2 }
        let version = try FileManager.default.destinationOfSymbolicLink(atPath: out + "/..data")
        let base = out + "/" + version
        let chain = try String(contentsOfFile: base + "/cert-chain.pem", encoding: .utf8)
        let key = try String(contentsOfFile: base + "/key.pem", encoding: .utf8)
        #expect(try String(contentsOfFile: base + "/haproxy.pem", encoding: .utf8) == chain + key)
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: base + "/haproxy.pem")[.posixPermissions] as? Int)
        #expect(mode == 0o600)
        // OpenSSL takes the certificate and the key from the one file, and they belong together.
        let certificateKey = try await Command.run("openssl", ["x509", "-in", out + "/haproxy.pem", "-noout", "-pubkey"])
        let privateKey = try await Command.run("openssl", ["pkey", "-in", out + "/haproxy.pem", "-pubout"])
        #expect(certificateKey.status == 0 && privateKey.status == 0, "\(certificateKey.stderr)\(privateKey.stderr)")
        #expect(certificateKey.stdout == privateKey.stdout)
        let verify = try await Command.run("openssl", ["verify", "-CAfile", out + "/root-cert.pem", out + "/haproxy.pem"])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
    }
}

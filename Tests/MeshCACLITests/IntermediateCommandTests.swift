import Foundation
import MeshCATestSupport
import Testing

@Suite("meshca intermediate create and init --plugin-ca")
struct IntermediateCommandTests {
    @Test("An intermediate from one meshca becomes another's plug-in CA; OpenSSL verifies the three-level chain")
    func pluginChain() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try await ws.meshca("intermediate", "create", "--out", "cacerts"))
        #expect(try ws.dir.mode("cacerts/ca-key.pem") == 0o600)
        let text = try await ws.openssl("x509", "-in", "cacerts/ca-cert.pem", "-noout", "-text").stdout
        #expect(text.contains("CA:TRUE, pathlen:0"))
        let rows = try ws.json(try await ws.meshca("audit", "list", "--json"))
        #expect(rows.count == 1, "the intermediate is recorded in the ledger")

        let plug = ws.dir.file("plug")
        expectSuccess(try await Command.meshca(["init", "--state-dir", plug, "--plugin-ca", "cacerts"], directory: ws.dir.path))
        expectSuccess(try await Command.meshca(["issue", "--sa", "was", "--state-dir", plug, "--out", "w"], directory: ws.dir.path))
        #expect(try ws.dir.read("w/cert-chain.pem").components(separatedBy: "BEGIN CERTIFICATE").count == 4)
        let verify = try await ws.openssl("verify", "-CAfile", "w/root-cert.pem", "-untrusted", "w/cert-chain.pem", "w/cert-chain.pem")
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(try ws.dir.read("w/root-cert.pem") == (try ws.dir.read("state/root-cert.pem")))
    }

    @Test("A partial cacerts directory is refused with the missing files named")
    func partial() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try await ws.meshca("intermediate", "create", "--out", "cacerts"))
        try FileManager.default.removeItem(atPath: ws.dir.file("cacerts/cert-chain.pem"))
        let result = try await Command.meshca(["init", "--state-dir", ws.dir.file("plug"), "--plugin-ca", "cacerts"], directory: ws.dir.path)
        #expect(result.status == 1)
        #expect(result.stderr.contains("cert-chain.pem is missing"))
    }
}

import Foundation
import MeshCATestSupport
import Testing

@Suite("meshca issue --server reads the join token from a file")
struct IssueTokenFileTests {
    @Test("--token-file issues from a running daemon; giving both, or neither, is a usage error")
    func tokenFile() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        let serve = try BackgroundProcess(
            Command.meshcaBinary, ["serve", "--state-dir", ws.state, "--init-if-missing", "--listen", "127.0.0.1:0", "--monitoring", "127.0.0.1:0"])
        defer { serve.terminate() }
        let ready = try await serve.waitForLine(containing: "listening on")
        let address = try #require(ready.split(separator: " ").first { $0.hasPrefix("127.0.0.1:") }).description

        let created = try await ws.meshca("token", "create", "--sa", "was")
        expectSuccess(created)
        try ws.dir.write("was.token", created.stdout)  // with its final newline, as `> was.token` writes it
        let issued = try await ws.meshca("issue", "--sa", "was", "--server", address, "--token-file", "was.token", "--out", "was")
        expectSuccess(issued)
        #expect(issued.stdout.contains("issued spiffe://cluster.local/ns/default/sa/was"))
        #expect(FileManager.default.fileExists(atPath: ws.dir.file("was/key.pem")))

        let both = try await ws.meshca("issue", "--sa", "was", "--server", address, "--token-file", "was.token", "--token", "x")
        #expect(both.status == 64)
        #expect(both.stderr.contains("--server needs exactly one of --token-file or --token"))
        let missing = try await ws.meshca("issue", "--sa", "was", "--server", address, "--token-file", "nope.token")
        #expect(missing.status == 64)
        #expect(missing.stderr.contains("--token-file: cannot read nope.token"))
        #expect(try await serve.stop() == 0)
    }
}

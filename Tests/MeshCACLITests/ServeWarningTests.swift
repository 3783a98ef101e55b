import Foundation
import MeshCATestSupport
import Testing

@Suite("meshca serve warns at start about settings that weaken its checks")
struct ServeWarningTests {
    @Test("--jwt-keys without --jwt-issuer logs a warning with the fix before serving; with the issuer it does not")
    func jwtKeysWithoutIssuer() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try await ws.openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "jwt-key.pem"))
        expectSuccess(try await ws.openssl("ec", "-in", "jwt-key.pem", "-pubout", "-out", "jwt-pub.pem"))
        for issuer in [nil, "https://kubernetes.default.svc"] {
            var arguments = [
                "serve", "--state-dir", ws.state, "--init-if-missing", "--listen", "127.0.0.1:0", "--monitoring", "127.0.0.1:0",
                "--jwt-keys", ws.dir.file("jwt-pub.pem"),
            ]
            if let issuer { arguments += ["--jwt-issuer", issuer] }
            let serve = try BackgroundProcess(Command.meshcaBinary, arguments)
            defer { serve.terminate() }
            _ = try await serve.waitForLine(containing: "listening on")
            #expect(try await serve.stop() == 0)
            let warning = serve.errorOutput.split(separator: "\n").first { $0.contains("jwt-keys is set without jwt-issuer") }
            if issuer == nil {
                #expect(warning?.contains("warning") == true, "\(serve.errorOutput)")
                #expect(warning?.contains("Set jwt-issuer to the API server's issuer") == true)
            } else {
                #expect(warning == nil, "\(serve.errorOutput)")
            }
        }
    }
}

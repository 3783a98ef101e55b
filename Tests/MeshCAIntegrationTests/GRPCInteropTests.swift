import Foundation
import MeshCATestSupport
import Testing

@Suite("Interoperability with Python grpcio, called as istio-agent calls it")
struct GRPCInteropTests {
    /// The Python interpreter with grpcio, grpcio-tools and cryptography: `$MESHCA_INTEROP_PYTHON`, else
    /// the virtualenv scripts/test.sh creates.
    static var python: String {
        if let explicit = ProcessInfo.processInfo.environment["MESHCA_INTEROP_PYTHON"] { return explicit }
        return packageRoot + "/.build/interop-venv/bin/python"
    }

    static var packageRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    @Test("grpcio with stubs from our ca.proto gets a chain OpenSSL verifies, and the refusal codes Istio expects")
    func pythonClient() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.python), "no \(Self.python): run scripts/test.sh, which creates it")
        let daemon = try await TestDaemon.start()
        defer { daemon.stop() }
        let token = try await daemon.token(uses: 2)
        let result = try await Command.run(
            Self.python,
            [
                Self.packageRoot + "/Tests/MeshCAIntegrationTests/interop/istio_agent_call.py", daemon.address, token,
                daemon.stateDir + "/root-cert.pem", Self.packageRoot + "/Sources/MeshCATransport/Protos", daemon.directory.path,
            ]
        )
        #expect(result.status == 0, "\(result.stderr)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(summary["elements"] as? Int == 2)
        #expect(summary["newline_terminated"] as? Bool == true)
        #expect(summary["uris"] as? [String] == ["spiffe://cluster.local/ns/default/sa/was"])
        #expect(summary["same_key"] as? Bool == true)
        let codes = summary["codes"] as? [String: String]
        #expect(codes?["garbage_csr"] == "INVALID_ARGUMENT")
        #expect(codes?["no_credential"] == "UNAUTHENTICATED")
        let verify = try await Command.run("openssl", ["verify", "-CAfile", "roots.pem", "chain.pem"], directory: daemon.directory.path)
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
    }
}

import Crypto
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

    @Test("grpcio sending exactly what ztunnel sends gets the pod's certificate as a trusted node account; another account gets istiod's refusal")
    func ztunnelImpersonation() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.python), "no \(Self.python): run scripts/test.sh, which creates it")
        let directory = try TemporaryDirectory("ztunnel")
        let signingKey = P256.Signing.PrivateKey()
        try directory.write("jwks.pem", signingKey.publicKey.pemRepresentation)
        let issuer = "https://kubernetes.default.svc.cluster.local"
        let daemon = try await TestDaemon.start(
            ["--jwt-keys", directory.file("jwks.pem"), "--jwt-issuer", issuer, "--trusted-node-accounts", "istio-system/ztunnel"],
            directory: directory)
        defer { daemon.stop() }
        let now = Int(Date().timeIntervalSince1970)
        func token(ns: String, sa: String) throws -> String {
            try JWTText.es256(
                [
                    "iss": issuer, "aud": ["istio-ca"], "exp": now + 3600, "iat": now, "sub": "system:serviceaccount:\(ns):\(sa)",
                    "kubernetes.io": ["namespace": ns, "serviceaccount": ["name": sa, "uid": "1"], "pod": ["name": "\(sa)-0", "uid": "2"]],
                ],
                key: signingKey)
        }
        let target = "spiffe://cluster.local/ns/shop/sa/cart"
        let result = try await Command.run(
            Self.python,
            [
                Self.packageRoot + "/Tests/MeshCAIntegrationTests/interop/ztunnel_call.py", daemon.address,
                try token(ns: "istio-system", sa: "ztunnel"), try token(ns: "shop", sa: "web"), daemon.stateDir + "/root-cert.pem",
                Self.packageRoot + "/Sources/MeshCATransport/Protos", target,
            ]
        )
        #expect(result.status == 0, "\(result.stderr)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(summary["uris"] as? [String] == [target])
        #expect(summary["identity_matches"] as? Bool == true)
        #expect(summary["same_key"] as? Bool == true)
        #expect(summary["elements"] as? Int == 2)
        #expect(summary["lifetime"] as? Int ?? 0 >= 86_400)
        let untrusted = summary["untrusted"] as? [String: String]
        #expect(untrusted?["code"] == "UNAUTHENTICATED")
        #expect(untrusted?["details"] == "request impersonation authentication failure")

        // The ledger and `meshca audit` show the pod's identity and the node proxy that asked for it.
        let list = try await daemon.meshca("audit", "list")
        let row = try #require(list.stdout.split(separator: "\n").first { $0.contains(target) })
        #expect(row.contains("node:spiffe://cluster.local/ns/istio-system/sa/ztunnel (jwt:system:serviceaccount:istio-system:ztunnel)"), "\(list.stdout)")
        let rejections = try await daemon.meshca("audit", "rejections")
        let refused = try #require(rejections.stdout.split(separator: "\n").first { $0.contains("impersonation") })
        #expect(refused.contains("jwt:system:serviceaccount:shop:web") && refused.contains(target), "\(rejections.stdout)")
    }
}

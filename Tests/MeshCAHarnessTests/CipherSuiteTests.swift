import Foundation
import MeshCACore
import MeshCAHarness
import MeshCATestSupport
import Testing

/// The harness server (`meshca handshake --listen`) offers TLS 1.2 clients only ECDHE suites with AEAD, as Istio's
/// listeners and `meshca serve` do; checked with the system `openssl s_client` as an independent client.
@Suite("The harness server offers only AEAD suites over TLS 1.2", .timeLimit(.minutes(2)))
struct CipherSuiteTests {
    private func connect(port: UInt16, workload: String, cipher: String) async throws -> Command.Result {
        try await Command.run(
            "openssl",
            [
                "s_client", "-connect", "127.0.0.1:\(port)", "-tls1_2", "-cipher", cipher, "-CAfile",
                workload + "/root-cert.pem", "-cert", workload + "/cert-chain.pem", "-key", workload + "/key.pem",
            ])
    }

    @Test("TLS 1.2 with CBC/SHA-1 suites is refused; ECDHE-ECDSA-AES128-GCM-SHA256 completes mTLS")
    func onlyAEAD() async throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        let api = try mesh.workload("api")

        // The workload keys are ECDSA, so ECDHE-ECDSA-AES128-SHA is the CBC suite OpenSSL's defaults would pick.
        for cbc in ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "AES128-SHA"] {
            let refusing = try ListenerThread(certificates: web)
            let result = try await connect(port: refusing.port, workload: api, cipher: cbc)
            _ = try? await refusing.report()
            #expect(!result.stdout.contains("Cipher is \(cbc)"), "\(cbc): \(result.stdout)")
            #expect(result.stderr.contains("handshake failure") || result.stderr.contains("no shared cipher"), "\(cbc): \(result.stderr)")
        }

        let accepting = try ListenerThread(certificates: web)
        let gcm = try await connect(port: accepting.port, workload: api, cipher: "ECDHE-ECDSA-AES128-GCM-SHA256")
        let report = try await accepting.report()
        #expect(report.outcome == .succeeded, "\(report.renderText())\n\(gcm.stderr)")
        #expect(gcm.stdout.contains("ECDHE-ECDSA-AES128-GCM-SHA256"), "\(gcm.stdout)")
    }
}

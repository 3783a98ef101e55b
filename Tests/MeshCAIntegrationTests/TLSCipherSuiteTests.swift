import Foundation
import MeshCATestSupport
import Testing

/// `meshca serve` offers TLS 1.2 clients only the ECDHE + AEAD suites Istio's listeners use (issue 12, defect 7),
/// checked with the system `openssl s_client` as an independent client.
@Suite("meshca serve offers only AEAD suites over TLS 1.2")
struct TLSCipherSuiteTests {
    private func connect(_ daemon: TestDaemon, _ extra: [String]) async throws -> Command.Result {
        try await Command.run(
            "openssl",
            ["s_client", "-connect", daemon.address, "-CAfile", daemon.stateDir + "/root-cert.pem", "-alpn", "h2"] + extra,
            stdin: "")
    }

    @Test("TLS 1.2 with a CBC/SHA-1 suite fails the handshake; every one of Istio's six AEAD suites that fits the key succeeds")
    func onlyAEADSuites() async throws {
        let daemon = try await TestDaemon.start()
        defer { daemon.stop() }
        for cbc in ["AES128-SHA", "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA256", "AES256-GCM-SHA384"] {
            let refused = try await connect(daemon, ["-tls1_2", "-cipher", cbc])
            let text = refused.stdout + refused.stderr
            #expect(refused.status != 0, "\(cbc) was accepted:\n\(text)")
            #expect(text.contains("handshake failure") || text.contains("no shared cipher") || text.contains("no ciphers available"), "\(cbc): \(text)")
        }
        // The serving key is ECDSA P-256, so the ECDSA variants are the ones that can be negotiated.
        for aead in ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"] {
            let accepted = try await connect(daemon, ["-tls1_2", "-cipher", aead])
            #expect(accepted.stdout.contains("Cipher is \(aead)"), "\(aead): \(accepted.stdout)\n\(accepted.stderr)")
            #expect(accepted.stdout.contains("Verify return code: 0 (ok)"), "\(aead): \(accepted.stdout)")
        }
        let tls13 = try await connect(daemon, ["-tls1_3"])
        #expect(tls13.stdout.contains("TLSv1.3"), "\(tls13.stdout)")
    }
}

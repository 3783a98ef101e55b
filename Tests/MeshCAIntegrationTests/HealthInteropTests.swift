import Foundation
import MeshCATestSupport
import Testing

@Suite("grpc.health.v1.Health on the daemon's gRPC port, called with grpcio's health stub")
struct HealthInteropTests {
    @Test("Check is SERVING for \"\" and the Istio service, NOT_FOUND for others; Watch follows the CA files becoming unusable and usable again")
    func grpcioHealthStub() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: GRPCInteropTests.python), "no \(GRPCInteropTests.python): run scripts/test.sh, which creates it")
        let daemon = try await TestDaemon.start()
        defer { daemon.stop() }
        let result = try await Command.run(
            GRPCInteropTests.python,
            [
                GRPCInteropTests.packageRoot + "/Tests/MeshCAIntegrationTests/interop/health_check.py", daemon.address,
                daemon.stateDir + "/root-cert.pem", daemon.stateDir, "http://\(daemon.monitoring)/metrics",
            ]
        )
        #expect(result.status == 0, "\(result.stderr)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(summary["check[]"] as? String == "SERVING")
        #expect(summary["check[istio.v1.auth.IstioCertificateService]"] as? String == "SERVING")
        #expect(summary["check_unknown"] as? String == "NOT_FOUND")
        #expect(summary["watch"] as? [String] == ["SERVING", "NOT_SERVING", "SERVING"])
        #expect(summary["check_while_broken"] as? String == "NOT_SERVING")
        #expect(summary["ca_usable_while_broken"] as? [Double] == [0])
        // The daemon said why (its log lines can still be in the pipe when the client has seen the change).
        try await daemon.process.waitForOutput(containing: "not serving: the CA files cannot be used")
        try await daemon.process.waitForOutput(containing: "serving again")
    }
}

import Foundation
import MeshCATestSupport
import Testing

extension DaemonOperationTests {
    @Test(
        "While meshca serve runs, doctor finds its serving certificate fresh, and /metrics shows the same expiry facts")
    func doctorAndGauges() async throws {
        let daemon = try await TestDaemon.start()
        defer { daemon.stop() }
        let result = try await daemon.meshca("doctor", "--json")
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let findings = report["findings"] as? [[String: Any]] ?? []
        let serving = try #require(findings.first { $0["check"] as? String == "serving-certificate" })
        #expect(serving["status"] as? String == "ok")
        let fingerprint = try #require((serving["certificate"] as? [String: Any])?["fingerprint"] as? String)

        // The refresh runs when the daemon starts; poll only to ride out that first moment (never a speed check).
        let series = #"meshca_certificate_expiry_timestamp_seconds{role="serving",fingerprint="\#(fingerprint)"}"#
        var body = ""
        try await Wait.until("/metrics has \(series)") {
            body = try await get("http://\(daemon.monitoring)/metrics").body
            return body.contains(series)
        }
        #expect(body.contains(series), "\(body)")
        #expect(body.contains(#"meshca_certificate_expiry_timestamp_seconds{role="root""#))
        #expect(body.contains("meshca_identities_expiring 0"))
    }
}

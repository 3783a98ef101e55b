import Foundation
import MeshCACore
import MeshCADaemon
import Testing
import X509

extension MonitoringServerTests {
    @Test(
        "GET /metrics shows the doctor's expiry facts as gauges, and drops the series of a certificate that went away")
    func expiryGauges() async throws {
        let fixture = try DoctorFixture()
        defer { fixture.remove() }
        try await fixture.issue("stale", ago: .seconds(20 * 3600))
        let serving = try await fixture.serve(ago: .zero)
        let metrics = CAMetrics()
        let doctor = Doctor(directory: fixture.state)
        metrics.publish(await doctor.expiryFacts(now: fixture.now, ledger: fixture.ledger))
        let root = fixture.ca.signer.certificate
        func series(_ role: String, _ fingerprint: String, _ date: Date) -> String {
            #"meshca_certificate_expiry_timestamp_seconds{role="\#(role)",fingerprint="\#(fingerprint)"} "#
                + "\(date.timeIntervalSince1970.rounded(.down))"
        }
        try await withServer(metrics: metrics) { port in
            let body = try RawHTTP.send("GET /metrics HTTP/1.1", port: port).body
            let lines = Set(body.split(separator: "\n").map(String.init))
            #expect(lines.contains(series("root", root.sha256Fingerprint, root.notValidAfter)), "\(body)")
            #expect(lines.contains(series("signing", root.sha256Fingerprint, root.notValidAfter)), "\(body)")
            #expect(lines.contains(series("serving", serving.sha256Fingerprint, serving.notValidAfter)), "\(body)")
            #expect(lines.contains("meshca_identities_expiring 1.0"), "\(body)")
        }

        // The daemon renews its serving certificate: the next refresh replaces the old series.
        let renewed = try await fixture.serve(ago: .zero)
        metrics.publish(await doctor.expiryFacts(now: fixture.now.addingTimeInterval(1), ledger: fixture.ledger))
        let body = metrics.exposition()
        #expect(body.contains(renewed.sha256Fingerprint))
        #expect(!body.contains(serving.sha256Fingerprint), "\(body)")
    }
}

import Foundation
import MeshCACore
import MeshCADaemon
import MeshCAIO
import MeshCALedger
import MeshCATestSupport
import MeshCATransport
import GRPCCore
import SwiftASN1
import Testing
import X509

/// The daemon's periodic services on a test clock: the serving certificate renews at half-life, and a revocation
/// made by another process reaches `/crl` at the next poll, not before; no real time passes for either.
@Suite("Daemon services on a test clock")
struct DaemonServicesClockTests {
    static func servingCertificates(in daemon: InProcessDaemon) async throws -> [IssuanceRecord] {
        let ledger = try SQLiteLedger(path: daemon.directory.file("state/ledger.db"))
        return try await ledger.issuances(matching: IssuanceQuery(namespace: "", serviceAccount: ""))
            .filter { $0.requester == Doctor.servingRequester }
    }

    @Test("The serving certificate renews at half-life, the old one is revoked as superseded, and clients keep working")
    func servingCertificateRenewsAtHalfLife() async throws {
        // A short lifetime, and a clock a minute behind: the CA made just now is already valid then (roots are
        // backdated two minutes), and the renewal falls 40 s after the real now, so the new certificate
        // (backdated two minutes as well) is valid for real clients.
        let ttl: TimeInterval = 200
        let clock = TestClock(start: Date().addingTimeInterval(-60))
        let time = ServiceTime(clock: clock, now: { clock.date })
        let (daemon, token) = try await InProcessDaemon.start(time: time) { $0.servingCertificateTTL = .seconds(Int64(ttl)) }
        defer { Task { await daemon.stop() } }
        // The CRL refresh, the expiry gauges, the CA-file watcher and the serving renewal all sleep on the clock.
        try await clock.waitForSleepers(4)
        let before = try await Self.servingCertificates(in: daemon)
        #expect(before.count == 1)

        clock.advance(by: .seconds(Int64(ttl / 2) - 1))
        let untouched = try await Self.servingCertificates(in: daemon)
        #expect(untouched.map(\.serial) == before.map(\.serial), "a second before half-life nothing is renewed")

        // To a second past half-life: the certificate's notAfter is whole seconds (X.509 time), so its half-life
        // can fall up to half a second after issuedAt + ttl/2.
        clock.advance(by: .seconds(2))
        let line = try await daemon.log.waitForLine(containing: "renewed the serving certificate")
        let after = try await Self.servingCertificates(in: daemon)
        #expect(after.count == 2)
        let renewed = try #require(after.first { $0.serial != before[0].serial })
        #expect(line.contains(renewed.serial))
        #expect(after.first { $0.serial == before[0].serial }?.revocationReason == "superseded")

        // A client connecting now gets the new serving certificate, and issuance works.
        let chain = try await daemon.client().createCertificate(
            csrPEM: try TestPKI.csr(for: try TestPKI().identity(), key: KeyType.ecP256.generate()), ttl: .seconds(600),
            headers: ["authorization": "Bearer \(token)"])
        #expect(!chain.isEmpty)
    }

    @Test("A revocation made by `meshca revoke` reaches /crl at the refresh's next poll on the daemon's clock")
    func revocationReachesCRLAtNextPoll() async throws {
        let clock = TestClock()
        let time = ServiceTime(clock: clock, now: { clock.date })
        let (daemon, token) = try await InProcessDaemon.start(time: time)
        defer { Task { await daemon.stop() } }
        try await clock.waitForSleepers(4)
        let identity = try SPIFFEID(trustDomain: TrustDomain("cluster.local"), namespace: "default", serviceAccount: "was")
        let chain = try await daemon.client().createCertificate(
            csrPEM: try TestPKI.csr(for: identity, key: KeyType.ecP256.generate()), ttl: .seconds(600),
            headers: ["authorization": "Bearer \(token)"])
        let leaf = try Certificate(pemEncoded: chain[0])
        let serial = leaf.serialHex
        let revoke = try await Command.meshca(["revoke", serial, "--state-dir", daemon.stateDir])
        #expect(revoke.status == 0, "\(revoke.stderr)")

        let url = try #require(URL(string: "http://127.0.0.1:\(daemon.monitoringPort)/crl"))
        func listed() async throws -> Bool {
            let (code, body) = try await HTTPFetch.get(url, timeout: .seconds(10), maximumBodyBytes: 1 << 20, what: "the CRL")
            #expect(code == 200)
            return try CertificateRevocationList(derEncoded: body).entries.contains { $0.serialNumber == leaf.serialNumber }
        }
        #expect(try await listed() == false, "before the poll the published CRL does not list it")

        clock.advance(by: .seconds(2))
        try await Wait.until("/crl lists serial \(serial)") { try await listed() }
    }
}

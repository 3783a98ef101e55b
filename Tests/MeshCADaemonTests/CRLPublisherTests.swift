import Foundation
import Logging
import MeshCACore
import MeshCADaemon
import MeshCALedger
import MeshCATestSupport
import Testing
import X509

@Suite("Publishing the CA's CRL")
struct CRLPublisherTests {
    /// A CA in a fresh state directory with its ledger, and one certificate recorded as issued by it.
    private func setUp(_ dir: TemporaryDirectory) async throws -> (CAState, SQLiteLedger, IssuanceRecord) {
        let directory = StateDirectory(path: dir.file("state"))
        let state = try CAState.create(in: directory, options: .init(), now: Date())
        let ledger = try SQLiteLedger(path: directory.ledgerPath)
        let authority = CertificateAuthority(trustDomain: state.trustDomain, signer: state.signer)
        let id = try SPIFFEID(trustDomain: state.trustDomain, namespace: "default", serviceAccount: "web")
        let csr = try WorkloadCSR.pem(WorkloadCSR.make(for: id, key: KeyType.ecP256.generate()))
        let issuance = try authority.issue(IssuanceRequest(csrPEM: csr, identity: id, requestedTTL: nil), at: Date())
        let record = IssuanceRecord(
            certificate: issuance.certificate, trustDomain: state.trustDomain, issuedAt: Date(),
            requestedTTL: .seconds(3600), issuer: state.signer.certificate,
            requester: Requester(name: "test", authMethod: "local"))
        try await ledger.record(record)
        return (state, ledger, record)
    }

    @Test("crl.pem lists the revoked serial, is 0644, and its number grows with every publication, even in one second")
    func publish() async throws {
        let dir = try TemporaryDirectory("crl")
        defer { dir.remove() }
        let (state, ledger, record) = try await setUp(dir)
        let directory = StateDirectory(path: dir.file("state"))
        let publisher = CRLPublisher(directory: directory, ledger: ledger)
        let now = Date()
        let empty = try await publisher.publish(for: state.signer, at: now)
        #expect(empty.entries.isEmpty)
        #expect(empty.number >= Int64(now.timeIntervalSince1970.rounded(.down)))

        _ = try await ledger.revoke(serial: record.serial, reason: "superseded", at: now)
        let listed = try await publisher.publish(for: state.signer, at: now)
        #expect(listed.number == empty.number + 1)
        #expect(listed.entries.map(\.serialNumber) == [try #require(Certificate.SerialNumber(hex: record.serial))])
        #expect(listed.entries.first?.reason == .superseded)
        let onDisk = try CertificateRevocationList(
            pemEncoded: String(contentsOfFile: directory.crlPath, encoding: .utf8))
        #expect(onDisk == listed)
        #expect(onDisk.isSigned(by: state.signer.certificate))
        #expect(try dir.mode("state/crl.pem") == 0o644)

        // A clock that stepped back still gets a higher number: the file remembers.
        let earlier = try await publisher.publish(for: state.signer, at: now.addingTimeInterval(-3600))
        #expect(earlier.number == listed.number + 1)
    }

    @Test("For a read-only state directory the CRL is signed, numbered by the clock, and neither crl.pem nor the lock is written")
    func readOnlyDirectory() async throws {
        let dir = try TemporaryDirectory("crl-readonly")
        defer { dir.remove() }
        let (state, ledger, record) = try await setUp(dir)
        let directory = StateDirectory(path: dir.file("state"))
        _ = try await ledger.revoke(serial: record.serial, reason: "keyCompromise", at: Date())
        let before = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        let now = Date()
        let crl = try await CRLPublisher(directory: directory, ledger: ledger, writesFile: false).publish(for: state.signer, at: now)
        #expect(crl.entries.map(\.serialNumber) == [try #require(Certificate.SerialNumber(hex: record.serial))])
        #expect(crl.isSigned(by: state.signer.certificate))
        #expect(crl.number == Int64(now.timeIntervalSince1970.rounded(.down)))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() == before, "nothing written")
        #expect(!FileManager.default.fileExists(atPath: directory.crlPath))
    }

    @Test("The refresher re-signs only when something was revoked or the CRL is due")
    func refresh() async throws {
        let dir = try TemporaryDirectory("crl")
        defer { dir.remove() }
        let (state, ledger, record) = try await setUp(dir)
        let refresher = CRLRefresh(
            publisher: CRLPublisher(directory: StateDirectory(path: dir.file("state")), ledger: ledger),
            signer: { state.signer }, logger: Logger(label: "test"))
        let now = Date()
        let first = try await refresher.refresh(at: now)
        #expect(try await refresher.refresh(at: now.addingTimeInterval(60)) == first)
        _ = try await ledger.revoke(serial: record.serial, reason: "keyCompromise", at: now)
        let revoked = try await refresher.refresh(at: now.addingTimeInterval(61))
        #expect(revoked.number > first.number)
        #expect(revoked.entries.count == 1)
        #expect(refresher.current == revoked)
        let due = try await refresher.refresh(at: now.addingTimeInterval(61 + 12 * 3600))
        #expect(due.number > revoked.number)
        #expect(due.nextUpdate > revoked.nextUpdate)
    }
}

import Foundation
import MeshCACore
import MeshCADaemon
import MeshCAIO
import MeshCALedger
import MeshCATestSupport
import SwiftASN1
import Testing
import X509

@Suite("The issuance path: sign, record, then hand out")
struct IssuanceServiceTests {
    let requester = Requester(name: "local:test(uid 1)", authMethod: "local")

    func makeService(_ dir: TemporaryDirectory, configuration: SQLiteLedger.Configuration = .init()) throws -> (IssuanceService, CAState) {
        let state = try CAState.create(in: StateDirectory(path: dir.file("state")), options: .init(), now: Date())
        _ = try SQLiteLedger(path: dir.file("state/ledger.db"))  // create and migrate with no limits
        let ledger = try SQLiteLedger(path: dir.file("state/ledger.db"), configuration: configuration)
        let authority = CertificateAuthority(trustDomain: state.trustDomain, signer: state.signer)
        return (IssuanceService(authority: authority, ledger: ledger), state)
    }

    func request(_ sa: String = "was", ttl: Duration? = nil) throws -> IssuanceRequest {
        let id = try SPIFFEID(trustDomain: TrustDomain("cluster.local"), namespace: "default", serviceAccount: sa)
        let csr = try WorkloadCSR.pem(WorkloadCSR.make(for: id, key: KeyType.ecP256.generate()))
        return IssuanceRequest(csrPEM: csr, identity: id, requestedTTL: ttl)
    }

    @Test("Every issued certificate is in the ledger with the facts an auditor needs")
    func recordsIssuance() async throws {
        let dir = try TemporaryDirectory("svc")
        defer { dir.remove() }
        let (service, state) = try makeService(dir)
        let now = Date()
        let issuance = try await service.issue(try request(ttl: .seconds(3600)), requester: requester, at: now)
        let rows = try await service.ledger.issuances(matching: IssuanceQuery(now: now))
        let row = try #require(rows.first)
        #expect(rows.count == 1)
        #expect(row.serial == issuance.certificate.serialHex)
        #expect(row.spiffeID == "spiffe://cluster.local/ns/default/sa/was")
        #expect(row.trustDomain == "cluster.local")
        #expect(row.namespace == "default" && row.serviceAccount == "was")
        #expect(row.sans == ["URI:spiffe://cluster.local/ns/default/sa/was"])
        #expect(row.certificateDER == issuance.certificate.derBytes)
        #expect(row.requestedTTLSeconds == 3600 && row.grantedTTLSeconds == 3600)
        #expect(row.keyType == "ec-p256")
        #expect(row.publicKeySHA256 == issuance.certificate.publicKey.sha256Fingerprint)
        #expect(row.csrSHA256 == issuance.csrSHA256)
        #expect(row.issuerFingerprint == state.signer.certificate.sha256Fingerprint)
        #expect(row.requester == requester.name && row.authMethod == "local")
        #expect(row.notAfter == issuance.certificate.notValidAfter)
    }

    @Test("A refused request is recorded as a rejection with its reason code and message")
    func recordsRejection() async throws {
        let dir = try TemporaryDirectory("svc")
        defer { dir.remove() }
        let (service, _) = try makeService(dir)
        await #expect(throws: IssuanceError.self) {
            _ = try await service.issue(try request(ttl: .seconds(365 * 86_400)), requester: requester, at: Date())
        }
        let rejections = try await service.ledger.rejections(since: nil, limit: nil)
        let rejection = try #require(rejections.first)
        #expect(rejection.reasonCode == "ttl-too-long")
        #expect(rejection.requestedIdentity == "spiffe://cluster.local/ns/default/sa/was")
        #expect(rejection.message.contains("90d"))
        #expect(rejection.requester == requester.name)
        #expect(try await service.ledger.issuances(matching: IssuanceQuery()).isEmpty)
    }

    @Test("When the ledger is full, the certificate is not handed out, and every one handed out is recorded")
    func noRowNoCertificate() async throws {
        let dir = try TemporaryDirectory("svc")
        defer { dir.remove() }
        var configuration = SQLiteLedger.Configuration()
        configuration.maxPageCount = 1  // SQLite keeps the current size: the file can no longer grow
        let (service, _) = try makeService(dir, configuration: configuration)
        var handedOut: [String] = []
        var failure: (any Error)?
        for _ in 0..<500 {
            do {
                handedOut.append(try await service.issue(try request(), requester: requester, at: Date()).certificate.serialHex)
            } catch {
                failure = error
                break
            }
        }
        let error = try #require(failure as? DaemonError, "the ledger never filled up")
        #expect(error.code == .notRecorded)
        #expect(error.message.contains("not handed out"))
        let reopened = try SQLiteLedger(path: dir.file("state/ledger.db"))
        let recorded = try await reopened.issuances(matching: IssuanceQuery()).map(\.serial)
        #expect(Set(recorded) == Set(handedOut))
    }
}

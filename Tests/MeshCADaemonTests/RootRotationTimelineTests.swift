import Foundation
import Logging
import MeshCACore
@testable import MeshCADaemon
import MeshCAIO
import MeshCALedger
import MeshCATestSupport
import MeshCATransport
import SwiftASN1
import Testing
import X509

/// A daemon and its agents on a simulated clock: the daemon's pieces that touch the ledger and the CA files
/// (serving identity, CA-file watcher, issuance service) driven through their `now` parameters, and agents that
/// renew over mTLS at exactly half their certificate's lifetime. Hours are counted from when the CA was made.
private final class SimulatedMesh {
    let dir: TemporaryDirectory
    let state: StateDirectory
    let ledger: SQLiteLedger
    let rotation: RootRotation
    let authority: CertificateAuthority
    let service: IssuanceService
    let serving: ServingIdentity
    let watcher: CAStateWatcher
    let metrics = CAMetrics()
    let base = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
    /// The serving certificate the daemon hands out now.
    var servingLeaf: Certificate
    /// When the daemon renews its serving certificate next (half its lifetime).
    var servingRenewal: Date
    /// Each agent's current certificate and when it received it, by service account.
    var agents: [String: (certificate: Certificate, issuedAt: Date)] = [:]

    /// A CA made at hour 0; a daemon process of an earlier run recorded a serving certificate at hour 0 and is gone;
    /// this daemon starts at hour `start`.
    init(servingTTL: Duration, start: Double) async throws {
        dir = try TemporaryDirectory("rotation-timeline")
        state = StateDirectory(path: dir.file("state"))
        let ca = try CAState.create(in: state, options: .init(), now: base)
        ledger = try SQLiteLedger(path: state.ledgerPath)
        rotation = RootRotation(directory: state, ledger: ledger)
        authority = CertificateAuthority(trustDomain: ca.trustDomain, signer: ca.signer)
        service = IssuanceService(authority: authority, ledger: ledger)
        serving = ServingIdentity(authority: authority, ledger: ledger, names: ["meshca.test"], ttl: servingTTL, bridgePath: state.bridgePath)
        // The earlier process: recorded, never superseded by anyone (it stopped).
        _ = try await serving.record(at: base)
        let first = try await serving.issue(at: base.addingTimeInterval(start * 3600))
        servingLeaf = first.leaf
        servingRenewal = ServingCertificateRenewal.renewalTime(issuedAt: base.addingTimeInterval(start * 3600), notAfter: first.leaf.notValidAfter)
        watcher = CAStateWatcher(
            directory: state, authority: authority, serving: serving,
            certificate: try ServingCertificate(chainPEM: first.chainPEM, keyPEM: first.keyPEM), metrics: metrics,
            logger: Logger(label: "meshca.test.rotation", factory: { _ in SwiftLogNoOpLogHandler() }), interval: .seconds(1))
    }

    func at(_ hours: Double) -> Date { base.addingTimeInterval(hours * 3600) }

    /// A workload's certificate for `sa` from the daemon as of `now`, with a 24 h lifetime.
    @discardableResult
    func obtain(_ sa: String, requester: Requester, token: TokenUse? = nil, at now: Date) async throws -> Certificate {
        let id = try SPIFFEID(trustDomain: authority.trustDomain, namespace: "default", serviceAccount: sa)
        let csr = try WorkloadCSR.pem(WorkloadCSR.make(for: id, key: KeyType.ecP256.generate()))
        let issued = try await service.issue(
            IssuanceRequest(csrPEM: csr, identity: id, requestedTTL: .seconds(86_400)), requester: requester, consuming: token, at: now)
        agents[sa] = (issued.certificate, now)
        return issued.certificate
    }

    /// Runs, in time order, every renewal due up to hour `hours`: each agent's at half its certificate's lifetime
    /// (over mTLS with that certificate, as `meshca agent` does) and the daemon's serving certificate at half its.
    func advance(to hours: Double) async throws {
        let end = at(hours)
        while true {
            let agentDue = agents.map { ($0.key, ServingCertificateRenewal.renewalTime(issuedAt: $0.value.issuedAt, notAfter: $0.value.certificate.notValidAfter)) }
                .min { $0.1 < $1.1 }
            let next = min(agentDue?.1 ?? .distantFuture, servingRenewal)
            guard next <= end else { return }
            if let (sa, due) = agentDue, due <= servingRenewal, let current = agents[sa]?.certificate {
                try await obtain(sa, requester: Requester(name: "mtls:\(current.serialHex)", authMethod: "mtls"), at: due)
            } else {
                let (leaf, _) = try await serving.reissue(into: watcher.certificate, metrics: metrics, at: servingRenewal)
                servingLeaf = leaf
                servingRenewal = ServingCertificateRenewal.renewalTime(issuedAt: servingRenewal, notAfter: leaf.notValidAfter)
            }
        }
    }

    /// The daemon notices a change of the CA files (it looks every second), as of hour `hours`.
    func daemonReloads(at hours: Double) async throws {
        try await watcher.reload(at: at(hours))
        let newest = try await ledger.newestCertificateWithoutSPIFFEID(requester: Doctor.servingRequester, authMethod: Doctor.servingAuthMethod)
        servingLeaf = try Certificate(derEncoded: try #require(newest).certificateDER)
    }

    func token(_ id: String, sa: String, createdAt hours: Double, ttl: Double, pin: Certificate?) async throws -> TokenUse {
        let secret = String(repeating: id, count: 64 / id.count)
        try await ledger.createToken(
            JoinTokenRecord(
                id: id, secretSHA256: secret, namespace: "default", serviceAccount: sa, createdAt: at(hours),
                expiresAt: at(hours + ttl), maxUses: 1, createdBy: "test", pinnedRootSHA256: pin?.sha256Fingerprint))
        return TokenUse(id: id, secretSHA256: secret, at: at(hours))
    }

    func servingCertificates() async throws -> [IssuanceRecord] {
        try await ledger.issuances(matching: IssuanceQuery(now: at(0), namespace: "", serviceAccount: ""))
            .filter { $0.requester == Doctor.servingRequester }
    }
}

/// Whether `date` is within a second of `expected` (expected times are computed in floating point).
private func close(_ date: Date?, _ expected: Date) -> Bool {
    date.map { abs($0.timeIntervalSince(expected)) < 1 } ?? false
}

@Suite("Root rotation timeline on a simulated clock: retire within one workload-certificate lifetime")
struct RootRotationTimelineTests {
    @Test("24h workload certificates, 7-day serving certificates: retire goes through once the last workload renewed onto the new root, with no manual revocation")
    func wholeRotation() async throws {
        let mesh = try await SimulatedMesh(servingTTL: .seconds(7 * 86_400), start: 10)
        defer { mesh.dir.remove() }
        let oldRoot = mesh.authority.signingIdentity.certificate
        let served = try await mesh.servingCertificates()
        #expect(served.count == 2)
        // The serving certificate of the earlier daemon process was superseded when this one started.
        #expect(served.first { $0.issuedAt == mesh.at(0) }?.revocationReason == "superseded")
        #expect(served.first { $0.serial == mesh.servingLeaf.serialHex }?.revokedAt == nil)

        // Two agents bootstrap with join tokens pinning the (only) root, then renew every 12 hours.
        try await mesh.obtain("web", requester: Requester(name: "token:0a01", authMethod: "token"),
            token: try await mesh.token("0a01", sa: "web", createdAt: 9, ttl: 1, pin: oldRoot), at: mesh.at(10))
        try await mesh.obtain("db", requester: Requester(name: "token:0a02", authMethod: "token"),
            token: try await mesh.token("0a02", sa: "db", createdAt: 14, ttl: 1, pin: oldRoot), at: mesh.at(15))
        // A token from a meshca that did not record pins: its pin is inferred from its creation time.
        _ = try await mesh.token("0b01", sa: "batch", createdAt: 50, ttl: 7 * 24, pin: nil)
        try await mesh.advance(to: 100)
        // The daemon renewed its serving certificate at half-life (hour 94) and superseded the one it replaced.
        #expect(mesh.servingLeaf.notValidBefore > mesh.at(93))
        #expect(try await mesh.servingCertificates().filter { $0.revokedAt == nil }.map(\.serial) == [mesh.servingLeaf.serialHex])

        // prepare (hour 100): both roots are handed out, and no serving certificate is minted under the old root.
        let servingBefore = try await mesh.servingCertificates()
        let prepared = try await mesh.rotation.prepare(actor: "test", now: mesh.at(100))
        try await mesh.daemonReloads(at: 100)
        #expect(mesh.authority.signingIdentity.bundle == [oldRoot, prepared.newRoot])
        #expect(try await mesh.servingCertificates() == servingBefore)

        let prepare = try await mesh.rotation.status(now: mesh.at(100.5))
        #expect(prepare.nextStep == "activate")
        let lagging = try #require(prepare.blockers.first)
        #expect(prepare.blockers.count == 1 && lagging.kind == .laggingIdentities && lagging.count == 2)
        // web last renewed at 94, db at 99: expected caught up by 99 + 55% of 24h; at the latest when db's expires.
        #expect(close(lagging.expectedBy, mesh.at(99 + 0.55 * 24)))
        #expect(close(lagging.clearsBy, mesh.at(99 + 24)))

        // Tokens handed out while prepared still pin the old root (it signs until activate).
        let usedLater = try await mesh.token("0c01", sa: "api", createdAt: 100.5, ttl: 7 * 24, pin: oldRoot)
        _ = try await mesh.token("0c02", sa: "api", createdAt: 101, ttl: 20, pin: oldRoot)
        try await mesh.advance(to: 112)
        let ready = try await mesh.rotation.status(now: mesh.at(112))
        #expect(ready.blockers.isEmpty && ready.lagging.isEmpty)

        // activate (hour 112): the daemon's serving certificate moves to the new root, the old-root one is superseded.
        let oldServing = mesh.servingLeaf
        _ = try await mesh.rotation.activate(force: false, actor: "test", now: mesh.at(112).addingTimeInterval(0.5))
        try await mesh.daemonReloads(at: 112)
        #expect(mesh.servingLeaf.issuer == prepared.newRoot.subject)
        #expect(try await mesh.ledger.issuance(serial: oldServing.serialHex)?.revocationReason == "superseded")
        // Made in the activation's own second (stored as that whole second, so by creation time it would count as
        // made before it): its recorded pin says the new root, so it does not block, though never used.
        _ = try await mesh.token("0d01", sa: "late", createdAt: 112 + 0.7 / 3600, ttl: 7 * 24, pin: prepared.newRoot)

        try await mesh.advance(to: 115)
        let activated = try await mesh.rotation.status(now: mesh.at(115))
        #expect(activated.nextStep == "retire")
        // Three serving certificates of the old root are unexpired (168 h lifetime) but superseded: none blocks.
        #expect(activated.supersededServingOnOldRoot == 3)
        #expect(!activated.blockers.contains { $0.kind == .servingCertificates })
        // web's and db's certificates from before their last renewal no longer count; the current ones (106, 111) do.
        #expect(activated.renewedOnOldRoot == 2)
        let workloads = try #require(activated.blockers.first { $0.kind == .workloadCertificates })
        #expect(workloads.count == 2)
        #expect(close(workloads.expectedBy, mesh.at(111 + 0.55 * 24)))
        #expect(close(workloads.clearsBy, mesh.at(111 + 24)))
        #expect(activated.blockers.first { $0.kind == .pinnedTokens }?.count == 2)
        #expect(close(activated.blockers.first { $0.kind == .pinnedTokens }?.clearsBy, mesh.at(100.5 + 7 * 24)))
        #expect(activated.blockers.first { $0.kind == .inferredTokens }?.count == 1)
        #expect(!activated.tokensOnOldRoot.map(\.id).contains("0d01"))

        // Tokens pinning the old root stop blocking once used (116), revoked (120) or expired (121).
        var used = usedLater
        used.at = mesh.at(116)
        try await mesh.obtain("api", requester: Requester(name: "token:0c01", authMethod: "token"), token: used, at: mesh.at(116))
        #expect(try await mesh.ledger.revokeToken(id: "0b01", at: mesh.at(120)))
        try await mesh.advance(to: 122)
        let waiting = try await mesh.rotation.status(now: mesh.at(122))
        #expect(waiting.blockers.map(\.kind) == [.workloadCertificates])
        #expect(waiting.blockers.first?.count == 1)  // db's certificate of hour 111; web renewed onto the new root at 118
        let refused = await #expect(throws: DaemonError.self) { try await mesh.rotation.retire(actor: "test", now: mesh.at(122)) }
        #expect(refused?.message.contains(try #require(mesh.agents["db"]).certificate.serialHex) == true)
        #expect(refused?.message.contains("1 unexpired, unrevoked certificate signed by it is still in use") == true)

        // db renews onto the new root at 123: retire goes through, within half a workload lifetime of activate,
        // though certificates of the old root (web's and db's last, three serving certificates) are all unexpired.
        try await mesh.advance(to: 123)
        #expect(try await mesh.rotation.status(now: mesh.at(123)).blockers.isEmpty)
        let retired = try await mesh.rotation.retire(actor: "test", now: mesh.at(123))
        #expect(retired.bundle == [prepared.newRoot])
        let unexpiredOld = try await mesh.ledger.issuances(matching: IssuanceQuery(now: mesh.at(123), status: .valid))
            .filter { $0.issuerFingerprint == oldRoot.sha256Fingerprint }
        #expect(unexpiredOld.count >= 2)

        // The superseded serving certificates went through the ordinary revocation: on the old root's CRL until they
        // expire, each with its revocation event on the hash chain, which verifies.
        let crl = try await mesh.ledger.revokedCertificates(issuerFingerprint: oldRoot.sha256Fingerprint, notExpiredAt: mesh.at(123))
        #expect(crl.count == 3 && crl.allSatisfy { $0.reason == "superseded" && $0.spiffeID.isEmpty })
        #expect(try await mesh.ledger.verifyChain().isIntact)

        // After retire the daemon drops the old root from its chain: a new serving certificate, the previous superseded.
        let activeServing = mesh.servingLeaf
        try await mesh.daemonReloads(at: 123)
        #expect(mesh.servingLeaf != activeServing)
        #expect(try await mesh.servingCertificates().filter { $0.revokedAt == nil }.map(\.serial) == [mesh.servingLeaf.serialHex])
    }

    @Test("A serving certificate of the old root that no daemon replaced (none ran since activate) blocks retire until a daemon starts")
    func servingWithoutDaemon() async throws {
        let mesh = try await SimulatedMesh(servingTTL: .seconds(7 * 86_400), start: 1)
        defer { mesh.dir.remove() }
        _ = try await mesh.rotation.prepare(actor: "test", now: mesh.at(2))
        _ = try await mesh.rotation.activate(force: false, actor: "test", now: mesh.at(3))
        // No reload: the daemon is stopped.
        let status = try await mesh.rotation.status(now: mesh.at(4))
        let blocker = try #require(status.blockers.first)
        #expect(status.blockers.count == 1 && blocker.kind == .servingCertificates && blocker.count == 1)
        #expect(blocker.clearsBy == mesh.servingLeaf.notValidAfter)
        #expect(blocker.detail.contains("starting `meshca serve` supersedes it"))
        let refused = await #expect(throws: DaemonError.self) { try await mesh.rotation.retire(actor: "test", now: mesh.at(4)) }
        #expect(refused?.message.contains("(serving certificate of meshca serve)") == true)

        // A daemon starting on this state directory (with the CA as the files say now) supersedes every earlier
        // serving certificate.
        let state = try CAState.load(from: mesh.state)
        let restarted = ServingIdentity(
            authority: CertificateAuthority(trustDomain: state.trustDomain, signer: state.signer), ledger: mesh.ledger,
            names: ["meshca.test"], ttl: .seconds(7 * 86_400), bridgePath: mesh.state.bridgePath)
        _ = try await restarted.issue(at: mesh.at(5))
        _ = try await mesh.rotation.retire(actor: "test", now: mesh.at(5))
    }
}

import Foundation
import MeshCACore
import MeshCADaemon
import MeshCAIO
import MeshCALedger
import MeshCATestSupport
import SwiftASN1
import Testing
import X509

/// A CA state directory with a ledger, issuing through the same path as the daemon, as of chosen times.
private struct RotatingCA {
    let dir: TemporaryDirectory
    let state: StateDirectory
    let ledger: SQLiteLedger
    let rotation: RootRotation
    let start = Date()

    init() throws {
        dir = try TemporaryDirectory("rotation")
        state = StateDirectory(path: dir.file("state"))
        _ = try CAState.create(in: state, options: .init(), now: start)
        ledger = try SQLiteLedger(path: state.ledgerPath)
        rotation = RootRotation(directory: state, ledger: ledger)
    }

    /// Issues a certificate for `sa` with the CA as the files say now, `seconds` after `start`.
    @discardableResult
    func issue(_ sa: String, at seconds: TimeInterval, ttl: Duration = .seconds(3600)) async throws -> Issuance {
        let loaded = try CAState.load(from: state)
        let service = IssuanceService(authority: CertificateAuthority(trustDomain: loaded.trustDomain, signer: loaded.signer), ledger: ledger)
        let id = try SPIFFEID(trustDomain: loaded.trustDomain, namespace: "default", serviceAccount: sa)
        let csr = try WorkloadCSR.pem(WorkloadCSR.make(for: id, key: KeyType.ecP256.generate()))
        return try await service.issue(
            IssuanceRequest(csrPEM: csr, identity: id, requestedTTL: ttl), requester: Requester(name: "test", authMethod: "local"),
            at: start.addingTimeInterval(seconds))
    }

    func at(_ seconds: TimeInterval) -> Date { start.addingTimeInterval(seconds) }

    func bundle() throws -> [Certificate] { try CAState.load(from: state).signer.bundle }

    /// `openssl verify` of `leaf` against the PEM roots in `roots` (an independent path validator; the tests
    /// issue "in the future", so validity times are not checked).
    func opensslVerifies(_ leaf: Certificate, roots: [Certificate], untrusted: [Certificate] = []) async throws -> Bool {
        try dir.write("verify-roots.pem", roots.map(\.pem).joined())
        try dir.write("verify-leaf.pem", leaf.pem)
        try dir.write("verify-untrusted.pem", untrusted.map(\.pem).joined())
        let untrustedArguments = untrusted.isEmpty ? [] : ["-untrusted", dir.file("verify-untrusted.pem")]
        return try await Command.run(
            "openssl", ["verify", "-no_check_time", "-CAfile", dir.file("verify-roots.pem")] + untrustedArguments + [dir.file("verify-leaf.pem")]
        ).status == 0
    }
}

@Suite("Staged root rotation: prepare, activate, retire")
struct RootRotationTests {
    @Test("prepare publishes both roots, signing stays on the old one, and certificates of both roots verify against the bundle")
    func prepare() async throws {
        let ca = try RotatingCA()
        defer { ca.dir.remove() }
        let before = try await ca.issue("web", at: 0)
        let old = try CAState.load(from: ca.state).signer.certificate
        let prepared = try await ca.rotation.prepare(actor: "test", now: ca.at(1))

        #expect(try ca.bundle() == [old, prepared.newRoot])
        #expect(try CAState.load(from: ca.state).signer.certificate == old)
        #expect(prepared.newRoot.subject != old.subject)
        #expect(try ca.dir.mode("state/next/ca-key.pem") == 0o600)
        #expect(try RootRotation.progress(in: ca.state)?.stage == .prepared)

        let during = try await ca.issue("web", at: 10)
        #expect(during.bundle == [old, prepared.newRoot])
        #expect(during.certificate.issuer == old.subject)
        await #expect(try ca.opensslVerifies(before.certificate, roots: during.bundle))

        let again = await #expect(throws: DaemonError.self) { try await ca.rotation.prepare(actor: "test", now: ca.at(11)) }
        #expect(again?.code == .rotationStage)
        #expect(again?.message.contains("already prepared") == true)
        #expect(try await ca.ledger.verifyChain().isIntact)
    }

    @Test("activate is refused while an identity with a live certificate has not fetched one since prepare, and names it")
    func activationGate() async throws {
        let ca = try RotatingCA()
        defer { ca.dir.remove() }
        try await ca.issue("web", at: 0)
        try await ca.issue("db", at: 0)
        try await ca.issue("gone", at: 0, ttl: .seconds(60))  // expired by the time of activation: not counted
        _ = try await ca.rotation.prepare(actor: "test", now: ca.at(1))
        // Inside the pick-up margin a running daemon may still hand out the old bundle: does not count.
        try await ca.issue("web", at: 2)
        try await ca.issue("db", at: 100)

        let refused = await #expect(throws: DaemonError.self) { try await ca.rotation.activate(force: false, actor: "test", now: ca.at(200)) }
        #expect(refused?.code == .rotationRefused)
        #expect(refused?.message.contains("spiffe://cluster.local/ns/default/sa/web") == true)
        #expect(refused?.message.contains("sa/db") == false)
        #expect(refused?.message.contains("sa/gone") == false)
        #expect(refused?.message.contains("--force") == true)
        #expect(try RootRotation.progress(in: ca.state)?.stage == .prepared)

        let status = try await ca.rotation.status(now: ca.at(200))
        #expect(status.lagging.map(\.spiffeID) == ["spiffe://cluster.local/ns/default/sa/web"])
        #expect(status.identities.count == 2)

        try await ca.issue("web", at: 150)
        let activated = try await ca.rotation.activate(force: false, actor: "test", now: ca.at(200))
        #expect(activated.lagging.isEmpty)
        let state = try CAState.load(from: ca.state)
        #expect(state.signer.certificate == activated.newRoot)
        #expect(state.signer.bundle == [activated.newRoot, activated.oldRoot])
        #expect(try ca.dir.mode("state/previous/ca-key.pem") == 0o600)
        #expect(!FileManager.default.fileExists(atPath: ca.state.nextRootDirectory))

        let after = try await ca.issue("web", at: 210)
        #expect(after.certificate.issuer == activated.newRoot.subject)
        await #expect(try ca.opensslVerifies(after.certificate, roots: state.signer.bundle))
        await #expect(!(try ca.opensslVerifies(after.certificate, roots: [activated.oldRoot])))
        // The bridge (served by the daemon until retire) lets a client that trusts only the old root verify it.
        let bridge = try Certificate(pemEncoded: ca.dir.read("state/previous/cross-cert.pem"))
        #expect(bridge.subject == activated.newRoot.subject && bridge.issuer == activated.oldRoot.subject)
        await #expect(try ca.opensslVerifies(after.certificate, roots: [activated.oldRoot], untrusted: [bridge]))
        #expect(try await ca.ledger.verifyChain().isIntact)
    }

    @Test("--pick-up-margin: an issuance inside a longer margin does not count as carrying the new roots, one after it does")
    func pickUpMargin() async throws {
        let ca = try RotatingCA()
        defer { ca.dir.remove() }
        try await ca.issue("web", at: 0)
        _ = try await ca.rotation.prepare(pickUpMargin: .seconds(60), actor: "test", now: ca.at(1))
        #expect(try RootRotation.progress(in: ca.state)?.pickUpMargin == 60)
        // 30 s after prepare is past the default 5 s but inside this rotation's 60 s.
        try await ca.issue("web", at: 31)
        #expect(try await ca.rotation.status(now: ca.at(100)).lagging.map(\.spiffeID) == ["spiffe://cluster.local/ns/default/sa/web"])
        try await ca.issue("web", at: 62)
        #expect(try await ca.rotation.status(now: ca.at(100)).lagging.isEmpty)
        let tooLong = await #expect(throws: DaemonError.self) {
            _ = try await ca.rotation.prepare(pickUpMargin: .seconds(7200), actor: "t", now: ca.at(1))
        }
        #expect(tooLong?.message.contains("--pick-up-margin") == true)
    }

    @Test("--force activates despite lagging identities and records that it did")
    func forcedActivation() async throws {
        let ca = try RotatingCA()
        defer { ca.dir.remove() }
        try await ca.issue("web", at: 0)
        _ = try await ca.rotation.prepare(actor: "test", now: ca.at(1))
        let activated = try await ca.rotation.activate(force: true, actor: "test", now: ca.at(20))
        #expect(activated.lagging.map(\.spiffeID) == ["spiffe://cluster.local/ns/default/sa/web"])
        #expect(try RootRotation.progress(in: ca.state)?.forced == true)
        let report = try await ca.ledger.verifyChain()
        #expect(report.isIntact)
        #expect(report.eventCount == 4)  // the issuance, prepare, the bridge's issuance, the forced activation
    }

    @Test("retire is refused while a certificate from the old root is live, then drops the root and deletes its key")
    func retireGate() async throws {
        let ca = try RotatingCA()
        defer { ca.dir.remove() }
        let early = try await ca.issue("web", at: 0, ttl: .seconds(600))
        _ = try await ca.rotation.prepare(actor: "test", now: ca.at(1))
        try await ca.issue("web", at: 10, ttl: .seconds(600))
        let activated = try await ca.rotation.activate(force: false, actor: "test", now: ca.at(20))

        let refused = await #expect(throws: DaemonError.self) { try await ca.rotation.retire(actor: "test", now: ca.at(300)) }
        #expect(refused?.code == .rotationRefused)
        #expect(refused?.message.contains(early.certificate.serialHex) == true)
        #expect(refused?.message.contains("2 unexpired") == true)  // the two workload certificates; not the bridge
        #expect(try ca.bundle().count == 2)

        let retired = try await ca.rotation.retire(actor: "test", now: ca.at(700))
        #expect(retired.oldRoot == activated.oldRoot)
        #expect(try ca.bundle() == [activated.newRoot])
        #expect(!FileManager.default.fileExists(atPath: ca.state.previousRootDirectory))
        #expect(FileManager.default.fileExists(atPath: retired.archivedAt))
        #expect(try RootRotation.progress(in: ca.state) == nil)
        #expect(try await ca.ledger.verifyChain().isIntact)

        // A new rotation can start again.
        _ = try await ca.rotation.prepare(actor: "test", now: ca.at(800))
    }

    @Test("Steps out of order say what to run instead")
    func wrongStage() async throws {
        let ca = try RotatingCA()
        defer { ca.dir.remove() }
        let activate = await #expect(throws: DaemonError.self) { try await ca.rotation.activate(force: false, actor: "t", now: ca.at(1)) }
        #expect(activate?.message.contains("meshca root prepare") == true)
        let retire = await #expect(throws: DaemonError.self) { try await ca.rotation.retire(actor: "t", now: ca.at(1)) }
        #expect(retire?.code == .rotationStage)
        _ = try await ca.rotation.prepare(actor: "t", now: ca.at(2))
        let early = await #expect(throws: DaemonError.self) { try await ca.rotation.retire(actor: "t", now: ca.at(3)) }
        #expect(early?.message.contains("meshca root activate") == true)
    }

    @Test("A plug-in intermediate CA cannot be rotated by meshca, and says why")
    func pluginRefused() async throws {
        let dir = try TemporaryDirectory("rotation-plugin")
        defer { dir.remove() }
        let root = StateDirectory(path: dir.file("root"))
        let rootState = try CAState.create(in: root, options: .init(), now: Date())
        let key = try KeyType.ecP256.generate()
        let intermediate = try CertificateAuthority(trustDomain: rootState.trustDomain, signer: rootState.signer)
            .issueIntermediate(publicKey: key.publicKey, commonName: "plug-in", ttl: .seconds(86_400 * 30), at: Date())
        try FileManager.default.createDirectory(atPath: dir.file("cacerts"), withIntermediateDirectories: true)
        try dir.write("cacerts/ca-cert.pem", intermediate.pem)
        try dir.write("cacerts/ca-key.pem", try key.serializeAsPEM().pemString + "\n")
        try dir.write("cacerts/cert-chain.pem", intermediate.pem + rootState.signer.certificate.pem)
        try dir.write("cacerts/root-cert.pem", rootState.signer.certificate.pem)
        let state = StateDirectory(path: dir.file("plugged"))
        _ = try await CAState.importPlugin(from: dir.file("cacerts"), into: state, trustDomain: rootState.trustDomain, now: Date())
        let rotation = RootRotation(directory: state, ledger: try SQLiteLedger(path: state.ledgerPath))
        let refused = await #expect(throws: DaemonError.self) { try await rotation.prepare(actor: "t", now: Date()) }
        #expect(refused?.message.contains("plug-in intermediate") == true)
        #expect(!FileManager.default.fileExists(atPath: state.rotationPath))
    }
}

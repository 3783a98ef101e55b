import Foundation
import MeshCACore
import MeshCADaemon
import MeshCAIO
import MeshCATestSupport
import SwiftASN1
import Testing
import X509

@Suite("Plug-in CA (Istio's cacerts layout)")
struct PluginCATests {
    /// Writes a cacerts directory with an intermediate signed by a fresh root.
    func makeCacerts(_ dir: TemporaryDirectory, name: String = "cacerts") throws -> (root: Certificate, intermediate: Certificate) {
        let pki = try TestPKI(createdAt: Date(), rootTTL: .seconds(365 * 86_400), intermediateTTL: .seconds(30 * 86_400))
        try pki.writeCacerts(to: dir.file(name))
        return (pki.root, try #require(pki.intermediate))
    }

    @Test("A complete cacerts directory is accepted; issued chains are [leaf, intermediate, root]")
    func accepted() async throws {
        let dir = try TemporaryDirectory("plugin")
        defer { dir.remove() }
        let (root, intermediate) = try makeCacerts(dir)
        let state = StateDirectory(path: dir.file("state"))
        let ca = try await CAState.importPlugin(from: dir.file("cacerts"), into: state, trustDomain: TrustDomain("cluster.local"), now: Date())
        #expect(ca.signer.certificate == intermediate)
        #expect(ca.signer.bundle == [root])
        let loaded = try CAState.load(from: state)
        #expect(loaded.signer.certificate == intermediate)
        let issuance = try TestPKI(trustDomain: loaded.trustDomain, signer: loaded.signer).issue(at: Date()).issuance
        #expect(issuance.istioCertChain.count == 3)
        #expect(issuance.intermediates == [intermediate])
        #expect(try dir.mode("state/ca-key.pem") == 0o600)
    }

    @Test("Each missing file is listed", arguments: PluginCA.files)
    func missingFile(name: String) async throws {
        let dir = try TemporaryDirectory("plugin")
        defer { dir.remove() }
        _ = try makeCacerts(dir)
        try FileManager.default.removeItem(atPath: dir.file("cacerts/\(name)"))
        let error = await #expect(throws: DaemonError.self) { _ = try await PluginCA.load(from: dir.file("cacerts"), now: Date()) }
        #expect(error?.message.contains("\(name) is missing") == true, "\(error?.message ?? "")")
    }

    @Test("A key that does not match, a non-CA certificate, and a chain to another root are refused")
    func refused() async throws {
        let dir = try TemporaryDirectory("plugin")
        defer { dir.remove() }
        _ = try makeCacerts(dir)
        try dir.write("cacerts/ca-key.pem", try KeyType.ecP256.generate().serializeAsPEM().pemString)
        let wrongKey = await #expect(throws: DaemonError.self) { _ = try await PluginCA.load(from: dir.file("cacerts"), now: Date()) }
        #expect(wrongKey?.message.contains("does not match") == true)

        _ = try makeCacerts(dir, name: "other")
        _ = try makeCacerts(dir)
        try FileManager.default.removeItem(atPath: dir.file("cacerts/root-cert.pem"))
        try FileManager.default.copyItem(atPath: dir.file("other/root-cert.pem"), toPath: dir.file("cacerts/root-cert.pem"))
        let foreign = await #expect(throws: DaemonError.self) { _ = try await PluginCA.load(from: dir.file("cacerts"), now: Date()) }
        #expect(foreign?.message.contains("does not chain") == true)

        // A workload certificate posing as a CA.
        _ = try makeCacerts(dir)
        let (issuance, leafKey) = try TestPKI().issue("x", at: Date())
        let leaf = issuance.certificate
        try dir.write("cacerts/ca-cert.pem", leaf.pem)
        try dir.write("cacerts/ca-key.pem", try leafKey.serializeAsPEM().pemString)
        let notCA = await #expect(throws: DaemonError.self) { _ = try await PluginCA.load(from: dir.file("cacerts"), now: Date()) }
        #expect(notCA?.message.contains("not a CA") == true, "\(notCA?.message ?? "")")
    }
}

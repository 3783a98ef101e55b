import Foundation
import MeshCACore
import MeshCADaemon
import MeshCAIO
import MeshCATestSupport
import SwiftASN1
import Testing
import X509

@Suite("Workload credential files: writing and inspecting")
struct CredentialFilesTests {
    /// Issues into `dir/name` from a fresh CA made at `now` (or `ca` when given), returning the CA used.
    @discardableResult
    func issue(into path: String, ca given: TestPKI? = nil, ttl: Duration = .seconds(86_400), at now: Date = Date()) throws -> TestPKI {
        let ca = try given ?? TestPKI(createdAt: now, rootTTL: .seconds(10 * 86_400))
        let (issuance, key) = try ca.issue(at: now, ttl: ttl)
        try CredentialFiles.write(
            to: path, certChainPEM: issuance.certChainPEM,
            keyPEM: try key.serializeAsPEM().pemString + "\n", bundlePEM: issuance.bundlePEM
        )
        return ca
    }

    func errors(_ report: CredentialReport) -> [String] {
        report.findings.filter { $0.severity == .error }.map(\.message)
    }

    @Test("The three files are written with 0600 for the key and no temporary files left behind")
    func writes() throws {
        let dir = try TemporaryDirectory("files")
        defer { dir.remove() }
        try issue(into: dir.file("out"))
        #expect(try dir.mode("out/key.pem") == 0o600)
        #expect(try dir.mode("out/cert-chain.pem") == 0o644)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.file("out")).sorted()
        #expect(names == ["cert-chain.pem", "key.pem", "root-cert.pem"])
    }

    @Test("Good credentials inspect clean")
    func clean() async throws {
        let dir = try TemporaryDirectory("files")
        defer { dir.remove() }
        try issue(into: dir.path)
        let report = await CredentialReport.inspect(directory: dir.path, now: Date())
        #expect(!report.hasErrors, "\(errors(report))")
        #expect(report.spiffeID == "spiffe://cluster.local/ns/default/sa/was")
        #expect(report.findings.contains { $0.message.contains("chain verifies") })
        #expect(report.findings.contains { $0.message.contains("key.pem matches") })
    }

    @Test("A key from another issuance is reported as not matching")
    func keyMismatch() async throws {
        let dir = try TemporaryDirectory("files")
        defer { dir.remove() }
        let ca = try issue(into: dir.file("a"))
        try issue(into: dir.file("b"), ca: ca)
        try FileManager.default.removeItem(atPath: dir.file("a/key.pem"))
        try FileManager.default.copyItem(atPath: dir.file("b/key.pem"), toPath: dir.file("a/key.pem"))
        let report = await CredentialReport.inspect(directory: dir.file("a"), now: Date())
        #expect(errors(report).contains { $0.contains("key.pem does not match") })
    }

    @Test("Expired and not-yet-valid certificates are reported with their times")
    func validity() async throws {
        let dir = try TemporaryDirectory("files")
        defer { dir.remove() }
        try issue(into: dir.path, ttl: .seconds(3600))
        let later = await CredentialReport.inspect(directory: dir.path, now: Date().addingTimeInterval(7200))
        #expect(errors(later).contains { $0.hasPrefix("expired") })
        let earlier = await CredentialReport.inspect(directory: dir.path, now: Date().addingTimeInterval(-3600))
        #expect(errors(earlier).contains { $0.hasPrefix("not yet valid") && $0.contains("clock") })
    }

    @Test("A chain from another CA does not verify against root-cert.pem")
    func foreignRoot() async throws {
        let dir = try TemporaryDirectory("files")
        defer { dir.remove() }
        try issue(into: dir.file("mine"))
        try issue(into: dir.file("theirs"))
        try FileManager.default.removeItem(atPath: dir.file("mine/root-cert.pem"))
        try FileManager.default.copyItem(atPath: dir.file("theirs/root-cert.pem"), toPath: dir.file("mine/root-cert.pem"))
        let report = await CredentialReport.inspect(directory: dir.file("mine"), now: Date())
        #expect(errors(report).contains { $0.contains("chain does not verify") })
    }

    @Test("Missing files are each named")
    func missing() async throws {
        let dir = try TemporaryDirectory("files")
        defer { dir.remove() }
        let report = await CredentialReport.inspect(directory: dir.path, now: Date())
        let messages = errors(report)
        #expect(messages.count == 3)
        #expect(messages.contains { $0.hasPrefix("key.pem is missing") })
    }
}

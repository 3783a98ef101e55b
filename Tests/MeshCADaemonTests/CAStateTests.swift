import Foundation
import MeshCACore
import MeshCADaemon
import MeshCAIO
import MeshCATestSupport
import SwiftASN1
import Testing
import X509

@Suite("The CA's state directory")
struct CAStateTests {
    @Test("The state directory comes from the flag, then MESHCA_STATE_DIR, then XDG_DATA_HOME, then ~/.local/share")
    func resolution() {
        let env = ["MESHCA_STATE_DIR": "/srv/ca", "XDG_DATA_HOME": "/xdg", "HOME": "/home/u"]
        #expect(StateDirectory.resolve(explicit: "/flag", environment: env).path == "/flag")
        #expect(StateDirectory.resolve(explicit: nil, environment: env).path == "/srv/ca")
        #expect(StateDirectory.resolve(explicit: nil, environment: ["XDG_DATA_HOME": "/xdg", "HOME": "/home/u"]).path == "/xdg/meshca")
        #expect(StateDirectory.resolve(explicit: nil, environment: ["HOME": "/home/u"]).path == "/home/u/.local/share/meshca")
    }

    @Test("init creates the directory 0700 and the key 0600, and the CA loads back")
    func createAndLoad() throws {
        let dir = try TemporaryDirectory("state")
        defer { dir.remove() }
        let state = StateDirectory(path: dir.file("nested/state"))
        let created = try CAState.create(in: state, options: .init(trustDomain: try TrustDomain("example.org"), keyType: .ecP384), now: Date())
        #expect(try dir.mode("nested/state") == 0o700)
        #expect(try dir.mode("nested/state/ca-key.pem") == 0o600)
        let loaded = try CAState.load(from: state)
        #expect(loaded.trustDomain.name == "example.org")
        #expect(loaded.signer.certificate == created.signer.certificate)
        #expect(loaded.signer.bundle == [created.signer.certificate])
        #expect(loaded.warnings.isEmpty)
    }

    @Test("init refuses to overwrite a CA and says how to start over")
    func refusesOverwrite() throws {
        let dir = try TemporaryDirectory("state")
        defer { dir.remove() }
        let state = StateDirectory(path: dir.path)
        let first = try CAState.create(in: state, options: .init(), now: Date())
        let error = #expect(throws: DaemonError.self) { try CAState.create(in: state, options: .init(), now: Date()) }
        #expect(error?.code == .caExists)
        #expect(error?.message.contains("move that directory aside") == true)
        #expect(try CAState.load(from: state).signer.certificate == first.signer.certificate)
    }

    @Test("Missing state, missing files, a foreign key and a damaged certificate each get their own message")
    func loadFailures() throws {
        let dir = try TemporaryDirectory("state")
        defer { dir.remove() }
        let missing = #expect(throws: DaemonError.self) { try CAState.load(from: StateDirectory(path: dir.file("none"))) }
        #expect(missing?.code == .noCA)
        #expect(missing?.message.contains("meshca init") == true)

        let state = StateDirectory(path: dir.file("ca"))
        _ = try CAState.create(in: state, options: .init(), now: Date())
        try FileManager.default.removeItem(atPath: state.bundlePath)
        let incomplete = #expect(throws: DaemonError.self) { try CAState.load(from: state) }
        #expect(incomplete?.code == .incompleteState)
        #expect(incomplete?.message.contains("root-cert.pem is missing") == true)

        try FileManager.default.copyItem(atPath: state.caCertificatePath, toPath: state.bundlePath)
        let otherKey = try KeyType.ecP256.generate().serializeAsPEM().pemString
        try otherKey.write(toFile: state.caKeyPath, atomically: true, encoding: .utf8)
        let mismatch = #expect(throws: DaemonError.self) { try CAState.load(from: state) }
        #expect(mismatch?.message.contains("does not match") == true)

        try "garbage".write(toFile: state.caCertificatePath, atomically: true, encoding: .utf8)
        let damaged = #expect(throws: DaemonError.self) { try CAState.load(from: state) }
        #expect(damaged?.code == .unreadableFile)
        #expect(damaged?.message.contains(state.caCertificatePath) == true)
    }

    @Test("A CA key readable by others loads with a warning that says how to fix it")
    func looseKeyWarning() throws {
        let dir = try TemporaryDirectory("state")
        defer { dir.remove() }
        let state = StateDirectory(path: dir.path)
        _ = try CAState.create(in: state, options: .init(), now: Date())
        chmod(state.caKeyPath, 0o644)
        let warnings = try CAState.load(from: state).warnings
        #expect(warnings.count == 1)
        #expect(warnings.first?.contains("chmod 600") == true)
    }

    @Test("Many first commands at once create exactly one CA")
    func concurrentFirstUse() async throws {
        let dir = try TemporaryDirectory("state")
        defer { dir.remove() }
        let state = StateDirectory(path: dir.file("fresh"))
        let fingerprints = try await withThrowingTaskGroup(of: (String, Bool).self) { group in
            for _ in 0..<8 {
                group.addTask {
                    let (ca, created) = try CAState.loadOrCreate(in: state, options: .init(), now: Date())
                    return (ca.signer.certificate.sha256Fingerprint, created)
                }
            }
            return try await group.reduce(into: [(String, Bool)]()) { $0.append($1) }
        }
        #expect(Set(fingerprints.map(\.0)).count == 1)
        #expect(fingerprints.filter(\.1).count == 1)
    }
}

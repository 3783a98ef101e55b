import Foundation
import MeshCAAgent
import MeshCAIO
import MeshCATestSupport
import Testing

@Suite("The agent's output directory")
struct CredentialDirectoryTests {
    @Test("Each write is a complete version directory behind an atomically swapped ..data symlink")
    func layout() throws {
        let dir = try TemporaryDirectory("creds")
        defer { dir.remove() }
        let store = CredentialDirectory(path: dir.file("out"))
        let first = try store.write(chainPEM: "chain-1", keyPEM: "key-1", bundlePEM: "roots-1")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: dir.file("out/..data")) == first)
        for name in ["cert-chain.pem", "key.pem", "root-cert.pem"] {
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: dir.file("out/\(name)")) == "..data/\(name)")
        }
        #expect(try dir.read("out/key.pem") == "key-1")
        #expect(try dir.mode("out/\(first)/key.pem") == 0o600)
        #expect(try dir.mode("out/\(first)/cert-chain.pem") == 0o644)

        let second = try store.write(chainPEM: "chain-2", keyPEM: "key-2", bundlePEM: "roots-2")
        let third = try store.write(chainPEM: "chain-3", keyPEM: "key-3", bundlePEM: "roots-3")
        #expect(store.read()?.keyPEM == "key-3")
        // The previous version stays for readers in flight; older ones are removed.
        let versions = try FileManager.default.contentsOfDirectory(atPath: dir.file("out")).filter { $0.hasPrefix("..") && $0 != "..data" }
        #expect(Set(versions) == [second, third])
        #expect(!versions.contains(first))
    }

    @Test("Plain files left by meshca issue are replaced by the symlinked layout")
    func replacesPlainFiles() throws {
        let dir = try TemporaryDirectory("creds")
        defer { dir.remove() }
        for name in ["cert-chain.pem", "key.pem", "root-cert.pem"] { try dir.write(name, "old \(name)") }
        let store = CredentialDirectory(path: dir.path)
        #expect(store.read()?.keyPEM == "old key.pem")
        try store.write(chainPEM: "c", keyPEM: "k", bundlePEM: "r")
        #expect(try dir.read("key.pem") == "k")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: dir.file("key.pem"))) == "..data/key.pem")
    }

    @Test("A configurable key mode is applied")
    func keyMode() throws {
        let dir = try TemporaryDirectory("creds")
        defer { dir.remove() }
        let version = try CredentialDirectory(path: dir.path, keyMode: 0o640).write(chainPEM: "c", keyPEM: "k", bundlePEM: "r")
        #expect(try dir.mode("\(version)/key.pem") == 0o640)
    }

    @Test("An --out that is a file is refused with the path")
    func notADirectory() throws {
        let dir = try TemporaryDirectory("creds")
        defer { dir.remove() }
        try dir.write("file", "x")
        #expect(throws: (any Error).self) { try CredentialDirectory(path: dir.file("file")).prepareDirectory() }
    }
}

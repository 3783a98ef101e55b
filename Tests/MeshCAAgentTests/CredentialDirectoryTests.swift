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

    @Test("A combined file (chain, then key; the key's mode) is part of every version and swapped with the others")
    func combined() throws {
        let dir = try TemporaryDirectory("creds")
        defer { dir.remove() }
        let store = CredentialDirectory(path: dir.path, keyMode: 0o600, combinedName: "haproxy.pem")
        let first = try store.write(chainPEM: "chain-1\n", keyPEM: "key-1\n", bundlePEM: "roots-1")
        #expect(try dir.read("haproxy.pem") == "chain-1\nkey-1\n")
        #expect(try dir.mode("\(first)/haproxy.pem") == 0o600)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: dir.file("haproxy.pem")) == "..data/haproxy.pem")
        let second = try store.write(chainPEM: "chain-2", keyPEM: "key-2\n", bundlePEM: "roots-2")
        #expect(try dir.read("\(second)/haproxy.pem") == "chain-2\nkey-2\n", "a newline is added between chain and key")
        #expect(try dir.read("haproxy.pem") == "chain-2\nkey-2\n")
        #expect(try dir.read("\(first)/haproxy.pem") == "chain-1\nkey-1\n", "the previous version stays whole")
    }

    @Test("The combined file's name must be a plain name the agent does not already use")
    func combinedNames() {
        #expect(CredentialDirectory.combinedNameProblem("haproxy.pem") == nil)
        for bad in ["", "a/b.pem", "../x.pem", "..data", ".hidden", "key.pem", "cert-chain.pem", "root-cert.pem", "crl.pem"] {
            #expect(CredentialDirectory.combinedNameProblem(bad) != nil, "\(bad)")
        }
    }

    @Test("An --out that is a file is refused with the path")
    func notADirectory() throws {
        let dir = try TemporaryDirectory("creds")
        defer { dir.remove() }
        try dir.write("file", "x")
        #expect(throws: (any Error).self) { try CredentialDirectory(path: dir.file("file")).prepareDirectory() }
    }
}

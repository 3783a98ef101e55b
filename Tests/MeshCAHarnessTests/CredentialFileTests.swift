import Foundation
import MeshCACore
import MeshCAHarness
import Testing

/// Problems with a workload's own files, found before any byte is sent.
@Suite("Credential files")
struct CredentialFileTests {
    @Test("A key.pem that does not belong to the leaf is reported as a key mismatch with OpenSSL's reason")
    func keyMismatch() throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        let api = try mesh.workload("api")
        let other = try mesh.workload("other")
        try FileManager.default.removeItem(atPath: api + "/key.pem")
        try FileManager.default.copyItem(atPath: other + "/key.pem", toPath: api + "/key.pem")
        let report = LoopbackHandshake(server: .credentials(directory: web), client: .credentials(directory: api)).run()
        let failure = try #require(report.failure)
        #expect(failure.code == .keyMismatch)
        #expect(failure.detectedBy == .client)
        #expect(
            failure.cause.contains(
                "\(api)/key.pem is not the private key of the leaf certificate (spiffe://cluster.local/ns/default/sa/api)"
            ))
        #expect(failure.rawReason.contains("key values mismatch"))
        #expect(report.tlsVersion == nil)
    }

    @Test("A directory kept by meshca agent is read through its ..data link, one version for all three files")
    func readsOneVersion() throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        // The agent's layout: ..data -> a version directory. The top-level key.pem here belongs to another issuance,
        // as a reader that resolved each file on its own could see during a swap; the version directory is whole.
        let api = try mesh.workload("api")
        let version = try mesh.workload("api", name: "api/..2026_11_27_12_00_00.000_test")
        try FileManager.default.createSymbolicLink(atPath: api + "/..data", withDestinationPath: "..2026_11_27_12_00_00.000_test")
        try FileManager.default.removeItem(atPath: api + "/key.pem")
        try FileManager.default.copyItem(atPath: try mesh.workload("api", name: "stale") + "/key.pem", toPath: api + "/key.pem")
        let report = LoopbackHandshake(server: .credentials(directory: web), client: .credentials(directory: api)).run()
        #expect(report.isSuccess, "\(report.failure?.cause ?? "")")
        #expect(FileManager.default.fileExists(atPath: version + "/key.pem"))
    }

    @Test("A missing root-cert.pem is named with its path")
    func missingFile() throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        let api = try mesh.workload("api")
        try FileManager.default.removeItem(atPath: web + "/root-cert.pem")
        let report = LoopbackHandshake(server: .credentials(directory: web), client: .credentials(directory: api)).run()
        let failure = try #require(report.failure)
        #expect(failure.code == .missingFile)
        #expect(failure.detectedBy == .server)
        #expect(failure.cause == "The server's \(web)/root-cert.pem is missing.")
        #expect(failure.rawReason.contains("No such file or directory"))
    }

    @Test("A credentials directory that does not exist says so")
    func missingDirectory() throws {
        let report = LoopbackHandshake(
            server: .credentials(directory: "/nonexistent/meshca/web"), client: .noCertificate
        ).run()
        let failure = try #require(report.failure)
        #expect(failure.code == .missingFile)
        #expect(failure.cause.contains("the directory /nonexistent/meshca/web does not exist"))
    }

    @Test("A key.pem that cannot be read is reported with the system's reason")
    func unreadableFile() throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        // Tests may run as root, who can read any mode; a directory in the file's place cannot be read by anyone.
        try FileManager.default.removeItem(atPath: web + "/key.pem")
        try FileManager.default.createDirectory(atPath: web + "/key.pem", withIntermediateDirectories: false)
        let report = LoopbackHandshake(server: .credentials(directory: web), client: .noCertificate).run()
        let failure = try #require(report.failure)
        #expect(failure.code == .unreadableFile)
        #expect(failure.cause == "The server's \(web)/key.pem cannot be read: Is a directory.")
    }

    @Test("A cert-chain.pem without certificates is reported as malformed")
    func malformedFile() throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        try "not a certificate\n".write(toFile: web + "/cert-chain.pem", atomically: true, encoding: .utf8)
        let report = LoopbackHandshake(server: .credentials(directory: web), client: .noCertificate).run()
        let failure = try #require(report.failure)
        #expect(failure.code == .malformedFile)
        #expect(failure.cause.contains("cert-chain.pem holds no \"CERTIFICATE\" PEM block"))
    }

    @Test("A key.pem holding a certificate instead of a key is reported as malformed")
    func keyFileHoldsCertificate() throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        try FileManager.default.removeItem(atPath: web + "/key.pem")
        try FileManager.default.copyItem(atPath: web + "/root-cert.pem", toPath: web + "/key.pem")
        let report = LoopbackHandshake(server: .credentials(directory: web), client: .noCertificate).run()
        let failure = try #require(report.failure)
        #expect(failure.code == .malformedFile)
        #expect(failure.cause.contains("holds only \"CERTIFICATE\", not a \"PRIVATE KEY\" block"))
    }
}

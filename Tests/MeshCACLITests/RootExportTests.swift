import Foundation
import MeshCATestSupport
import Testing

@Suite("meshca root export: the trusted roots as PEM or as the istio-ca-root-cert ConfigMap")
struct RootExportTests {
    @Test("--format pem prints root-cert.pem; the ConfigMap holds every root under root-cert.pem, both during a rotation")
    func export() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try await ws.meshca("init"))

        let pem = try await ws.meshca("root", "export", "--format", "pem")
        expectSuccess(pem)
        #expect(pem.stdout == (try ws.dir.read("state/root-cert.pem")))
        try ws.dir.write("exported.pem", pem.stdout)
        let fingerprint = try await ServeInitTests.sha256(of: ws.dir.file("exported.pem"), in: ws)

        let map = try await ws.meshca("root", "export", "--format", "configmap", "--namespace", "istio-system")
        expectSuccess(map)
        let lines = map.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(Array(lines.prefix(5)) == ["apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: istio-ca-root-cert", "  namespace: istio-system"])
        #expect(lines.contains("    meshca/root-sha256: \(fingerprint)"), "\(map.stdout)")
        #expect(lines.contains("    meshca/trust-domain: cluster.local"))
        #expect(try Self.rootCertPEM(in: map.stdout) == ws.dir.read("state/root-cert.pem"))

        // Without --namespace the object names none (kubectl apply -n places it); --name renames it.
        let plain = try await ws.meshca("root", "export", "--name", "meshca-root")
        expectSuccess(plain)
        #expect(plain.stdout.contains("  name: meshca-root\n"))
        #expect(!plain.stdout.contains("namespace:"))

        // During a rotation root-cert.pem holds the old and the next root, and so does the export.
        expectSuccess(try await ws.meshca("root", "prepare"))
        let rotating = try await ws.meshca("root", "export", "--namespace", "default")
        expectSuccess(rotating)
        let bundle = try Self.rootCertPEM(in: rotating.stdout)
        #expect(bundle == (try ws.dir.read("state/root-cert.pem")))
        #expect(bundle.components(separatedBy: "-----BEGIN CERTIFICATE-----").count == 3)
        #expect(bundle.hasPrefix(pem.stdout), "the current root stays first")
    }

    @Test("A bad namespace or name is a usage error naming it; --namespace with --format pem too; no CA is exit 1")
    func refusals() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        let none = try await ws.meshca("root", "export")
        #expect(none.status == 1)
        #expect(none.stderr.contains("meshca init"), "\(none.stderr)")

        expectSuccess(try await ws.meshca("init"))
        let namespace = try await ws.meshca("root", "export", "--namespace", "Istio_System")
        #expect(namespace.status == 64)
        #expect(namespace.stderr.contains("\"Istio_System\" is not a Kubernetes namespace name: \"I\" is not allowed"), "\(namespace.stderr)")
        let name = try await ws.meshca("root", "export", "--name", "root-")
        #expect(name.status == 64)
        #expect(name.stderr.contains("\"root-\" is not a ConfigMap name: it starts or ends with \"-\""), "\(name.stderr)")
        let pem = try await ws.meshca("root", "export", "--format", "pem", "--namespace", "default")
        #expect(pem.status == 64)
        #expect(pem.stderr.contains("--namespace applies only to --format configmap"), "\(pem.stderr)")
        let format = try await ws.meshca("root", "export", "--format", "der")
        #expect(format.status == 64)
    }

    /// The value of `data.root-cert.pem` in the ConfigMap YAML: the literal block's lines without their indentation.
    static func rootCertPEM(in yaml: String) throws -> String {
        let lines = yaml.split(separator: "\n", omittingEmptySubsequences: false)
        let start = try #require(lines.firstIndex(of: "  root-cert.pem: |"))
        let block = lines[(start + 1)...].prefix { $0.hasPrefix("    ") }
        let rest = Array(lines[(start + 1)...].dropFirst(block.count))
        #expect(rest.allSatisfy { $0.isEmpty }, "nothing follows the block: \(rest)")
        return block.map { $0.dropFirst(4) + "\n" }.joined()
    }
}

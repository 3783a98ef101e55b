import Foundation
import MeshCACore
import MeshCATestSupport
import Testing

/// `meshca handshake` as a user runs it: the built binary, its output and its exit status.
@Suite("meshca handshake", .timeLimit(.minutes(2)))
struct HandshakeCommandTests {
    @Test("Two workloads of one CA: exit 0 and both verified SPIFFE IDs printed")
    func succeeds() async throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        let api = try mesh.workload("api")
        let result = try await Command.meshca([
            "handshake", "--server", web, "--client", api, "--expect-server-id", (try mesh.id("web")).uri,
        ])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.hasPrefix("OK      mTLS handshake succeeded: TLSv1.3"))
        #expect(result.stdout.contains("verified the client as spiffe://cluster.local/ns/default/sa/api"))
        #expect(result.stdout.contains("verified the server as spiffe://cluster.local/ns/default/sa/web"))
        #expect(result.stdout.contains("left)"))
    }

    @Test("STRICT without a client certificate: exit 1 with the cause and the fix")
    func strictWithoutClientCertificate() async throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        let result = try await Command.meshca(["handshake", "--server", web])
        #expect(result.status == 1)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(
            lines.first
                == "FAILED  mTLS handshake (STRICT server on \(lines.first?.split(separator: " ").last?.dropLast() ?? ""))"
        )
        #expect(
            lines.contains {
                $0.hasPrefix(
                    "cause:  The server is STRICT and requires a client certificate, but the client presented none")
            })
        #expect(lines.contains { $0.hasPrefix("fix:    Give the client its cert-chain.pem and key.pem") })
        #expect(lines.contains { $0.hasPrefix("raw:    ") && $0.contains("peer did not return a certificate") })
        #expect(lines.contains("code:   client-certificate-required (detected by the server)"))
    }

    @Test("PERMISSIVE with a plaintext client: exit 0 and says it accepted plaintext")
    func permissivePlaintext() async throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        let result = try await Command.meshca(["handshake", "--server", web, "--client", "plaintext", "--mode", "permissive"])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.hasPrefix("OK      PERMISSIVE: accepted a plaintext connection"))
    }

    @Test("A key.pem from another issuance: exit 1 naming the file")
    func keyMismatch() async throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        let api = try mesh.workload("api")
        try FileManager.default.removeItem(atPath: web + "/key.pem")
        try FileManager.default.copyItem(atPath: api + "/key.pem", toPath: web + "/key.pem")
        let result = try await Command.meshca(["handshake", "--server", web, "--client", api])
        #expect(result.status == 1)
        #expect(
            result.stdout.contains("cause:  The server's \(web)/key.pem is not the private key of the leaf certificate")
        )
        #expect(result.stdout.contains("code:   key-mismatch"))
    }

    @Test("--json prints the report with snake_case fields and the failure code")
    func json() async throws {
        let mesh = try TestMesh()
        let other = try TestMesh(trustDomain: "other.org")
        defer {
            mesh.remove()
            other.remove()
        }
        let web = try other.workload("web")
        let api = try mesh.workload("api")
        let result = try await Command.meshca(["handshake", "--server", web, "--client", api, "--json"])
        #expect(result.status == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(object["kind"] as? String == "loopback")
        #expect(object["outcome"] as? String == "failed")
        #expect(object["mode"] as? String == "strict")
        let failure = try #require(object["failure"] as? [String: Any])
        #expect(failure["code"] as? String == "untrusted-chain")
        #expect(failure["detected_by"] as? String == "client")
        #expect((failure["cause"] as? String)?.isEmpty == false)
        #expect((failure["fix"] as? String)?.isEmpty == false)
        #expect((failure["raw_reason"] as? String)?.contains("self-signed certificate in certificate chain") == true)
        let client = try #require(object["client"] as? [String: Any])
        #expect(client["spiffe_id"] as? String == "spiffe://cluster.local/ns/default/sa/api")
        let peerChain = try #require(client["peer_chain"] as? [[String: Any]])
        #expect(peerChain.first?["uri_sans"] as? [String] == ["spiffe://other.org/ns/default/sa/web"])
        #expect(peerChain.first?["seconds_left"] as? Int != nil)
    }

    @Test(
        "Usage errors exit 64 and say what to give",
        arguments: [
            (["handshake"], "Give exactly one of --server DIR"),
            (
                ["handshake", "--server", "/tmp", "--mode", "lenient"],
                "--mode must be strict or permissive, not \"lenient\""
            ),
            (["handshake", "--connect", "127.0.0.1:8443"], "--connect needs --certs DIR"),
            (["handshake", "--connect", "localhost", "--certs", "/tmp"], "--connect takes HOST:PORT"),
            (
                ["handshake", "--server", "/tmp", "--expect-server-id", "http://x"],
                "--expect-server-id: \"http://x\" is not a valid SPIFFE ID"
            ),
            (["handshake", "--server", "plaintext", "--client", "plaintext"], "leave no TLS to test"),
        ])
    func usageErrors(arguments: [String], message: String) async throws {
        let result = try await Command.meshca(arguments)
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }

    @Test("--listen --once and --connect between two meshca processes, both reporting the peer's ID")
    func listenAndConnect() async throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        let api = try mesh.workload("api")
        let server = try BackgroundProcess(
            Command.meshcaBinary, ["handshake", "--listen", "127.0.0.1:0", "--certs", web, "--once"])
        defer { server.terminate() }
        let banner = try await server.waitForLine(containing: "listening on", timeout: .seconds(60))
        let address = try #require(banner.split(separator: " ").dropFirst(2).first)
        let client = try await Command.meshca([
            "handshake", "--connect", String(address), "--certs", api, "--expect-server-id", (try mesh.id("web")).uri,
        ])
        #expect(client.status == 0, "\(client.stdout)\(client.stderr)")
        #expect(client.stdout.contains("verified the server as spiffe://cluster.local/ns/default/sa/web"))
        #expect(try await server.stop(timeout: .seconds(30)) == 0)
        #expect(server.output.contains("verified the client as spiffe://cluster.local/ns/default/sa/api"))
    }

    @Test("--listen keeps serving until SIGTERM, and --connect to a closed port explains the refusal")
    func listenUntilSignal() async throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        let api = try mesh.workload("api")
        let server = try BackgroundProcess(
            Command.meshcaBinary, ["handshake", "--listen", "127.0.0.1:0", "--certs", web])
        defer { server.terminate() }
        let banner = try await server.waitForLine(containing: "listening on", timeout: .seconds(60))
        let address = String(try #require(banner.split(separator: " ").dropFirst(2).first))
        for _ in 0..<2 {
            let client = try await Command.meshca(["handshake", "--connect", address, "--certs", api])
            #expect(client.status == 0, "\(client.stdout)")
        }
        #expect(try await server.stop(timeout: .seconds(30)) == 0)
        #expect(server.output.components(separatedBy: "OK      mTLS handshake succeeded").count == 3)

        let refused = try await Command.meshca(["handshake", "--connect", address, "--certs", api, "--timeout", "2s"])
        #expect(refused.status == 1)
        #expect(refused.stdout.contains("cause:  The client could not connect to \(address): Connection refused."))
        #expect(refused.stdout.contains("code:   connection-failed"))
    }
}

import Foundation
import MeshCACore
import MeshCAHarness
import MeshCATestSupport
import Testing

/// Cross-checks with an independent peer: the `openssl s_server` and `s_client` tools, run as child
/// processes on loopback ports, against the harness as client and as server.
@Suite("Against openssl s_server and s_client", .timeLimit(.minutes(2)))
struct OpenSSLToolTests {
    /// Starts `openssl s_server` for one connection on a free loopback port and returns it with its port.
    /// `-www` makes it serve HTTP instead of echoing standard input, which is closed here and would end
    /// the connection before the handshake.
    private func startServer(_ directory: String, trusting roots: String, strict: Bool = true) async throws -> (
        BackgroundProcess, UInt16
    ) {
        var arguments = [
            "s_server", "-accept", "127.0.0.1:0", "-naccept", "1", "-www",
            "-cert", directory + "/cert-chain.pem", "-key", directory + "/key.pem", "-CAfile", roots,
        ]
        if strict { arguments += ["-Verify", "1", "-verify_return_error"] }
        let server = try BackgroundProcess("/usr/bin/env", ["openssl"] + arguments)
        let line = try await server.waitForLine(containing: "ACCEPT", timeout: .seconds(30))
        guard let port = line.split(separator: ":").last.flatMap({ UInt16($0) }) else {
            throw HarnessTestError("cannot read the port from s_server's \"\(line)\"")
        }
        return (server, port)
    }

    /// Runs `openssl s_client` against `port`, presenting `directory`'s certificate unless it is `nil`.
    private func runClient(port: UInt16, directory: String?, trusting roots: String) async throws -> Command.Result {
        var arguments = [
            "s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", roots, "-verify_return_error", "-ign_eof",
        ]
        if let directory { arguments += ["-cert", directory + "/cert-chain.pem", "-key", directory + "/key.pem"] }
        return try await Command.run("openssl", arguments)
    }

    @Test("The harness client completes mTLS with openssl s_server in STRICT mode (-Verify 1)")
    func clientAgainstStrictServer() async throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        let api = try mesh.workload("api")
        let (server, port) = try await startServer(web, trusting: web + "/root-cert.pem")
        defer { server.terminate() }
        let report = ClientHandshake(
            host: "127.0.0.1", port: port, certificates: api, expectedServerID: try mesh.id("web")
        ).run()
        #expect(report.outcome == .succeeded, "\(report.renderText())\n\(server.errorOutput)")
        #expect(report.client.verifiedPeerID == (try mesh.id("web")).uri)
        #expect(report.server.spiffeID == (try mesh.id("web")).uri)
        #expect(try await server.stop() == 0)
    }

    @Test("The harness client explains an s_server whose certificate comes from another CA")
    func clientRefusesForeignServer() async throws {
        let mesh = try TestMesh()
        let other = try TestMesh()
        defer {
            mesh.remove()
            other.remove()
        }
        let web = try other.workload("web")
        let api = try mesh.workload("api")
        let (server, port) = try await startServer(web, trusting: web + "/root-cert.pem", strict: false)
        defer { server.terminate() }
        let report = ClientHandshake(host: "127.0.0.1", port: port, certificates: api).run()
        let failure = try #require(report.failure)
        #expect(failure.code == .untrustedChain)
        #expect(failure.cause.contains("Same name, different key"))
    }

    @Test("A STRICT s_server that does not trust the client's CA is explained from its alert")
    func serverRefusesClient() async throws {
        let mesh = try TestMesh()
        let other = try TestMesh()
        defer {
            mesh.remove()
            other.remove()
        }
        let web = try mesh.workload("web")
        let api = try mesh.workload("api")
        // The server trusts only another CA's root.
        try other.root.pem.write(toFile: mesh.directory.file("other-root.pem"), atomically: true, encoding: .utf8)
        let (server, port) = try await startServer(web, trusting: mesh.directory.file("other-root.pem"))
        defer { server.terminate() }
        let report = ClientHandshake(host: "127.0.0.1", port: port, certificates: api).run()
        let failure = try #require(report.failure, "\(report.renderText())")
        #expect(failure.code == .certificateRejectedByPeer)
        #expect(failure.detectedBy == .client)
        #expect(
            failure.cause.contains(
                "The server refused the client's certificate: it does not trust the CA that issued it (alert unknown_ca"
            ))
        #expect(failure.rawReason.contains("alert unknown ca"))
    }

    @Test("openssl s_client with a certificate completes mTLS with the STRICT harness server")
    func strictServerAcceptsClient() async throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        let api = try mesh.workload("api")
        let listener = try ListenerThread(certificates: web, expectedClientID: try mesh.id("api"))
        let client = try await runClient(port: listener.port, directory: api, trusting: api + "/root-cert.pem")
        let report = try await listener.report()
        #expect(report.outcome == .succeeded, "\(report.renderText())\n\(client.stderr)")
        #expect(report.server.verifiedPeerID == (try mesh.id("api")).uri)
        #expect(client.stdout.contains("Verify return code: 0 (ok)"))
        #expect(client.stdout.contains("meshca handshake: mTLS ok, you are spiffe://cluster.local/ns/default/sa/api"))
    }

    @Test("openssl s_client without a certificate is refused by the STRICT harness server, and PERMISSIVE accepts it")
    func strictServerRefusesAnonymousClient() async throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        let strict = try ListenerThread(certificates: web)
        let refused = try await runClient(port: strict.port, directory: nil, trusting: web + "/root-cert.pem")
        let failure = try #require(try await strict.report().failure)
        #expect(failure.code == .clientCertificateRequired)
        #expect(failure.detectedBy == .server)
        #expect(refused.status != 0 || refused.stderr.contains("alert"))

        let permissive = try ListenerThread(certificates: web, mode: .permissive)
        _ = try await runClient(port: permissive.port, directory: nil, trusting: web + "/root-cert.pem")
        let accepted = try await permissive.report()
        #expect(accepted.outcome == .succeeded, "\(accepted.renderText())")
        #expect(accepted.notes.contains { $0.hasPrefix("PERMISSIVE: accepted a TLS client without a certificate") })
    }

    @Test("openssl s_client with an expired certificate is refused by the harness server, with the time")
    func serverRefusesExpiredClient() async throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        let api = try mesh.workload("api", issuedAt: Date().addingTimeInterval(-2 * 86_400), ttl: .seconds(3600))
        let listener = try ListenerThread(certificates: web)
        _ = try await runClient(port: listener.port, directory: api, trusting: api + "/root-cert.pem")
        let failure = try #require(try await listener.report().failure)
        #expect(failure.code == .certificateExpired)
        #expect(failure.cause.contains("The client's leaf spiffe://cluster.local/ns/default/sa/api expired at"))
    }

    @Test("openssl s_client from another trust domain is refused by the harness server's SPIFFE check")
    func serverRefusesForeignTrustDomain() async throws {
        let mesh = try TestMesh()
        let other = try TestMesh(trustDomain: "other.org")
        defer {
            mesh.remove()
            other.remove()
        }
        let web = try mesh.workload("web", trusting: [mesh.root, other.root])
        let api = try other.workload("api", trusting: [mesh.root])
        let listener = try ListenerThread(certificates: web)
        _ = try await runClient(port: listener.port, directory: api, trusting: api + "/root-cert.pem")
        let failure = try #require(try await listener.report().failure)
        #expect(failure.code == .wrongTrustDomain)
        #expect(failure.detectedBy == .server)
        #expect(
            failure.cause.contains(
                "The client is spiffe://other.org/ns/default/sa/api, in trust domain other.org, but the server accepts only trust domain cluster.local"
            ))
    }
}

import Foundation
import MeshCATestSupport
import Testing

/// `meshca issue --server A --server B`: the built binary against in-process daemons and closed ports. No answer
/// from A moves it to B; an answer from A (a refusal included) is final; with no answer anywhere, it names each.
@Suite("meshca issue --server with several addresses")
struct IssueFailoverTests {
    @Test("With the first address a closed port, the certificate comes from the second, and stderr says so")
    func closedFirstAddress() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        let (daemon, token) = try await InProcessDaemon.start()
        defer { Task { await daemon.stop() } }
        try ws.dir.write("was.token", token)
        let closed = try ClosedPort()

        let issued = try await ws.meshca(
            "issue", "--sa", "was", "--server", "127.0.0.1:\(closed.port)", "--server", daemon.grpcAddress,
            "--token-file", "was.token", "--out", "was")
        expectSuccess(issued)
        #expect(issued.stdout.contains("issued spiffe://cluster.local/ns/default/sa/was"))
        #expect(
            issued.stderr.contains(
                "no answer from the CA at 127.0.0.1:\(closed.port): connection refused: nothing listens on that port; asking \(daemon.grpcAddress)"
            ),
            "\(issued.stderr)")
        #expect(FileManager.default.fileExists(atPath: ws.dir.file("was/key.pem")))
        withExtendedLifetime(closed) {}
    }

    @Test(
        "An address whose certificate does not verify (another CA) is passed over, the token unsent; the next is verified the same way"
    )
    func foreignCAFirst() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        let (foreign, _) = try await InProcessDaemon.start()
        defer { Task { await foreign.stop() } }
        let (daemon, token) = try await InProcessDaemon.start()
        defer { Task { await daemon.stop() } }
        try ws.dir.write("was.token", token)

        let issued = try await ws.meshca(
            "issue", "--sa", "was", "--server", foreign.grpcAddress, "--server", daemon.grpcAddress, "--token-file",
            "was.token",
            "--out", "was")
        expectSuccess(issued)
        #expect(
            issued.stderr.contains(
                "no answer from the CA at \(foreign.grpcAddress): it accepted the connection but no TLS session with a CA came of it"
            ),
            "\(issued.stderr)")
        let roots = try ws.dir.read("was/root-cert.pem").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(
            roots
                == (try String(contentsOfFile: daemon.stateDir + "/root-cert.pem", encoding: .utf8)).trimmingCharacters(
                    in: .whitespacesAndNewlines))
        // The handshake failed on the client's check, before any request: the foreign CA never saw the token.
        #expect(
            !foreign.log.all.contains { $0.contains("authentication failed") || $0.hasPrefix("info issued ") },
            "\(foreign.log.all)")
    }

    @Test("A host name is asked at the address it resolves to, and the CA's certificate is checked against the name")
    func hostName() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        // The daemon listens on 127.0.0.1 and its serving certificate names localhost.
        let (daemon, token) = try await InProcessDaemon.start()
        defer { Task { await daemon.stop() } }
        try ws.dir.write("was.token", token)

        let issued = try await ws.meshca(
            "issue", "--sa", "was", "--server", "localhost:\(daemon.grpcPort)", "--token-file", "was.token", "--out",
            "was")
        expectSuccess(issued)
        #expect(FileManager.default.fileExists(atPath: ws.dir.file("was/cert-chain.pem")))
    }

    @Test("A refusal from the first address (PERMISSION_DENIED) is the answer: the second is not asked")
    func refusalIsNotRetried() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        let (daemon, token) = try await InProcessDaemon.start()
        // A replica on the same CA and ledger would answer the same; what matters is that it is never asked.
        let replica: InProcessDaemon
        do {
            replica = try await daemon.replica()
        } catch {
            await daemon.stop()
            throw error
        }
        defer {
            Task {
                await replica.stop()
                await daemon.stop()  // the shared state directory goes last
            }
        }
        try ws.dir.write("was.token", token)

        // The token is for sa "was": asking for "web" with it is refused.
        let refused = try await ws.meshca(
            "issue", "--sa", "web", "--server", daemon.grpcAddress, "--server", replica.grpcAddress,
            "--token-file", "was.token", "--out", "web")
        #expect(refused.status == 1)
        #expect(
            refused.stderr.contains("The CA at \(daemon.grpcAddress) answered permissionDenied"), "\(refused.stderr)")
        #expect(!refused.stderr.contains("asking"), "\(refused.stderr)")
        _ = try await daemon.log.waitForLine(containing: "refused")
        #expect(
            !replica.log.all.contains { $0.contains("refused") || $0.contains("authentication failed") },
            "\(replica.log.all)")
        #expect(!FileManager.default.fileExists(atPath: ws.dir.file("web/key.pem")))
    }

    @Test("With no address answering, the error names each address and what happened there, and what to check")
    func allAddressesDown() async throws {
        let ws = try Workspace()
        defer { ws.remove() }
        expectSuccess(try await ws.meshca("init"))
        let token = try await ws.meshca("token", "create", "--sa", "web").stdout.trimmingCharacters(
            in: .whitespacesAndNewlines)
        let (a, b) = (try ClosedPort(), try ClosedPort())

        let failed = try await ws.meshca(
            "issue", "--sa", "web", "--server", "127.0.0.1:\(a.port)", "--server", "127.0.0.1:\(b.port)", "--token",
            token, "--out", "web")
        #expect(failed.status == 1)
        #expect(
            failed.stderr.contains(
                """
                Cannot reach a CA at any of its 2 addresses:
                  - 127.0.0.1:\(a.port): connection refused: nothing listens on that port
                  - 127.0.0.1:\(b.port): connection refused: nothing listens on that port
                Is `meshca serve` running at each address? Its gRPC port is serve's --listen (default 127.0.0.1:15012).
                """), "\(failed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: ws.dir.file("web/key.pem")))
        withExtendedLifetime((a, b)) {}

        let bad = try await ws.meshca(
            "issue", "--sa", "web", "--server", "127.0.0.1:\(a.port)", "--server", "ca-2", "--token", token)
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("--server \"ca-2\" is not HOST:PORT"), "\(bad.stderr)")
    }
}

import Foundation
import GRPCCore
import MeshCACore
import MeshCADaemon
import MeshCAIO
import MeshCATestSupport
import MeshCATransport
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Issue 12, defect 4: connections that never finish their handshake, or sit idle, are closed; at the connection
/// cap the listeners shed them (with a log line) so that legitimate calls and `/healthz` still get through.
@Suite("Handshake and idle timeouts and the connection cap, on the gRPC and monitoring ports", .timeLimit(.minutes(3)))
struct ConnectionLimitTests {
    @Test("A connection that sends nothing, or half a TLS ClientHello, is closed after handshake-timeout, and logged")
    func handshakeTimeout() async throws {
        let (daemon, _) = try await InProcessDaemon.start { $0.handshakeTimeout = .seconds(1) }
        let silent = try RawConnection(port: daemon.grpcPort)
        let half = try RawConnection(port: daemon.grpcPort)
        // A TLS record header announcing a 200-byte handshake message, then only part of it.
        try half.send([0x16, 0x03, 0x01, 0x00, 0xC8, 0x01, 0x00, 0x00, 0xC4, 0x03, 0x03])
        let slowRequest = try RawConnection(port: daemon.monitoringPort)
        try slowRequest.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")

        #expect(await silent.waitForClose(timeout: .seconds(15)))
        #expect(await half.waitForClose(timeout: .seconds(15)))
        #expect(await slowRequest.waitForClose(timeout: .seconds(15)))
        _ = try await daemon.log.waitForLine(containing: "that did not finish its TLS handshake within 1.0 seconds")
        _ = try await daemon.log.waitForLine(containing: "that sent no complete request within 1.0 seconds")
        // A real client is unaffected. (On a machine busy enough that its own handshake takes over the 1 s, it is
        // closed too and retries, as Istio's agent would.)
        let headers = try await bearer(daemon)
        _ = try await RPCResult.retryingUnavailable {
            try await daemon.client().createCertificate(csrPEM: try workloadCSRPEM(), ttl: nil, headers: headers)
        }
        await daemon.stop()
    }

    @Test("At max-connections, connections that never handshake are shed: a real call and /healthz still succeed, and the log says so")
    func connectionCap() async throws {
        let (daemon, token) = try await InProcessDaemon.start {
            $0.maxConnections = 8
            $0.handshakeTimeout = .seconds(120)
        }
        let grpcFlood = try (0..<30).map { _ in try RawConnection(port: daemon.grpcPort) }
        let monitoringFlood = try (0..<30).map { _ in try RawConnection(port: daemon.monitoringPort) }
        // The listeners take the flood in on several event loops; once 22 of each 30 are shed, all 30 were taken in
        // and 8 are left, long before their handshake timeout. (A real client that connected while the flood was
        // still being taken in could be shed too: it is new and has not finished its handshake.)
        try await Wait.until("22 of the 30 half-open gRPC connections were closed") {
            grpcFlood.filter(\.isClosed).count >= 22
        }
        try await Wait.until("22 of the 30 idle monitoring connections were closed") {
            monitoringFlood.filter(\.isClosed).count >= 22
        }

        let chain = try await daemon.client().createCertificate(
            csrPEM: try workloadCSRPEM(), ttl: nil, headers: ["authorization": "Bearer \(token)"])
        #expect(chain.count >= 2)
        let health = try RawHTTP.send("GET /healthz HTTP/1.1", port: daemon.monitoringPort)
        #expect(health.status == 200)
        let grpcLine = try await daemon.log.waitForLine(containing: "connection limit reached on the gRPC listener")
        #expect(grpcLine.contains("(8 open)") && grpcLine.contains("raise max-connections"), "\(grpcLine)")
        _ = try await daemon.log.waitForLine(containing: "connection limit reached on the monitoring listener")
        // One line per 10 seconds, not one per shed connection.
        #expect(daemon.log.all.filter { $0.contains("connection limit reached on the gRPC listener") }.count == 1)
        await daemon.stop()
    }

    @Test("An established TLS connection with no request is closed after idle-timeout, even when the client never answers the GOAWAY")
    func idleTimeout() async throws {
        let (daemon, _) = try await InProcessDaemon.start { $0.idleTimeout = .seconds(1) }
        // openssl s_client finishes the handshake, then sends nothing (and never answers the server's GOAWAY PING).
        let client = try BackgroundProcess(
            "/usr/bin/env",
            ["openssl", "s_client", "-connect", daemon.grpcAddress, "-alpn", "h2", "-CAfile", daemon.stateDir + "/root-cert.pem", "-ign_eof"])
        _ = try await client.waitForLine(containing: "Verify return code", timeout: .seconds(30))
        try? await Wait.until("the server closes the idle connection", timeout: .seconds(20)) { !client.isRunning }
        #expect(!client.isRunning, "the server kept the idle connection open")
        client.terminate()

        // The monitoring port: a keep-alive connection idle after its response.
        let keepAlive = try RawConnection(port: daemon.monitoringPort)
        try keepAlive.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        #expect(await keepAlive.waitForClose(timeout: .seconds(15)))
        await daemon.stop()
    }

    @Test("handshake-timeout, idle-timeout and max-connections load from flags, and bad values are named")
    func configuration() throws {
        let loaded = try DaemonConfiguration.load(
            flags: ["handshake-timeout": "3s", "idle-timeout": "2m", "max-connections": "500"], environment: [:], configFile: nil)
        #expect(loaded.handshakeTimeout == .seconds(3))
        #expect(loaded.idleTimeout == .seconds(120))
        #expect(loaded.maxConnections == 500)
        let automatic = try DaemonConfiguration.load(flags: ["max-connections": "auto"], environment: [:], configFile: nil)
        #expect(automatic.maxConnections == nil)
        #expect(automatic.handshakeTimeout == .seconds(10) && automatic.idleTimeout == .seconds(300))

        let error = #expect(throws: ConfigurationError.self) {
            try DaemonConfiguration.load(
                flags: ["handshake-timeout": "0s", "max-connections": "0"], environment: ["MESHCA_IDLE_TIMEOUT": "soon"], configFile: nil)
        }
        let problems = error?.problems ?? []
        #expect(problems.count == 3, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("handshake-timeout (flag --handshake-timeout) = \"0s\"") })
        #expect(problems.contains { $0.hasPrefix("idle-timeout (environment MESHCA_IDLE_TIMEOUT) = \"soon\"") })
        #expect(problems.contains { $0.hasPrefix("max-connections (flag --max-connections) = \"0\": it is below 1") })
    }

    @Test("The soft open-file limit is raised to the hard limit, and the automatic cap fits in it")
    func openFileLimit() throws {
        var limit = rlimit()
        #if canImport(Glibc)
            getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        #else
            getrlimit(RLIMIT_NOFILE, &limit)
        #endif
        let raised = OpenFileLimit.raiseToHardLimit()
        #expect(raised.after >= raised.before)
        #expect(OpenFileLimit.current == raised.after)
        #if os(Linux)
            #expect(UInt64(raised.after) == UInt64(limit.rlim_max))
        #endif
        #expect(ConnectionLimits.automaticMaxConnections(openFileLimit: 1024) == 384)
        #expect(ConnectionLimits.automaticMaxConnections(openFileLimit: 1_048_576) == 4096)
        #expect(ConnectionLimits.automaticMaxConnections(openFileLimit: 200) == 16)
    }
}

/// `authorization: Bearer <a fresh single-use token>` for `daemon`'s CA.
private func bearer(_ daemon: InProcessDaemon) async throws -> Metadata {
    let result = try await Command.meshca(["token", "create", "--sa", "was", "--state-dir", daemon.stateDir])
    guard result.status == 0 else { throw BackgroundProcessError("token create failed: \(result.stderr)") }
    return ["authorization": "Bearer \(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))"]
}

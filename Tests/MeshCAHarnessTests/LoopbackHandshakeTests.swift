import Foundation
import MeshCACore
import MeshCAHarness
import Testing

/// Both sides in this process over loopback: successes, STRICT and PERMISSIVE, plaintext mismatches and
/// SPIFFE ID expectations.
@Suite("Loopback handshakes")
struct LoopbackHandshakeTests {
    @Test("Two workloads of one CA complete mTLS and each verifies the other's SPIFFE ID")
    func succeeds() throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        let api = try mesh.workload("api")
        let report = LoopbackHandshake(server: .credentials(directory: web), client: .credentials(directory: api)).run()
        #expect(report.outcome == .succeeded, "\(report.renderText())")
        #expect(report.failure == nil)
        #expect(report.tlsVersion == "TLSv1.3")
        #expect(report.cipher?.hasPrefix("TLS_") == true)
        #expect(report.server.verifiedPeerID == (try mesh.id("api")).uri)
        #expect(report.client.verifiedPeerID == (try mesh.id("web")).uri)
        #expect(report.server.spiffeID == (try mesh.id("web")).uri)
        #expect(report.client.peerVerification == "ok")
        // The chain each side saw: the peer's leaf then its root (cert-chain.pem carries the root too).
        #expect(report.client.peerChain.count == 2)
        #expect(report.client.peerChain.first?.spiffeID == (try mesh.id("web")).uri)
        let leafLeft = try #require(report.server.presentedChain.first?.secondsLeft)
        #expect(leafLeft > 86_000 && leafLeft <= 86_400)
        #expect(report.library.hasPrefix("OpenSSL 3."))
        #expect(report.renderText().contains("verified the client as spiffe://cluster.local/ns/default/sa/api"))
    }

    @Test("RSA and ECDSA workloads complete mTLS with each other")
    func mixedKeyTypes() throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web", keyType: .rsa2048)
        let api = try mesh.workload("api", keyType: .ecP384)
        let report = LoopbackHandshake(server: .credentials(directory: web), client: .credentials(directory: api)).run()
        #expect(report.outcome == .succeeded, "\(report.renderText())")
    }

    @Test("A STRICT server refuses a client that presents no certificate, and says so")
    func strictRequiresClientCertificate() throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        let report = LoopbackHandshake(server: .credentials(directory: web), client: .noCertificate, mode: .strict)
            .run()
        let failure = try #require(report.failure)
        #expect(failure.code == .clientCertificateRequired)
        #expect(failure.detectedBy == .server)
        #expect(failure.cause.contains("STRICT and requires a client certificate, but the client presented none"))
        #expect(failure.fix.contains("PERMISSIVE"))
        #expect(failure.rawReason.contains("peer did not return a certificate"))
        // The client verified the server before it was refused.
        #expect(report.client.verifiedPeerID == (try mesh.id("web")).uri)
    }

    @Test("A PERMISSIVE server accepts a TLS client without a certificate and notes that")
    func permissiveAcceptsAnonymousTLS() throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        let report = LoopbackHandshake(server: .credentials(directory: web), client: .noCertificate, mode: .permissive)
            .run()
        #expect(report.outcome == .succeeded, "\(report.renderText())")
        #expect(report.server.verifiedPeerID == nil)
        #expect(report.notes.contains { $0.hasPrefix("PERMISSIVE: accepted a TLS client without a certificate") })
    }

    @Test("A client sending plaintext to a STRICT server is explained as plaintext-to-TLS")
    func plaintextToStrict() throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        let report = LoopbackHandshake(server: .credentials(directory: web), client: .plaintext, mode: .strict).run()
        let failure = try #require(report.failure)
        #expect(failure.code == .plaintextToTLSServer)
        #expect(failure.cause.contains("\"GET / HTTP/1.1"))
        #expect(failure.cause.contains("STRICT"))
        #expect(failure.rawReason.contains("http request"))
    }

    @Test("A PERMISSIVE server accepts a plaintext client and says so")
    func permissiveAcceptsPlaintext() throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        let report = LoopbackHandshake(server: .credentials(directory: web), client: .plaintext, mode: .permissive)
            .run()
        #expect(report.outcome == .acceptedPlaintext, "\(report.renderText())")
        #expect(report.isSuccess)
        #expect(report.notes.first?.hasPrefix("PERMISSIVE: accepted a plaintext connection") == true)
        #expect(report.renderText().contains("PERMISSIVE: accepted a plaintext connection"))
    }

    @Test("A TLS client meeting a plaintext server is explained as TLS-to-plaintext")
    func tlsToPlaintextServer() throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let api = try mesh.workload("api")
        let report = LoopbackHandshake(server: .plaintext, client: .credentials(directory: api)).run()
        let failure = try #require(report.failure)
        #expect(failure.code == .tlsToPlaintextServer)
        #expect(failure.detectedBy == .client)
        #expect(failure.cause.contains("does not speak TLS on this port"))
        #expect(failure.rawReason.contains("wrong version number"))
    }

    @Test("The client refuses a server whose SPIFFE ID is not the expected one")
    func unexpectedServerID() throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        let api = try mesh.workload("api")
        let report = LoopbackHandshake(
            server: .credentials(directory: web), client: .credentials(directory: api),
            expectedServerID: try mesh.id("db")
        ).run()
        let failure = try #require(report.failure)
        #expect(failure.code == .unexpectedPeerID)
        #expect(failure.detectedBy == .client)
        #expect(
            failure.cause
                == "The server is spiffe://cluster.local/ns/default/sa/web, but the client expects spiffe://cluster.local/ns/default/sa/db (--expect-server-id)."
        )
        #expect(report.client.verifiedPeerID == nil)
    }

    @Test("The server refuses a client whose SPIFFE ID is not the expected one")
    func unexpectedClientID() throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        let api = try mesh.workload("api")
        let report = LoopbackHandshake(
            server: .credentials(directory: web), client: .credentials(directory: api),
            expectedServerID: try mesh.id("web"), expectedClientID: try mesh.id("frontend")
        ).run()
        let failure = try #require(report.failure)
        #expect(failure.code == .unexpectedPeerID)
        #expect(failure.detectedBy == .server)
        #expect(failure.cause.contains("expects spiffe://cluster.local/ns/default/sa/frontend (--expect-client-id)"))
    }

    @Test("Matching expectations on both sides succeed")
    func expectationsHold() throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        let api = try mesh.workload("api")
        let report = LoopbackHandshake(
            server: .credentials(directory: web), client: .credentials(directory: api),
            expectedServerID: try mesh.id("web"), expectedClientID: try mesh.id("api")
        ).run()
        #expect(report.outcome == .succeeded, "\(report.renderText())")
    }
}

/// The listener reads the files for every connection, so a renewal (the files replaced underneath it,
/// as `meshca agent` does) is picked up by the next handshake without a restart.
@Suite("Renewal under a listener", .timeLimit(.minutes(1)))
struct RenewalTests {
    @Test("A new connection presents the renewed certificate, and both handshakes succeed")
    func picksUpRenewedFiles() async throws {
        let mesh = try TestMesh()
        defer { mesh.remove() }
        let web = try mesh.workload("web")
        let api = try mesh.workload("api")
        let listener = try ListenerThread(certificates: web, connections: 2)
        let before = ClientHandshake(host: "127.0.0.1", port: listener.port, certificates: api).run()
        try mesh.workload("web")  // renewal: new key and certificate, written atomically into the same directory
        let after = ClientHandshake(host: "127.0.0.1", port: listener.port, certificates: api).run()
        let served = try await listener.allReports()
        #expect(before.outcome == .succeeded, "\(before.renderText())")
        #expect(after.outcome == .succeeded, "\(after.renderText())")
        #expect(served.map(\.outcome) == [.succeeded, .succeeded])
        let first = try #require(before.server.presentedChain.first)
        let second = try #require(after.server.presentedChain.first)
        #expect(first.serial != second.serial)
        #expect(second.spiffeID == (try mesh.id("web")).uri)
    }
}

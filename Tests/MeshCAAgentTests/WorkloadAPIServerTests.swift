import Foundation
import GRPCCore
import Logging
import MeshCAAgent
import MeshCACore
import MeshCATestSupport
import MeshCATransport
import ServiceLifecycle
import Testing
import X509

@Suite("Workload API streams over a real Unix socket", .timeLimit(.minutes(2)))
struct WorkloadAPIServerTests {
    @Test("FetchX509SVID sends the SPIFFE ID, a DER chain that parses, a PKCS#8 key matching the leaf, and the bundle")
    func fetchesSVID() async throws {
        let fixture = try WorkloadAPIFixture()
        let published = try fixture.publishNew()
        try await fixture.withServer { _, _ in
            let response = try #require(try await fixture.firstSVIDResponse())
            #expect(response.svids.count == 1)
            #expect(response.federatedBundles.isEmpty)
            let svid = try #require(response.svids.first)
            #expect(svid.spiffeID == "spiffe://cluster.local/ns/default/sa/was")
            let chain = try WorkloadAPIFixture.certificates(svid.x509Svid)
            #expect(chain == published.chain)
            #expect(chain.first?.uriSANs == [svid.spiffeID])
            let key = try Certificate.PrivateKey(derBytes: Array(svid.x509SvidKey))
            #expect(key.publicKey == published.leaf.publicKey)
            let bundle = try WorkloadAPIFixture.certificates(svid.bundle)
            #expect(bundle == published.bundle)
            #expect(bundle.count == 1 && bundle[0].subject == published.leaf.issuer)
        }
    }

    @Test("An open FetchX509SVID stream receives a second message with the new serial after a publish")
    func streamsRotation() async throws {
        let fixture = try WorkloadAPIFixture()
        let original = try fixture.publishNew()
        try await fixture.withServer { _, _ in
            try await fixture.withClient { api in
                try await api.fetchX509SVID(X509SVIDRequest(), metadata: WorkloadAPIFixture.securityHeader) {
                    response in
                    var messages = response.messages.makeAsyncIterator()
                    let first = try #require(try await messages.next())
                    let firstLeaf = try #require(try WorkloadAPIFixture.certificates(first.svids[0].x509Svid).first)
                    #expect(firstLeaf.serialNumber == original.leaf.serialNumber)

                    let renewed = try fixture.publishNew()
                    let second = try #require(try await messages.next())
                    let secondLeaf = try #require(try WorkloadAPIFixture.certificates(second.svids[0].x509Svid).first)
                    #expect(secondLeaf.serialNumber == renewed.leaf.serialNumber)
                    #expect(secondLeaf.serialNumber != firstLeaf.serialNumber)
                    let key = try Certificate.PrivateKey(derBytes: Array(second.svids[0].x509SvidKey))
                    #expect(key.publicKey == secondLeaf.publicKey)
                }
            }
        }
    }

    @Test("FetchX509Bundles keys the roots spiffe://cluster.local and sends again only when the bundle changes")
    func streamsBundles() async throws {
        let fixture = try WorkloadAPIFixture()
        let original = try fixture.publishNew()
        try await fixture.withServer { _, _ in
            try await fixture.withClient { api in
                try await api.fetchX509Bundles(X509BundlesRequest(), metadata: WorkloadAPIFixture.securityHeader) {
                    response in
                    var messages = response.messages.makeAsyncIterator()
                    let first = try #require(try await messages.next())
                    #expect(Array(first.bundles.keys) == ["spiffe://cluster.local"])
                    #expect(
                        try WorkloadAPIFixture.certificates(first.bundles["spiffe://cluster.local"] ?? Data())
                            == original.bundle)

                    // A renewal under the same root changes nothing a bundle reader sees: no message. A root
                    // rotation then adds a root; the next message must be that one, not a repeat.
                    try fixture.publishNew()
                    let rotatedRoot = try TestPKI(createdAt: Date(), rootTTL: .seconds(365 * 86_400)).root
                    let renewed = try fixture.issue()
                    fixture.broadcast.publish(
                        WorkloadCredentials(
                            spiffeID: renewed.spiffeID,
                            chain: renewed.chain,
                            privateKeyPKCS8: renewed.privateKeyPKCS8,
                            privateKeyPEM: renewed.privateKeyPEM,
                            bundle: renewed.bundle + [rotatedRoot]
                        )
                    )
                    let second = try #require(try await messages.next())
                    let roots = try WorkloadAPIFixture.certificates(second.bundles["spiffe://cluster.local"] ?? Data())
                    #expect(roots == original.bundle + [rotatedRoot])
                }
            }
        }
    }

    @Test("Graceful shutdown ends an open stream with UNAVAILABLE, not OK, and removes the socket")
    func shutdownEndsStreams() async throws {
        let fixture = try WorkloadAPIFixture()
        try fixture.publishNew()
        let code = try await fixture.withServer { _, group in
            try await fixture.withClient { api in
                try await api.fetchX509SVID(X509SVIDRequest(), metadata: WorkloadAPIFixture.securityHeader) {
                    response in
                    var messages = response.messages.makeAsyncIterator()
                    _ = try #require(try await messages.next())
                    await group.triggerGracefulShutdown()
                    return await RPCResult.code {
                        while try await messages.next() != nil {}
                    }
                }
            }
        }
        #expect(code == .unavailable)
        #expect(!FileManager.default.fileExists(atPath: fixture.socketPath))
    }

    @Test("The socket gets mode 0666 in a directory created 0755, and is gone after shutdown")
    func socketFile() async throws {
        let fixture = try WorkloadAPIFixture()
        let directory = (fixture.socketPath as NSString).deletingLastPathComponent
        #expect(!FileManager.default.fileExists(atPath: directory))
        try await fixture.withServer { server, _ in
            #expect(server.socketPath == fixture.socketPath)
            let socket = WorkloadAPIFixture.fileInfo(fixture.socketPath)
            #expect(socket?.type == .typeSocket)
            #expect(socket?.permissions == 0o666)
            #expect(WorkloadAPIFixture.fileInfo(directory)?.permissions == 0o755)
        }
        #expect(!FileManager.default.fileExists(atPath: fixture.socketPath))
    }

    @Test("A stale socket left by a crashed agent is replaced")
    func replacesStaleSocket() async throws {
        let fixture = try WorkloadAPIFixture()
        try fixture.publishNew()
        let directory = (fixture.socketPath as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // Python binds and exits without unlinking, as a killed process leaves its socket behind.
        let stale = try await Command.run(
            "python3",
            ["-c", "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", fixture.socketPath]
        )
        #expect(stale.status == 0, "\(stale.stderr)")
        #expect(WorkloadAPIFixture.fileInfo(fixture.socketPath)?.type == .typeSocket)
        let response = try await fixture.withServer { _, _ in try await fixture.firstSVIDResponse() }
        #expect(response?.svids.count == 1)
        #expect(!FileManager.default.fileExists(atPath: fixture.socketPath))
    }

    @Test("A regular file at the socket path is left alone and run() says what to do")
    func refusesNonSocket() async throws {
        let fixture = try WorkloadAPIFixture()
        let directory = (fixture.socketPath as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try "keep me".write(toFile: fixture.socketPath, atomically: false, encoding: .utf8)
        let server = WorkloadAPIServer(
            socketPath: fixture.socketPath,
            credentials: fixture.broadcast,
            allowedUIDs: [WorkloadAPIFixture.ownUID],
            logger: .init(label: "test")
        )
        let error = await #expect(throws: AgentError.self) { try await server.run() }
        #expect(error?.code == .badSocketPath)
        #expect(error?.message.contains("is not a socket") == true)
        #expect(try String(contentsOfFile: fixture.socketPath, encoding: .utf8) == "keep me")
    }
}

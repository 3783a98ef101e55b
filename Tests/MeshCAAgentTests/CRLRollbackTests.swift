import Foundation
import Logging
@testable import MeshCAAgent
import MeshCACore
import MeshCAIO
import MeshCATestSupport
import ServiceLifecycle
import Synchronization
import Testing
import X509

/// The agent's CRL fetch keeps the newest CRL it has seen (issue 12, defect 5): an older or expired CRL, even
/// one the CA signed, is refused, and bodies are capped. CRLs are served over real HTTP from this process.
@Suite("meshca agent refuses older, expired and oversized CRLs", .timeLimit(.minutes(2)))
struct CRLRollbackTests {
    /// What the in-process HTTP server answers at `/crl`.
    final class Served: Sendable {
        let body = Mutex<[UInt8]>([])
        func set(_ bytes: [UInt8]) { body.withLock { $0 = bytes } }
    }

    let fixture: WorkloadAPIFixture
    let revoked = Certificate.SerialNumber(bytes: [0x0a, 0x0b, 0x0c])

    init() throws {
        fixture = try WorkloadAPIFixture()
        try fixture.publishNew()
    }

    /// A CRL from the fixture's CA revoking ``revoked`` (or nothing), valid from `thisUpdate` for `validity` seconds.
    func crl(
        number: Int64, revoking: Bool = true, thisUpdate: Date = Date(), validity: TimeInterval = 3600
    ) throws -> CertificateRevocationList {
        try CertificateRevocationList.sign(
            entries: revoking ? [.init(serialNumber: revoked, revocationDate: thisUpdate, reason: .keyCompromise)] : [],
            issuer: fixture.pki.signer, number: number, thisUpdate: thisUpdate,
            nextUpdate: thisUpdate.addingTimeInterval(validity))
    }

    /// Runs an HTTP server on 127.0.0.1 answering `routes`, hands its port to `body`, then stops it.
    func withHTTPServer<Result: Sendable>(
        _ routes: [String: MonitoringRoute], _ body: (Int) async throws -> Result
    ) async throws -> Result {
        let logger = Logger(label: "meshca.test.crl-server", factory: { _ in SwiftLogNoOpLogHandler() })
        let server = MonitoringServer(
            host: "127.0.0.1", port: 0, routes: routes, setting: "test", bindHint: "", logger: logger)
        let group = ServiceGroup(configuration: .init(services: [server], logger: logger))
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                let result = try await body(try await server.boundAddress.port)
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
                return result
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
        }
    }

    /// Serves `served` at `/crl` and runs `body` with a fetcher for it writing to `out`.
    func withFetcher<Result: Sendable>(
        _ served: Served, out: String, status: AgentStatusBox, _ body: (CRLFetcher) async throws -> Result
    ) async throws -> Result {
        try await withHTTPServer(["/crl": { .ok(bytes: served.body.withLock { $0 }, contentType: "application/pkix-crl") }]) {
            port in
            let fetcher = CRLFetcher(
                url: URL(string: "http://127.0.0.1:\(port)/crl")!, directory: out, interval: .seconds(3600),
                broadcast: fixture.broadcast, status: status, logger: Logger(label: "meshca.test.crl"))
            return try await body(fetcher)
        }
    }

    /// The CRL numbers and revoked serials in `out/crl.pem`.
    func onDisk(_ out: String) throws -> (numbers: [Int64], serials: [Certificate.SerialNumber]) {
        let crls = try CertificateRevocationList.all(in: Array(try Data(contentsOf: URL(fileURLWithPath: out + "/crl.pem"))))
        return (crls.map(\.number), crls.flatMap { $0.entries.map(\.serialNumber) })
    }

    @Test("A newer CRL, then an older one signed by the same CA: the older is refused and the newer kept, also after a restart")
    func olderCRLRefused() async throws {
        let out = fixture.directory.file("out")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let served = Served()
        let status = AgentStatusBox(spiffeID: WorkloadAPIFixture.identity.uri)
        let newer = try crl(number: 20)
        let older = try crl(number: 10, revoking: false)
        try await withFetcher(served, out: out, status: status) { fetcher in
            served.set(newer.derBytes)
            #expect(await fetcher.fetch(at: Date()))
            #expect(try onDisk(out).numbers == [20])
            #expect(status.current.crlNumber == 20)
            #expect(status.current.crlNextUpdate == newer.nextUpdate)
            #expect(status.current.crlLastRefusal == nil)

            // The older CRL does not list the revoked serial; accepting it would un-revoke it.
            served.set(older.derBytes)
            #expect(await fetcher.fetch(at: Date()) == false)
            #expect(try onDisk(out).numbers == [20])
            #expect(try onDisk(out).serials == [revoked])
            #expect(fixture.broadcast.crls == [newer.derBytes])
            #expect(status.current.crlNumber == 20)
            let refusal = try #require(status.current.crlLastRefusal)
            #expect(refusal.contains("has number 10, lower than the 20 this agent holds"), "\(refusal)")
            #expect(status.current.crlLastRefusalAt != nil)

            // The same CRL again, and then a newer one, are accepted.
            served.set(newer.derBytes)
            #expect(await fetcher.fetch(at: Date()) == false)
            let newest = try crl(number: 21)
            served.set(newest.derBytes)
            #expect(await fetcher.fetch(at: Date()))
            #expect(try onDisk(out).numbers == [21])
            #expect(status.current.crlNumber == 21)
        }

        // A restarted agent starts from its crl.pem: the older CRL is refused before anything newer was fetched.
        let restarted = AgentStatusBox(spiffeID: WorkloadAPIFixture.identity.uri)
        let accepted = try await withFetcher(served, out: out, status: restarted) { fetcher in
            #expect(restarted.current.crlNumber == 21)
            served.set(newer.derBytes)
            return await fetcher.fetch(at: Date())
        }
        #expect(accepted == false)
        #expect(try onDisk(out).numbers == [21])
        #expect(restarted.current.crlLastRefusal?.contains("has number 20, lower than the 21") == true)
    }

    @Test("A CRL whose nextUpdate has passed is refused and the previous one kept")
    func expiredCRLRefused() async throws {
        let out = fixture.directory.file("out")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let served = Served()
        let status = AgentStatusBox(spiffeID: WorkloadAPIFixture.identity.uri)
        let current = try crl(number: 5)
        // Newer by number, but its validity ended an hour ago.
        let expired = try crl(number: 6, revoking: false, thisUpdate: Date().addingTimeInterval(-7200), validity: 3600)
        try await withFetcher(served, out: out, status: status) { fetcher in
            served.set(current.derBytes)
            #expect(await fetcher.fetch(at: Date()))
            served.set(expired.derBytes)
            #expect(await fetcher.fetch(at: Date()) == false)
            #expect(try onDisk(out).numbers == [5])
            #expect(fixture.broadcast.crls == [current.derBytes])
            let refusal = try #require(status.current.crlLastRefusal)
            #expect(refusal.contains("expired at \(expired.nextUpdate.formatted(.iso8601)) (its nextUpdate)"), "\(refusal)")
            #expect(status.current.crlNumber == 5)
        }
    }

    @Test("A CRL body over 4 MiB is refused without being kept; a status answer over 64 KiB is refused by agent status")
    func oversizedBodies() async throws {
        let out = fixture.directory.file("out")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let served = Served()
        let status = AgentStatusBox(spiffeID: WorkloadAPIFixture.identity.uri)
        #expect(CRLFetcher.maximumBodyBytes == 4 * 1024 * 1024)
        try await withFetcher(served, out: out, status: status) { fetcher in
            // A CRL exactly at the limit would be read; one byte more is not.
            served.set([UInt8](repeating: 0x30, count: CRLFetcher.maximumBodyBytes + 1))
            #expect(await fetcher.fetch(at: Date()) == false)
            let refusal = try #require(status.current.crlLastRefusal)
            #expect(refusal.contains("is larger than 4194304 bytes, the most meshca reads for a CRL"), "\(refusal)")
            #expect(!FileManager.default.fileExists(atPath: out + "/crl.pem"))
        }

        let huge = String(repeating: " ", count: 64 * 1024) + "{}"
        try await withHTTPServer(["/status": { .ok(huge, contentType: "application/json") }]) { port in
            let result = try await Command.run(Command.agentBinary, ["status", "--status-addr", "127.0.0.1:\(port)"])
            #expect(result.status == 1)
            #expect(result.stderr.contains("is larger than 65536 bytes, the most meshca reads for an agent's status"), "\(result.stderr)")
        }
    }

    @Test("agent status shows the held CRL's number and nextUpdate, and the last refusal, in text and JSON")
    func statusShowsCRL() async throws {
        var shown = AgentStatus(spiffeID: WorkloadAPIFixture.identity.uri)
        shown.state = "ok"
        shown.crlNumber = 1_795_788_650
        shown.crlNextUpdate = Date(timeIntervalSince1970: 1_800_000_000)
        shown.crlLastRefusal = "The CRL from http://x/crl (issuer CN=root) has number 10, lower than the 20 this agent holds"
        shown.crlLastRefusalAt = Date(timeIntervalSince1970: 1_799_990_000)
        let document = shown.json(at: Date(timeIntervalSince1970: 1_799_990_000))
        try await withHTTPServer(["/status": { .ok(document, contentType: "application/json") }]) { port in
            let text = try await Command.run(Command.agentBinary, ["status", "--status-addr", "127.0.0.1:\(port)"])
            #expect(text.status == 0, "\(text.stderr)")
            #expect(text.stdout.contains("crl            #1795788650, next update 2027-01-15T08:00:00Z"), "\(text.stdout)")
            #expect(
                text.stdout.contains(
                    "crl refused    2027-01-15T05:13:20Z: The CRL from http://x/crl (issuer CN=root) has number 10, lower than the 20"))
            let json = try await Command.run(Command.agentBinary, ["status", "--status-addr", "127.0.0.1:\(port)", "--json"])
            let decoded = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            #expect(decoded["crl_number"] as? Int == 1_795_788_650)
            #expect(decoded["crl_next_update"] as? String == "2027-01-15T08:00:00Z")
            #expect((decoded["crl_last_refusal"] as? String)?.hasPrefix("The CRL from http://x/crl") == true)
            #expect(decoded["crl_last_refusal_at"] as? String == "2027-01-15T05:13:20Z")
        }
    }
}

import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
@testable import MeshCAAgent
import MeshCACore
import MeshCATestSupport
import MeshCATransport
import ServiceLifecycle
import SwiftASN1
import Synchronization
import X509

/// A real CA in memory, a socket path in a fresh temporary directory (removed with the fixture), and a
/// running Workload API server for the duration of a test.
final class WorkloadAPIFixture: Sendable {
    static let trustDomain = try! TrustDomain("cluster.local")
    static let identity = try! SPIFFEID(trustDomain: trustDomain, namespace: "default", serviceAccount: "was")
    /// The metadata every SPIFFE client sends.
    static let securityHeader: Metadata = ["workload.spiffe.io": "true"]
    /// This test process's uid: what the kernel reports for its connections.
    static var ownUID: UInt32 { UInt32(getuid()) }

    let directory: TemporaryDirectory
    let socketPath: String
    let pki: TestPKI
    let broadcast = CredentialsBroadcast()

    /// A fixture whose socket sits two directories below a fresh temporary directory (created by the server).
    init() throws {
        directory = try TemporaryDirectory("wapi")
        socketPath = directory.path + "/run/meshca/agent.sock"
        pki = try TestPKI(trustDomain: Self.trustDomain.name, createdAt: Date(), rootTTL: .seconds(365 * 86_400))
    }

    /// Fresh credentials for ``identity``: a new key and a leaf issued now by the in-memory CA.
    func issue() throws -> WorkloadCredentials {
        let (issuance, key) = try pki.issue("was", ns: "default", at: Date(), ttl: .seconds(3_600))  // Self.identity
        let pem = try key.serializeAsPEM()
        return WorkloadCredentials(
            spiffeID: issuance.identity,
            chain: [issuance.certificate] + issuance.intermediates,
            privateKeyPKCS8: pem.derBytes,
            privateKeyPEM: pem.pemString,
            bundle: issuance.bundle
        )
    }

    deinit { directory.remove() }

    /// Issues credentials and publishes them; returns what was published.
    @discardableResult
    func publishNew() throws -> WorkloadCredentials {
        let credentials = try issue()
        broadcast.publish(credentials)
        return credentials
    }

    /// Runs a server admitting `allowedUIDs` in a ServiceGroup, runs `body` once it listens, then shuts
    /// the group down gracefully and waits for `run()` to return. `afterBind` runs between the bind and the
    /// socket's move into place.
    func withServer<Result: Sendable>(
        allowedUIDs: Set<UInt32> = [WorkloadAPIFixture.ownUID],
        afterBind: (@Sendable () -> Void)? = nil,
        _ body: (WorkloadAPIServer, ServiceGroup) async throws -> Result
    ) async throws -> Result {
        let server = WorkloadAPIServer(
            socketPath: socketPath,
            credentials: broadcast,
            allowedUIDs: allowedUIDs,
            logger: Logger(label: "meshca.workload-api.test"),
            afterBind: afterBind
        )
        let group = ServiceGroup(
            configuration: .init(services: [server], logger: Logger(label: "meshca.workload-api.test.group"))
        )
        // A server that stops before it listens (a bind error) ends the wait with its error, not a timeout.
        let ended = ServerEnd()
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                do {
                    try await group.run()
                    ended.value.withLock { $0 = "returned" }
                } catch {
                    ended.value.withLock { $0 = "threw \(error)" }
                    throw error
                }
            }
            do {
                try await Wait.until("the server listens on \(socketPath)", timeout: .seconds(30)) {
                    if let ended = ended.value.withLock({ $0 }) {
                        throw WorkloadAPIFixtureError("the Workload API server \(ended) before listening on \(socketPath)")
                    }
                    return server.isListening
                }
                let result = try await body(server, group)
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
                return result
            } catch {
                tasks.cancelAll()
                throw error
            }
        }
    }

    /// Runs `body` with a Workload API client connected over the fixture's socket.
    func withClient<Result: Sendable>(
        _ body: (SpiffeWorkloadAPI.Client<HTTP2ClientTransport.Posix>) async throws -> Result
    ) async throws -> Result {
        let transport = try HTTP2ClientTransport.Posix(
            target: .unixDomainSocket(path: socketPath),
            transportSecurity: .plaintext
        )
        return try await withGRPCClient(transport: transport) { client in
            try await body(SpiffeWorkloadAPI.Client(wrapping: client))
        }
    }

    /// The first `FetchX509SVID` message, sent with `metadata`.
    func firstSVIDResponse(metadata: Metadata = WorkloadAPIFixture.securityHeader) async throws -> X509SVIDResponse? {
        try await withClient { api in
            try await api.fetchX509SVID(X509SVIDRequest(), metadata: metadata) { response in
                var messages = response.messages.makeAsyncIterator()
                return try await messages.next()
            }
        }
    }

    /// Splits concatenated DER certificates (the Workload API's `x509_svid` and `bundle` format) and
    /// parses each strictly; throws on anything between or after them.
    static func certificates(_ data: Data) throws -> [Certificate] {
        var rest = Array(data)[...]
        var certificates: [Certificate] = []
        while !rest.isEmpty {
            let start = rest.startIndex
            guard rest.count >= 2, rest[start] == 0x30 else {
                throw WorkloadAPIFixtureError("not a DER SEQUENCE at byte \(start)")
            }
            let first = Int(rest[start + 1])
            var headerLength = 2
            var contentLength = first
            if first >= 0x80 {
                let lengthBytes = first & 0x7f
                guard lengthBytes > 0, lengthBytes <= 4, rest.count >= 2 + lengthBytes else {
                    throw WorkloadAPIFixtureError("bad DER length")
                }
                contentLength = rest[(start + 2)..<(start + 2 + lengthBytes)].reduce(0) { $0 << 8 | Int($1) }
                headerLength += lengthBytes
            }
            guard rest.count >= headerLength + contentLength else {
                throw WorkloadAPIFixtureError("truncated DER certificate")
            }
            certificates.append(try Certificate(derEncoded: Array(rest.prefix(headerLength + contentLength))))
            rest = rest.dropFirst(headerLength + contentLength)
        }
        return certificates
    }

    /// The file type and permission bits at `path` (without following a symlink), or `nil` when nothing is there.
    static func fileInfo(_ path: String) -> (type: FileAttributeType, permissions: Int)? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let type = attributes[.type] as? FileAttributeType,
            let permissions = (attributes[.posixPermissions] as? NSNumber)?.intValue
        else { return nil }
        return (type, permissions)
    }

    /// Waits until `condition` holds; throws after 30 s (a hang guard, not a speed check).
    static func waitUntil(_ what: String, _ condition: () -> Bool) async throws {
        try await Wait.until(what, timeout: .seconds(30)) { condition() }
    }
}

/// How the fixture's server ended, if it did.
private final class ServerEnd: Sendable {
    let value = Mutex<String?>(nil)
}

/// A fixture that could not set up what a test needs.
struct WorkloadAPIFixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

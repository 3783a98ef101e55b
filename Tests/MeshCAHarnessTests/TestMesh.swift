import Foundation
import MeshCACore
import MeshCADaemon
import MeshCAHarness
import MeshCAIO
import MeshCATestSupport
import SwiftASN1
import Synchronization
import X509

/// A ``TestPKI`` plus the workloads it issued, each written as Istio's three files into its own directory.
/// Nothing is committed: every key is generated here.
///
/// The root is created three days in the past (valid for ten years), so the core's injected clock can
/// issue certificates that have already expired, as well as ones that are not valid yet.
struct TestMesh {
    let directory: TemporaryDirectory
    let pki: TestPKI

    var trustDomain: TrustDomain { pki.trustDomain }
    var root: Certificate { pki.root }
    var authority: CertificateAuthority { pki.authority }

    init(trustDomain: String = "cluster.local") throws {
        directory = try TemporaryDirectory("hs")
        pki = try TestPKI(trustDomain: trustDomain)
    }

    /// `spiffe://<td>/ns/<ns>/sa/<sa>`.
    func id(_ serviceAccount: String, ns: String = "default") throws -> SPIFFEID {
        try pki.identity(serviceAccount, ns: ns)
    }

    /// Issues a certificate for `serviceAccount` as of `issuedAt` and writes the three files into
    /// `<mesh dir>/<name>`. `trusting` replaces the roots written to root-cert.pem. Returns the directory.
    @discardableResult
    func workload(
        _ serviceAccount: String, name: String? = nil, issuedAt: Date = Date(), ttl: Duration? = nil,
        keyType: KeyType = .ecP256, trusting roots: [Certificate]? = nil
    ) throws -> String {
        let (issuance, key) = try pki.issue(serviceAccount, at: issuedAt, ttl: ttl, keyType: keyType)
        let path = directory.file(name ?? serviceAccount)
        try CredentialFiles.write(
            to: path,
            certChainPEM: issuance.certChainPEM,
            keyPEM: try key.serializeAsPEM().pemString + "\n",
            bundlePEM: (roots ?? issuance.bundle).map(\.pem).joined()
        )
        return path
    }

    func remove() { directory.remove() }
}

/// Runs a ``HandshakeListener`` on its own thread for `connections` connections (one by default), so a
/// test can drive the client (an `openssl s_client` child, NIOSSL) from its own thread.
final class ListenerThread: Sendable {
    let listener: HandshakeListener
    private let done = DispatchSemaphore(value: 0)
    private let reports = Mutex<[HandshakeReport]>([])

    init(certificates: String, mode: HandshakeMode = .strict, expectedClientID: SPIFFEID? = nil, connections: Int = 1)
        throws
    {
        listener = try HandshakeListener(
            host: "127.0.0.1", port: 0, certificates: certificates, mode: mode,
            expectedClientID: expectedClientID, timeout: .seconds(10))
        Thread { [self] in
            var collected: [HandshakeReport] = []
            listener.serve(limit: connections) { collected.append($0) }
            reports.withLock { $0 = collected }
            done.signal()
        }.start()
    }

    var port: UInt16 { listener.port }

    /// The report of the first connection, once all were served.
    func report() async throws -> HandshakeReport {
        guard let report = try await allReports().first else { throw HarnessTestError("the listener reported nothing") }
        return report
    }

    /// Every connection's report; stops the listener when they have not all arrived within 30 s (a hang guard). The
    /// wait happens on a thread of its own, not on the cooperative pool the other tests need.
    func allReports() async throws -> [HandshakeReport] {
        let done = done
        /// Whether the listener thread finished within `seconds`, waited for on a thread of its own.
        func finished(within seconds: Int) async -> Bool {
            await withCheckedContinuation { continuation in
                Thread.detachNewThread { continuation.resume(returning: done.wait(timeout: .now() + .seconds(seconds)) == .success) }
            }
        }
        if !(await finished(within: 30)) {
            listener.stop()
            _ = await finished(within: 5)
            throw HarnessTestError("the listener on port \(port) did not serve its connections within 30s")
        }
        return reports.withLock { $0 }
    }
}

struct HarnessTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

import Foundation
import MeshCACore
import MeshCADaemon
import MeshCAHarness
import MeshCAIO
import MeshCATestSupport
import SwiftASN1
import Synchronization
import X509

/// A CA made at run time plus the workloads it issued, each written as Istio's three files into its own
/// directory. Nothing is committed: every key is generated here.
///
/// The root is created three days in the past (valid for ten years), so the core's injected clock can
/// issue certificates that have already expired, as well as ones that are not valid yet.
struct TestMesh {
    let directory: TemporaryDirectory
    let trustDomain: TrustDomain
    let root: Certificate
    let authority: CertificateAuthority

    init(trustDomain: String = "cluster.local") throws {
        directory = try TemporaryDirectory("hs")
        self.trustDomain = try TrustDomain(trustDomain)
        let key = try KeyType.ecP256.generate()
        root = try SelfSignedRoot.make(
            trustDomain: self.trustDomain, key: key, ttl: .seconds(10 * 365 * 86_400),
            now: Date().addingTimeInterval(-3 * 86_400)
        )
        authority = CertificateAuthority(
            trustDomain: self.trustDomain,
            signer: try SigningIdentity(certificate: root, privateKey: key, bundle: [root])
        )
    }

    /// `spiffe://<td>/ns/<ns>/sa/<sa>`.
    func id(_ serviceAccount: String, ns: String = "default") throws -> SPIFFEID {
        try SPIFFEID(trustDomain: trustDomain, namespace: ns, serviceAccount: serviceAccount)
    }

    /// Issues a certificate for `serviceAccount` as of `issuedAt` and writes the three files into
    /// `<mesh dir>/<name>`. `trusting` replaces the roots written to root-cert.pem. Returns the directory.
    @discardableResult
    func workload(
        _ serviceAccount: String, name: String? = nil, issuedAt: Date = Date(), ttl: Duration? = nil,
        keyType: KeyType = .ecP256, trusting roots: [Certificate]? = nil
    ) throws -> String {
        let identity = try id(serviceAccount)
        let key = try keyType.generate()
        let csr = try WorkloadCSR.pem(WorkloadCSR.make(for: identity, key: key))
        let issuance = try authority.issue(
            IssuanceRequest(csrPEM: csr, identity: identity, requestedTTL: ttl), at: issuedAt)
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
    func report() throws -> HandshakeReport {
        guard let report = try allReports().first else { throw HarnessTestError("the listener reported nothing") }
        return report
    }

    /// Every connection's report; stops the listener when they have not all arrived within 30 s.
    func allReports() throws -> [HandshakeReport] {
        if done.wait(timeout: .now() + 30) == .timedOut {
            listener.stop()
            _ = done.wait(timeout: .now() + 5)
            throw HarnessTestError("the listener on port \(port) did not serve its connections within 30s")
        }
        return reports.withLock { $0 }
    }
}

struct HarnessTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

import Foundation
import Logging
import MeshCACore
import MeshCAIO
import MeshCATransport
import ServiceLifecycle
import X509

/// Follows changes that other meshca processes make to the CA's files while `meshca serve` runs: a root
/// rotation (`meshca root prepare|activate|retire`) rewrites `root-cert.pem`, `ca-cert.pem` and `ca-key.pem`.
///
/// Every `interval` it compares the files' identity (inode, size, modification time; meshca replaces files by
/// rename, so every write changes the inode). On a change it loads the state under the directory's shared lock
/// and, when the signing certificate or the bundle differ, switches the CA to them (the next request signs with
/// the new identity and hands out the new bundle; client certificates are verified against the new bundle).
///
/// The serving certificate is reissued (and the one it replaces revoked as superseded, see ``ServingIdentity``)
/// only when the change concerns it: the signing CA changed (`activate`), or a root left the bundle (`retire`; the
/// served chain drops it and the bridge). When roots were only added (`prepare`) the current serving certificate
/// stays: it chains to the root that still signs, which every client trusts, and a new one would be one more
/// certificate under the root about to be replaced, holding its `retire` back.
/// A state that does not load (a hand edit in progress) is logged and the current identity kept.
struct CAStateWatcher: Service {
    let directory: StateDirectory
    let authority: CertificateAuthority
    let serving: ServingIdentity
    let certificate: ServingCertificate
    let metrics: CAMetrics
    let logger: Logger
    /// How often the files are compared (`state-poll-interval`).
    let interval: Duration
    var time: ServiceTime = .system

    func run() async throws {
        var seen = fileIdentity()
        var lastProblem: String?
        await time.every(interval, immediately: false) { now in
            let current = fileIdentity()
            guard current != seen else { return }
            do {
                try await reload(at: now)
                seen = current
                lastProblem = nil
            } catch {
                // Retried on the next tick; logged once per distinct problem.
                let problem = "\(error)"
                if problem != lastProblem {
                    logger.error("the CA files changed but cannot be used; still signing with the previous CA", metadata: ["error": "\(problem)"])
                    lastProblem = problem
                }
            }
        }
    }

    /// Loads the state and switches to it when it differs from what the CA signs with, as of `now`.
    func reload(at now: Date) async throws {
        let directory = self.directory
        let state = try await StateDirectory.offCooperativePool { try CAState.load(from: directory) }
        guard state.trustDomain == authority.trustDomain else {
            throw DaemonError(
                .unreadableFile,
                "the trust domain in \(directory.trustDomainPath) changed to \(state.trustDomain.name); restart meshca serve to change trust domains"
            )
        }
        let before = authority.signingIdentity
        guard before.certificate != state.signer.certificate || before.bundle != state.signer.bundle || before.intermediates != state.signer.intermediates else {
            return
        }
        authority.activate(state.signer)
        metrics.setCAExpiry(of: state.signer)
        logger.notice(
            "CA files changed: now signing with \(state.signer.certificate.subject), \(state.signer.bundle.count) root(s) in the bundle",
            metadata: [
                "signing_ca": "\(state.signer.certificate.sha256Fingerprint.prefix(16))",
                "roots": "\(state.signer.bundle.map { String($0.sha256Fingerprint.prefix(16)) }.joined(separator: ","))",
            ]
        )
        let rootsOnlyAdded = before.certificate == state.signer.certificate && before.intermediates == state.signer.intermediates
            && before.bundle.allSatisfy(state.signer.bundle.contains)
        guard !rootsOnlyAdded else {
            logger.info("kept the serving certificate: it chains to the signing CA, which did not change")
            return
        }
        let (leaf, superseded) = try await serving.reissue(into: certificate, metrics: metrics, at: now)
        logger.info(
            "reissued the serving certificate under the current CA",
            metadata: ["serial": "\(leaf.serialHex)", "superseded": "\(superseded.joined(separator: ","))"])
    }

    private func fileIdentity() -> [String] {
        [directory.caCertificatePath, directory.caKeyPath, CAKeyFile.referencePath(for: directory.caKeyPath), directory.bundlePath, directory.chainPath].map { path in
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return "-" }
            let inode = (attributes[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0
            let size = (attributes[.size] as? NSNumber)?.uint64Value ?? 0
            let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            return "\(inode)/\(size)/\(modified)"
        }
    }
}

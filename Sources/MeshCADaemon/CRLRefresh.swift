import Foundation
import Logging
import MeshCACore
import MeshCAIO
import MeshCALedger
import ServiceLifecycle
import Synchronization

/// Keeps the signing CA's CRL current in `meshca serve`: `crl.pem` in the state directory and the copy `/crl`
/// serves.
///
/// Every ``pollInterval`` it asks the ledger whether a revocation was recorded since the last look (a cheap
/// query on the hash chain, so revocations made by `meshca revoke`, a separate process on the same state
/// directory, are picked up within one interval) and re-signs the CRL when one was, when
/// ``CRLPublisher/refreshInterval`` has passed since the last one (12h, half the 24h validity), or when the
/// set of CAs it covers changed (a root activated or retired). A failure keeps the previous CRL and is retried at the next poll.
public final class CRLRefresh: Service, Sendable {
    /// How often the ledger is asked for new revocations.
    public let pollInterval: Duration
    private let publisher: CRLPublisher
    private let signer: @Sendable () -> SigningIdentity
    private let logger: Logger
    private let time: ServiceTime
    private let state = Mutex<(crl: CertificateRevocationList?, pem: String?, cursor: Int64, issuer: String)>((nil, nil, 0, ""))

    /// A refresher publishing through `publisher` for whichever CA `signer` returns at the time.
    public init(
        publisher: CRLPublisher, signer: @escaping @Sendable () -> SigningIdentity,
        pollInterval: Duration = .seconds(2),
        time: ServiceTime = .system,
        logger: Logger
    ) {
        self.time = time
        self.publisher = publisher
        self.signer = signer
        self.pollInterval = pollInterval
        self.logger = logger
    }

    /// The CRL published last, or nil before the first one.
    public var current: CertificateRevocationList? { state.withLock { $0.crl } }

    /// Every CRL published last as PEM, the signing CA's first (during a root rotation's overlap, the old root's
    /// follows), or nil before the first.
    public var currentPEM: String? { state.withLock { $0.pem } }

    /// Publishes a fresh CRL now if one is due (see the type's description); returns the current one.
    @discardableResult
    public func refresh(at now: Date) async throws -> CertificateRevocationList {
        let (previous, cursor, issuer) = state.withLock { ($0.crl, $0.cursor, $0.issuer) }
        // The head is read before the entries, so a revocation racing with this publish shows up in the next poll.
        let poll = try await publisher.ledger.revocations(after: cursor)
        let signer = self.signer()
        // The set of CAs the CRL covers: the signer, and the old root while a rotation keeps it in previous/.
        let hasPrevious = CAKeyFile.exists(publisher.directory.previousRootKeyPath)
        let fingerprint = signer.certificate.sha256Fingerprint + (hasPrevious ? "+previous" : "")
        let refreshAt = previous?.thisUpdate.addingTimeInterval(
            TimeInterval(CRLPublisher.refreshInterval.components.seconds))
        if let previous, !poll.revokedSince, fingerprint == issuer, let refreshAt, now < refreshAt {
            state.withLock { $0.cursor = poll.head }
            return previous
        }
        let crls = try await publisher.publishAll(for: signer, at: now)
        let crl = crls[0]
        state.withLock { $0 = (crl, crls.map(\.pem).joined(), poll.head, fingerprint) }
        logger.info(
            "published the CRL",
            metadata: [
                "path": "\(publisher.directory.crlPath)", "number": "\(crl.number)", "entries": "\(crl.entries.count)",
                "next_update": "\(crl.nextUpdate.formatted(.iso8601))",
            ])
        return crl
    }

    /// Polls until graceful shutdown or cancellation.
    public func run() async throws {
        await time.every(pollInterval, immediately: false) { now in
            do {
                try await refresh(at: now)
            } catch {
                logger.error(
                    "could not publish the CRL; serving the previous one and retrying",
                    metadata: ["error": "\(error)", "path": "\(publisher.directory.crlPath)"])
            }
        }
    }
}

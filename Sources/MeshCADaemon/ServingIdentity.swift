import Foundation
import Logging
import MeshCACore
import MeshCAIO
import MeshCALedger
import MeshCATransport
import ServiceLifecycle
import Synchronization
import SwiftASN1
import X509

/// The daemon's own TLS certificate: issued by its CA at start, recorded in the ledger like every
/// certificate that leaves the CA, and renewed at half its lifetime while the daemon runs.
///
/// Only the newest one is in use: each time the daemon swaps in a new serving certificate (at start, at renewal,
/// when a root rotation changes the signing CA) it revokes every other unexpired serving certificate of this
/// ledger as `superseded`, through the ledger's ordinary revocation (a `revocation` event on the hash chain; the
/// CRL lists it until it expires). So a replaced serving certificate never holds `meshca root retire` back, and an
/// audit shows exactly one serving certificate in use.
///
/// On a ledger of its own (SQLite) this includes, at start, the certificates of earlier daemon processes on the same
/// state directory: they are not in use any more. On a ledger several replicas share (PostgreSQL), the others'
/// serving certificates are in use, so a daemon supersedes only the ones it issued itself; a replica that is gone
/// leaves its last one to expire (the rotation gates say when).
public struct ServingIdentity: Sendable {
    /// The CA that signs it.
    public let authority: CertificateAuthority
    /// Where it is recorded.
    public let ledger: any IssuanceLedger
    /// DNS SANs; IPv4/IPv6 literals in this list become IP SANs. 127.0.0.1 is always included.
    public let names: [String]
    /// Lifetime of each serving certificate.
    public let ttl: Duration

    /// Where a root rotation's bridge certificate is (`previous/cross-cert.pem`), read at each issuance.
    public let bridgePath: String?

    /// Runs one swap at a time (issue, swap in, supersede the rest), shared by every copy of this value, so the
    /// renewal and the CA-file watcher never revoke each other's new certificate.
    private let swaps = OneAtATime()

    /// Whether other daemons record their serving certificates in the same ledger.
    public let sharedLedger: Bool

    /// The serials this daemon issued (what it may supersede when `sharedLedger`).
    private let issued = IssuedSerials()

    private final class IssuedSerials: Sendable {
        let serials = Mutex<Set<String>>([])
    }

    /// The requester every serving certificate is recorded with.
    static let requester = Requester(name: Doctor.servingRequester, authMethod: Doctor.servingAuthMethod)

    /// Creates the issuer of serving certificates.
    public init(
        authority: CertificateAuthority, ledger: any IssuanceLedger, names: [String], ttl: Duration, bridgePath: String? = nil,
        sharedLedger: Bool = false
    ) {
        self.sharedLedger = sharedLedger
        self.authority = authority
        self.ledger = ledger
        self.names = names
        self.ttl = ttl
        self.bridgePath = bridgePath
    }

    /// Issues and records the serving certificate the daemon starts with, then supersedes every earlier one (see
    /// the type's description): chain PEM, key PEM and the leaf, as ``record(at:)`` returns them.
    public func issue(at now: Date) async throws -> (chainPEM: String, keyPEM: String, leaf: Certificate) {
        try await swaps.run {
            let issued = try await record(at: now)
            _ = try await supersedeAll(but: issued.leaf, at: now)
            return issued
        }
    }

    /// A freshly issued and recorded serving certificate: chain PEM (leaf, then the roots, so a client
    /// pinning the root by fingerprint finds it), key PEM, and the leaf.
    ///
    /// Between a root rotation's activation and retirement the chain also carries the bridge (the active root
    /// certified by the old one) right after the leaf, so a client that trusts only the old root, or whose join
    /// token pins it, still verifies the daemon and can renew onto the new bundle.
    public func record(at now: Date) async throws -> (chainPEM: String, keyPEM: String, leaf: Certificate) {
        let key = try KeyType.ecP256.generate()
        var dnsNames: [String] = []
        var addresses: [[UInt8]] = [[127, 0, 0, 1]]
        for name in names {
            if let bytes = HostPort.ipv4Bytes(name) {
                if !addresses.contains(bytes) { addresses.append(bytes) }
            } else if !dnsNames.contains(name) {
                dnsNames.append(name)
            }
        }
        let leaf = try authority.issueServingCertificate(publicKey: key.publicKey, dnsNames: dnsNames, ipAddresses: addresses, ttl: ttl, at: now)
        let signer = authority.signingIdentity
        try await ledger.record(
            IssuanceRecord(
                certificate: leaf, trustDomain: authority.trustDomain, issuedAt: now, requestedTTL: ttl,
                issuer: signer.certificate, requester: Self.requester
            )
        )
        issued.serials.withLock { _ = $0.insert(leaf.serialHex) }
        let chain = [leaf] + bridge(for: signer.certificate)
            + signer.chainAboveLeaf + signer.bundle
        return (chain.map(\.pem).joined(), try key.serializeAsPEM().pemString + "\n", leaf)
    }

    /// Issues a new serving certificate as of `now`, swaps it into the TLS listener's `certificate` (new
    /// connections get it), publishes its expiry, and then supersedes every other serving certificate; returns
    /// the leaf and the serials superseded.
    func reissue(into certificate: ServingCertificate, metrics: CAMetrics, at now: Date) async throws -> (
        leaf: Certificate, superseded: [String]
    ) {
        try await swaps.run {
            let next = try await record(at: now)
            try certificate.update(chainPEM: next.chainPEM, keyPEM: next.keyPEM)
            metrics.setServingCertificateExpiry(next.leaf.notValidAfter)
            // After the swap, so no new connection is handed a certificate already revoked.
            return (next.leaf, try await supersedeAll(but: next.leaf, at: now))
        }
    }

    /// Revokes as `superseded`, as of `now`, every unexpired, unrevoked serving certificate in the ledger other
    /// than `current` (on a shared ledger: only those this daemon issued); returns their serials. Serving certificates have no SPIFFE ID, so the query reads only the
    /// ledger's few rows without one (`issuances_by_identity`).
    func supersedeAll(but current: Certificate, at now: Date) async throws -> [String] {
        let unexpired = try await ledger.issuances(
            matching: IssuanceQuery(now: now, namespace: "", serviceAccount: "", status: .valid))
        var superseded: [String] = []
        for record in unexpired
        where record.spiffeID.isEmpty && record.requester == Self.requester.name
            && record.authMethod == Self.requester.authMethod && record.serial != current.serialHex
            && (!sharedLedger || issued.serials.withLock { $0.contains(record.serial) })
        {
            if case .revoked = try await ledger.revoke(serial: record.serial, reason: RevocationReason.superseded.rawValue, at: now) {
                superseded.append(record.serial)
            }
        }
        return superseded
    }

    /// The bridge certificate for `signing`, when a rotation left one that certifies exactly that root.
    private func bridge(for signing: Certificate) -> [Certificate] {
        guard let bridgePath, let bridge = StateDirectory.certificate(at: bridgePath),
            bridge.subject == signing.subject, bridge.publicKey == signing.publicKey
        else { return [] }
        return [bridge]
    }

}

/// Renews the serving certificate at half its lifetime (``schedule``, without jitter: there is one daemon, not a
/// fleet) and swaps it into the TLS listener; open connections keep the certificate they were opened with. A
/// failed renewal is retried with the schedule's backoff, always before the current certificate expires.
struct ServingCertificateRenewal: Service {
    /// When the serving certificate renews, and how retries back off.
    static let schedule = try! RenewalSchedule(graceRatio: 0.5, jitter: 0, initialBackoff: .seconds(30), maximumBackoff: .seconds(300))

    let identity: ServingIdentity
    let certificate: ServingCertificate
    let metrics: CAMetrics
    let logger: Logger
    var notAfter: Date
    var issuedAt: Date
    var time: ServiceTime = .system

    func run() async throws {
        var notAfter = self.notAfter
        var failures = 0
        await time.repeatedly(from: Self.renewalTime(issuedAt: issuedAt, notAfter: notAfter)) { now in
            do {
                let (leaf, superseded) = try await identity.reissue(into: certificate, metrics: metrics, at: now)
                notAfter = leaf.notValidAfter
                failures = 0
                logger.info(
                    "renewed the serving certificate",
                    metadata: [
                        "serial": "\(leaf.serialHex)", "not_after": "\(leaf.notValidAfter.formatted(.iso8601))",
                        "superseded": "\(superseded.joined(separator: ","))",
                    ])
                return Self.renewalTime(issuedAt: now, notAfter: leaf.notValidAfter)
            } catch {
                let delay = Self.schedule.backoff(attempt: failures, random: Double.random(in: 0...1), now: now, deadline: notAfter)
                failures += 1
                logger.error(
                    "could not renew the serving certificate; retrying", metadata: ["error": "\(error)", "retry_in": "\(delay)"])
                return now.addingTimeInterval(delay.seconds)
            }
        }
    }

    /// When a serving certificate issued at `issuedAt` and expiring at `notAfter` is renewed: at half-life.
    static func renewalTime(issuedAt: Date, notAfter: Date) -> Date {
        schedule.renewalTime(receivedAt: issuedAt, notAfter: notAfter, random: 0)
    }
}

/// Runs async operations one after another, in the order they were submitted, even across suspension points (an
/// actor alone would interleave them at every `await`).
final class OneAtATime: Sendable {
    private let tail = Mutex<Task<Void, Never>?>(nil)

    func run<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let task = tail.withLock { tail in
            let previous = tail
            let task = Task {
                await previous?.value
                return try await operation()
            }
            tail = Task { _ = try? await task.value }
            return task
        }
        return try await task.value
    }
}

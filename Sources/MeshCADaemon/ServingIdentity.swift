import Foundation
import Logging
import MeshCACore
import MeshCALedger
import MeshCATransport
import ServiceLifecycle
import SwiftASN1
import X509

/// The daemon's own TLS certificate: issued by its CA at start, recorded in the ledger like every
/// certificate that leaves the CA, and renewed at half its lifetime while the daemon runs.
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

    /// Creates the issuer of serving certificates.
    public init(authority: CertificateAuthority, ledger: any IssuanceLedger, names: [String], ttl: Duration, bridgePath: String? = nil) {
        self.authority = authority
        self.ledger = ledger
        self.names = names
        self.ttl = ttl
        self.bridgePath = bridgePath
    }

    /// A freshly issued and recorded serving certificate: chain PEM (leaf, then the roots, so a client
    /// pinning the root by fingerprint finds it), key PEM, and the leaf.
    ///
    /// Between a root rotation's activation and retirement the chain also carries the bridge (the active root
    /// certified by the old one) right after the leaf, so a client that trusts only the old root, or whose join
    /// token pins it, still verifies the daemon and can renew onto the new bundle.
    public func issue(at now: Date) async throws -> (chainPEM: String, keyPEM: String, leaf: Certificate) {
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
                issuer: signer.certificate, requester: Requester(name: "meshca-serve", authMethod: "internal")
            )
        )
        let chain = [leaf] + bridge(for: signer.certificate)
            + (signer.bundle.contains(signer.certificate) ? [] : [signer.certificate] + signer.intermediates) + signer.bundle
        return (chain.map(\.pem).joined(), try key.serializeAsPEM().pemString + "\n", leaf)
    }

    /// Issues a new serving certificate as of `now`, swaps it into the TLS listener's `certificate` (new
    /// connections get it) and publishes its expiry; returns the leaf.
    func reissue(into certificate: ServingCertificate, metrics: CAMetrics, at now: Date) async throws -> Certificate {
        let next = try await issue(at: now)
        try certificate.update(chainPEM: next.chainPEM, keyPEM: next.keyPEM)
        metrics.setServingCertificateExpiry(next.leaf.notValidAfter)
        return next.leaf
    }

    /// The bridge certificate for `signing`, when a rotation left one that certifies exactly that root.
    private func bridge(for signing: Certificate) -> [Certificate] {
        guard let bridgePath, let bridge = StateDirectory.certificate(at: bridgePath),
            bridge.subject == signing.subject, bridge.publicKey == signing.publicKey
        else { return [] }
        return [bridge]
    }

}

/// Renews the serving certificate at half its lifetime (retrying every minute on failure) and swaps it
/// into the TLS listener; open connections keep the certificate they were opened with.
struct ServingCertificateRenewal: Service {
    let identity: ServingIdentity
    let certificate: ServingCertificate
    let metrics: CAMetrics
    let logger: Logger
    var notAfter: Date
    var issuedAt: Date

    func run() async throws {
        var nextAttempt = Self.halfLife(from: issuedAt, to: notAfter)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let wait = max(0, nextAttempt.timeIntervalSinceNow)
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(wait)) }
            } catch {
                return
            }
            let now = Date()
            do {
                let leaf = try await identity.reissue(into: certificate, metrics: metrics, at: now)
                nextAttempt = Self.halfLife(from: now, to: leaf.notValidAfter)
                logger.info("renewed the serving certificate", metadata: ["serial": "\(leaf.serialHex)", "not_after": "\(leaf.notValidAfter.formatted(.iso8601))"])
            } catch {
                nextAttempt = now.addingTimeInterval(60)
                logger.error("could not renew the serving certificate; retrying in 60s", metadata: ["error": "\(error)"])
            }
        }
    }

    static func halfLife(from start: Date, to end: Date) -> Date {
        start.addingTimeInterval(end.timeIntervalSince(start) / 2)
    }
}

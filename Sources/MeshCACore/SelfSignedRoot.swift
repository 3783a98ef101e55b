#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SwiftASN1
import X509

/// Makes the self-signed root a fresh meshca CA starts with.
///
/// Profile (as istiod's self-signed root, with cRLSign added for revocation): subject = issuer =
/// `O=<trust domain>`, BasicConstraints CA=true (critical, no path length), KeyUsage keyCertSign + cRLSign
/// (critical), SubjectKeyIdentifier, no SAN, notBefore backdated two minutes for clock skew.
///
/// A root made by a rotation (`meshca root prepare`) adds a common name to the subject, so the two roots
/// of the overlap have different names and tools (and people) can tell them apart.
public enum SelfSignedRoot {
    /// Signs a new root for `trustDomain` with `key`, valid from `now - 2m` for `ttl`; the subject is
    /// `O=<trust domain>`, plus `CN=<commonName>` when one is given.
    public static func make(
        trustDomain: TrustDomain,
        key: Certificate.PrivateKey,
        ttl: Duration,
        now: Date,
        commonName: String? = nil
    ) throws -> Certificate {
        guard ttl >= .seconds(86_400) else {
            throw IssuanceError(
                .invalidDuration,
                "A root CA lifetime of \(HumanDuration.format(ttl)) is too short; use at least 1d (the default is 87600h, 10 years)."
            )
        }
        let name = try commonName.map { cn in
            try DistinguishedName {
                OrganizationName(trustDomain.name)
                CommonName(cn)
            }
        } ?? DistinguishedName { OrganizationName(trustDomain.name) }
        let notBefore = now.addingTimeInterval(-120)
        let notAfter = now.addingTimeInterval(TimeInterval(ttl.components.seconds))
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
            Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(hash: key.publicKey)
        }
        return try Certificate(
            version: .v3,
            serialNumber: RandomSerial.make(),
            publicKey: key.publicKey,
            notValidBefore: notBefore,
            notValidAfter: notAfter,
            issuer: name,
            subject: name,
            signatureAlgorithm: try KeyType.signatureAlgorithm(for: key.publicKey),
            extensions: extensions,
            issuerPrivateKey: key
        )
    }
}

/// Random certificate serial numbers: 128 bits from the system's secure random source, positive,
/// minimally encoded (RFC 5280 4.1.2.2: at most 20 octets; CA/B Forum: at least 64 bits of entropy).
enum RandomSerial {
    static func make() -> Certificate.SerialNumber {
        // Two 64-bit draws instead of sixteen 8-bit ones: each draw is a call into the system's random source.
        var rng = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        for _ in 0..<2 {
            withUnsafeBytes(of: rng.next().bigEndian) { bytes.append(contentsOf: $0) }
        }
        // A zero first byte would shorten the number; forcing a non-zero byte keeps every serial
        // 121-128 bits long, which is still far above the 64-bit minimum.
        if bytes[0] == 0 { bytes[0] = 1 }
        // `SerialNumber` holds the unsigned magnitude; its DER encoding gains a leading 0x00 when the top
        // bit is set, so the INTEGER is always positive (at most 17 content octets).
        return Certificate.SerialNumber(bytes: bytes)
    }
}

/// The bridge of a root rotation: the new root's name and key certified by the old root.
///
/// A client that trusts only the old root can verify something the new root signed through it (leaf → bridge →
/// old root), so `meshca serve` sends it after its serving certificate while both roots are published: agents
/// that have not yet fetched the new bundle (a forced activation, or a join token pinning the old root) can still
/// reach the CA to renew. Profile: the new root's subject, key, SubjectKeyIdentifier, constraints and key usage;
/// issuer, AuthorityKeyIdentifier and signature from the old root; valid until the earlier of the two roots ends.
public enum CrossCertificate {
    /// Certifies `newRoot` with `oldRoot`'s key, as of `now`.
    public static func make(newRoot: Certificate, oldRoot: Certificate, oldKey: Certificate.PrivateKey, now: Date) throws -> Certificate {
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
            Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(hash: newRoot.publicKey)
            AuthorityKeyIdentifier(keyIdentifier: oldRoot.issuingKeyIdentifier)
        }
        return try Certificate(
            version: .v3,
            serialNumber: RandomSerial.make(),
            publicKey: newRoot.publicKey,
            notValidBefore: now.addingTimeInterval(-120),
            notValidAfter: min(oldRoot.notValidAfter, newRoot.notValidAfter),
            issuer: oldRoot.subject,
            subject: newRoot.subject,
            signatureAlgorithm: try KeyType.signatureAlgorithm(for: oldKey.publicKey),
            extensions: extensions,
            issuerPrivateKey: oldKey
        )
    }
}

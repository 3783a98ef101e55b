import Foundation
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
        var rng = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
        // A zero first byte would shorten the number; forcing a non-zero byte keeps every serial
        // 121-128 bits long, which is still far above the 64-bit minimum.
        if bytes[0] == 0 { bytes[0] = 1 }
        // `SerialNumber` holds the unsigned magnitude; its DER encoding gains a leading 0x00 when the top
        // bit is set, so the INTEGER is always positive (at most 17 content octets).
        return Certificate.SerialNumber(bytes: bytes)
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SwiftASN1
import X509

extension CertificateAuthority {
    /// Signs the CA daemon's own TLS serving certificate (istiod's "DNS certificate"): an empty subject,
    /// critical SAN with `dnsNames` and `ipAddresses` (4-byte IPv4 or 16-byte IPv6), KeyUsage
    /// digitalSignature (+ keyEncipherment for RSA), EKU serverAuth + clientAuth, CA=false, AKI/SKI,
    /// notBefore backdated, notAfter capped at the CA's own.
    ///
    /// It carries no SPIFFE ID: it identifies the CA endpoint by name, which is what gRPC clients check.
    public func issueServingCertificate(
        publicKey: Certificate.PublicKey,
        dnsNames: [String],
        ipAddresses: [[UInt8]],
        ttl: Duration,
        at now: Date
    ) throws -> Certificate {
        guard !dnsNames.isEmpty || !ipAddresses.isEmpty else {
            throw IssuanceError(.forbiddenSAN, "A serving certificate needs at least one DNS name or IP address.")
        }
        guard let keyType = KeyType.of(publicKey) else {
            throw IssuanceError(.unsupportedKey, "The serving key is not accepted: \(KeyType.refusal(for: publicKey)).")
        }
        let signer = signingIdentity
        let ca = signer.certificate
        guard now >= ca.notValidBefore, now < ca.notValidAfter else {
            throw IssuanceError(.signerNotValid, "The CA certificate is not valid at \(now); cannot issue a serving certificate.")
        }
        let names: [GeneralName] = dnsNames.map { .dnsName($0) }
            + ipAddresses.map { .ipAddress(ASN1OctetString(contentBytes: $0[...])) }
        let issuerKeyID = ca.issuingKeyIdentifier
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true, keyEncipherment: keyType.hasPrefix("rsa-")))
            try ExtendedKeyUsage([.serverAuth, .clientAuth])
            Critical(SubjectAlternativeNames(names))
            AuthorityKeyIdentifier(keyIdentifier: issuerKeyID)
            SubjectKeyIdentifier(hash: publicKey)
        }
        let certificate = try sign(
            with: signer, publicKey: publicKey, subject: DistinguishedName(), ttl: ttl, extensions: extensions, at: now)
        guard ca.publicKey.isValidSignature(certificate.signature, for: certificate) else {
            throw IssuanceError(.signingFailed, "The serving certificate's signature does not verify; it was not used.")
        }
        return certificate
    }
}

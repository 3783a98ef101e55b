#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SwiftASN1
import X509

extension CertificateAuthority {
    /// Signs an intermediate CA certificate for a plug-in CA (for example istiod's `cacerts`), under
    /// the signing identity: subject `O=<trust domain>, CN=<commonName>`, BasicConstraints CA=true with
    /// path length 0 (it may sign only leaves), KeyUsage keyCertSign + cRLSign, SKI and AKI, notBefore
    /// backdated, notAfter capped at the signer's own.
    public func issueIntermediate(publicKey: Certificate.PublicKey, commonName: String, ttl: Duration, at now: Date) throws -> Certificate {
        guard KeyType.of(publicKey) != nil else {
            throw IssuanceError(.unsupportedKey, "The intermediate's key is not accepted: \(KeyType.refusal(for: publicKey)).")
        }
        let signer = signingIdentity
        let ca = signer.certificate
        guard now >= ca.notValidBefore, now < ca.notValidAfter else {
            throw IssuanceError(.signerNotValid, "The CA certificate is not valid at \(now); cannot sign an intermediate.")
        }
        let issuerKeyID = ca.issuingKeyIdentifier
        let subject = try DistinguishedName {
            OrganizationName(trustDomain.name)
            CommonName(commonName)
        }
        let certificate = try sign(
            with: signer, publicKey: publicKey, subject: subject, ttl: ttl,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                AuthorityKeyIdentifier(keyIdentifier: issuerKeyID)
                SubjectKeyIdentifier(hash: publicKey)
            },
            at: now)
        guard ca.publicKey.isValidSignature(certificate.signature, for: certificate) else {
            throw IssuanceError(.signingFailed, "The intermediate's signature does not verify; it was not used.")
        }
        return certificate
    }
}

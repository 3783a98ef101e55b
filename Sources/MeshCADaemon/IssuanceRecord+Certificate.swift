import Foundation
import MeshCACore
import MeshCALedger
import X509

extension IssuanceRecord {
    /// The ledger row for a certificate the CA made for itself or its operator, without a CSR or a
    /// SPIFFE ID: the daemon's serving certificate, an intermediate CA.
    public init(
        certificate: Certificate,
        trustDomain: TrustDomain,
        issuedAt: Date,
        requestedTTL: Duration,
        issuer: Certificate,
        requester: Requester
    ) {
        self.init(
            serial: certificate.serialHex, spiffeID: "", trustDomain: trustDomain.name, namespace: "", serviceAccount: "",
            sans: certificate.sanStrings, notBefore: certificate.notValidBefore, notAfter: certificate.notValidAfter,
            issuedAt: issuedAt, requestedTTLSeconds: requestedTTL.components.seconds,
            grantedTTLSeconds: Int64(certificate.notValidAfter.timeIntervalSince(issuedAt).rounded(.down)),
            keyType: KeyType.of(certificate.publicKey) ?? "unknown", publicKeySHA256: certificate.publicKey.sha256Fingerprint,
            csrSHA256: "", certificateDER: certificate.derBytes, issuerFingerprint: issuer.sha256Fingerprint,
            requester: requester.name, authMethod: requester.authMethod
        )
    }
}

import Foundation
import Synchronization
import X509

/// Issues X509-SVIDs for one trust domain.
///
/// Its only mutable state is the active signing identity, swapped by ``activate(_:)``; issuance takes a
/// snapshot under a short lock and signs outside it, so concurrent requests sign in parallel. Time is an
/// argument, never read from the wall clock, so tests can issue "in the future" or "in the past".
public final class CertificateAuthority: Sendable {
    /// The trust domain every issued identity must belong to.
    public let trustDomain: TrustDomain
    /// The lifetime rules.
    public let policy: IssuancePolicy
    private let signer: Mutex<SigningIdentity>

    /// A CA for `trustDomain` that signs with `signer` under `policy`.
    public init(trustDomain: TrustDomain, signer: SigningIdentity, policy: IssuancePolicy = .standard) {
        self.trustDomain = trustDomain
        self.policy = policy
        self.signer = Mutex(signer)
    }

    /// The identity currently used for signing.
    public var signingIdentity: SigningIdentity { signer.withLock { $0 } }

    /// Switches signing to `next` for every later request.
    public func activate(_ next: SigningIdentity) {
        signer.withLock { $0 = next }
    }

    /// Checks `request` and signs a certificate for its identity, as of `now`.
    ///
    /// Order: the identity's trust domain, the CSR (PEM, signature, key type, SANs), the lifetime, the
    /// signer's own validity; then signing, and an independent check of the result. Throws
    /// ``IssuanceError`` with a code and a message for the requester.
    public func issue(_ request: IssuanceRequest, at now: Date) throws -> Issuance {
        let identity = request.identity
        guard identity.trustDomain == trustDomain else {
            throw IssuanceError(
                .foreignTrustDomain,
                "The request is for \(identity.uri), but this CA issues only under spiffe://\(trustDomain.name). "
                    + "Set the client's trust domain to \(trustDomain.name)."
            )
        }
        let csr = try WorkloadCSR.check(pem: request.csrPEM, for: identity)
        let ttl = try policy.grantedTTL(forRequested: request.requestedTTL)
        let signer = self.signingIdentity
        let ca = signer.certificate
        guard now >= ca.notValidBefore, now < ca.notValidAfter else {
            let state = now < ca.notValidBefore ? "is not valid before \(ca.notValidBefore)" : "expired at \(ca.notValidAfter)"
            throw IssuanceError(
                .signerNotValid,
                "The CA certificate \(state) (now: \(now)); nothing can be issued. Rotate the CA, or check the clock."
            )
        }
        let notBefore = now.addingTimeInterval(-TimeInterval(policy.backdate.components.seconds))
        let notAfter = min(now.addingTimeInterval(TimeInterval(ttl.components.seconds)), ca.notValidAfter)
        let publicKey = csr.request.publicKey
        let leaf: Certificate
        do {
            leaf = try Certificate(
                version: .v3,
                serialNumber: RandomSerial.make(),
                publicKey: publicKey,
                notValidBefore: notBefore,
                notValidAfter: notAfter,
                issuer: ca.subject,
                subject: DistinguishedName(),
                signatureAlgorithm: signer.signatureAlgorithm,
                extensions: try X509SVIDProfile.extensions(
                    identity: identity,
                    publicKey: publicKey,
                    isRSA: csr.keyType.hasPrefix("rsa-"),
                    issuer: ca
                ),
                issuerPrivateKey: signer.privateKey
            )
        } catch let error as IssuanceError {
            throw error
        } catch {
            throw IssuanceError(.signingFailed, "Signing the certificate failed (\(error)).")
        }
        try X509SVIDProfile.validate(leaf, identity: identity, signer: signer)
        return Issuance(
            certificate: leaf,
            identity: identity,
            intermediates: signer.bundle.contains(ca) ? signer.intermediates : [ca] + signer.intermediates,
            bundle: signer.bundle,
            issuedAt: now,
            requestedTTL: request.requestedTTL.flatMap { $0 > .zero ? $0 : nil },
            grantedTTL: .seconds(Int64(notAfter.timeIntervalSince(now).rounded(.down))),
            keyType: csr.keyType,
            csrSHA256: csr.sha256,
            issuerFingerprint: ca.sha256Fingerprint
        )
    }
}

/// What a caller asks the CA for: a CSR, the identity it authenticated as, and an optional lifetime.
public struct IssuanceRequest: Sendable {
    /// The PEM-encoded PKCS#10 request.
    public var csrPEM: String
    /// The authenticated (and authorized) identity the certificate will carry.
    public var identity: SPIFFEID
    /// The requested lifetime; `nil` or ≤ 0 means the policy default.
    public var requestedTTL: Duration?

    /// Creates a request.
    public init(csrPEM: String, identity: SPIFFEID, requestedTTL: Duration? = nil) {
        self.csrPEM = csrPEM
        self.identity = identity
        self.requestedTTL = requestedTTL
    }
}

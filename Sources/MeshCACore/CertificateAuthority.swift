#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization
import X509

/// Issues X509-SVIDs for one trust domain.
///
/// Its only mutable state is the active signing identity, swapped by ``activate(_:)``; issuance takes a
/// snapshot under a short lock and signs outside it, so concurrent requests sign in parallel. Time is an
/// argument, never read from the wall clock, so tests can issue "in the future" or "in the past".
///
/// What every issuance derives from the signing identity alone (the CA's fingerprint and key identifier,
/// and the PEM text of the chain handed out after each leaf) is computed once per activation, not per request.
public final class CertificateAuthority: Sendable {
    /// The trust domain every issued identity must belong to.
    public let trustDomain: TrustDomain
    /// The lifetime rules.
    public let policy: IssuancePolicy
    private let active: Mutex<ActiveSigner>

    /// The signing identity together with what each issuance takes from it unchanged.
    struct ActiveSigner: Sendable {
        let identity: SigningIdentity
        /// SHA-256 of the CA certificate's DER, lowercase hex (the ledger's issuer fingerprint).
        let fingerprint: String
        /// The CA's subject key identifier, which every leaf carries as its authority key identifier.
        let keyIdentifier: ArraySlice<UInt8>
        /// The certificates between a leaf and the roots: the signing CA (unless it is itself a root in
        /// the bundle), then the chain above it.
        let intermediates: [Certificate]
        /// Istio's `cert_chain` after the leaf: one PEM element per intermediate, then the whole bundle.
        let chainTailPEM: [String]

        init(_ identity: SigningIdentity) {
            let ca = identity.certificate
            self.identity = identity
            self.fingerprint = ca.sha256Fingerprint
            self.keyIdentifier = ca.issuingKeyIdentifier
            self.intermediates = identity.chainAboveLeaf
            self.chainTailPEM = intermediates.map(\.pem) + [identity.bundle.map(\.pem).joined()]
        }
    }

    /// A CA for `trustDomain` that signs with `signer` under `policy`.
    public init(trustDomain: TrustDomain, signer: SigningIdentity, policy: IssuancePolicy = .standard) {
        self.trustDomain = trustDomain
        self.policy = policy
        self.active = Mutex(ActiveSigner(signer))
    }

    /// The identity currently used for signing.
    public var signingIdentity: SigningIdentity { active.withLock { $0.identity } }

    /// Switches signing to `next` for every later request.
    public func activate(_ next: SigningIdentity) {
        let prepared = ActiveSigner(next)
        active.withLock { $0 = prepared }
    }

    /// Istio's `cert_chain` for `issuance`, the same strings as ``Issuance/istioCertChain``: the leaf's PEM,
    /// then each intermediate's, then the whole bundle. The part after the leaf comes from the active
    /// signer's cache when the issuance was signed by it, which is every issuance but the few racing an
    /// ``activate(_:)``.
    public func istioCertChain(for issuance: Issuance) -> [String] {
        let active = self.active.withLock { $0 }
        guard issuance.intermediates == active.intermediates, issuance.bundle == active.identity.bundle else {
            return issuance.istioCertChain
        }
        return [Self.pem(certificateDER: issuance.certificate.derBytes)] + active.chainTailPEM
    }

    /// The ``Issuance`` of `certificate`, a workload certificate the active signer issued earlier for
    /// `identity`, to be handed out again to a client that repeats a request whose answer it lost. Nothing is
    /// signed. Nil when `issuerFingerprint` (the ledger's) is not the active signer's: after a rotation the
    /// chain that certificate needs is not the one this CA now sends, so the request is treated as new.
    public func issuanceAgain(
        of certificate: Certificate, identity: SPIFFEID, issuedAt: Date, requestedTTL: Duration?, keyType: String,
        csrSHA256: String, issuerFingerprint: String
    ) -> Issuance? {
        let active = self.active.withLock { $0 }
        guard issuerFingerprint == active.fingerprint else { return nil }
        return Issuance(
            certificate: certificate,
            identity: identity,
            intermediates: active.intermediates,
            bundle: active.identity.bundle,
            issuedAt: issuedAt,
            requestedTTL: requestedTTL,
            grantedTTL: .seconds(Int64(certificate.notValidAfter.timeIntervalSince(issuedAt).rounded(.down))),
            keyType: keyType,
            csrSHA256: csrSHA256,
            issuerFingerprint: issuerFingerprint
        )
    }

    /// One `CERTIFICATE` PEM block ending in a newline: the same text as `Certificate.pem`, built on bytes
    /// (64-character base64 lines) instead of by splitting a `String`.
    static func pem(certificateDER der: [UInt8]) -> String {
        let base64 = Data(der).base64EncodedData()
        var text: [UInt8] = []
        text.reserveCapacity(base64.count + base64.count / 64 + 56)
        text.append(contentsOf: "-----BEGIN CERTIFICATE-----\n".utf8)
        var start = base64.startIndex
        while start < base64.endIndex {
            let end = base64.index(start, offsetBy: 64, limitedBy: base64.endIndex) ?? base64.endIndex
            text.append(contentsOf: base64[start..<end])
            text.append(UInt8(ascii: "\n"))
            start = end
        }
        text.append(contentsOf: "-----END CERTIFICATE-----\n".utf8)
        return String(decoding: text, as: UTF8.self)
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
        let csr = try WorkloadCSR.check(pem: request.csrPEM, for: identity, allowedDNSNames: request.allowedDNSNames)
        let ttl = try policy.grantedTTL(forRequested: request.requestedTTL)
        let active = self.active.withLock { $0 }
        let signer = active.identity
        let ca = signer.certificate
        guard now >= ca.notValidBefore, now < ca.notValidAfter else {
            let state = now < ca.notValidBefore ? "is not valid before \(ca.notValidBefore)" : "expired at \(ca.notValidAfter)"
            throw IssuanceError(
                .signerNotValid,
                "The CA certificate \(state) (now: \(now)); nothing can be issued. Rotate the CA, or check the clock."
            )
        }
        // As `sign` computes it, before X.509 truncates it to whole seconds: what the granted lifetime is counted from.
        let notAfter = min(now.addingTimeInterval(TimeInterval(ttl.components.seconds)), ca.notValidAfter)
        let publicKey = csr.request.publicKey
        let leaf: Certificate
        do {
            leaf = try sign(
                with: signer, publicKey: publicKey, subject: DistinguishedName(), ttl: ttl,
                extensions: try X509SVIDProfile.extensions(
                    identity: identity,
                    dnsNames: csr.dnsNames,
                    publicKey: publicKey,
                    isRSA: csr.keyType.hasPrefix("rsa-"),
                    issuerKeyIdentifier: active.keyIdentifier
                ),
                at: now
            )
        } catch let error as IssuanceError {
            throw error
        } catch {
            throw IssuanceError(.signingFailed, "Signing the certificate failed (\(error)).")
        }
        try X509SVIDProfile.validate(leaf, identity: identity, dnsNames: csr.dnsNames, signer: signer)
        return Issuance(
            certificate: leaf,
            identity: identity,
            intermediates: active.intermediates,
            bundle: signer.bundle,
            issuedAt: now,
            requestedTTL: request.requestedTTL.flatMap { $0 > .zero ? $0 : nil },
            grantedTTL: .seconds(Int64(notAfter.timeIntervalSince(now).rounded(.down))),
            keyType: csr.keyType,
            csrSHA256: csr.sha256,
            issuerFingerprint: active.fingerprint
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
    /// The DNS names this identity may ask for as DNS SANs (the daemon's `allow-dns-sans`); empty: none.
    public var allowedDNSNames: [DNSNamePattern]

    /// Creates a request.
    public init(csrPEM: String, identity: SPIFFEID, requestedTTL: Duration? = nil, allowedDNSNames: [DNSNamePattern] = []) {
        self.csrPEM = csrPEM
        self.identity = identity
        self.requestedTTL = requestedTTL
        self.allowedDNSNames = allowedDNSNames
    }
}

extension CertificateAuthority {
    /// A certificate for `publicKey` signed by `signer` (this CA's signing identity, read once by the caller so a
    /// concurrent rotation cannot mix two): a random serial, valid from `now` less the policy's backdate
    /// for `ttl` (never past the CA's own expiry), issued under the CA's subject with the algorithm its key implies.
    /// Every certificate the CA makes (leaves, serving certificates, intermediates) is built here.
    func sign(
        with signer: SigningIdentity, publicKey: Certificate.PublicKey, subject: DistinguishedName, ttl: Duration,
        extensions: Certificate.Extensions, at now: Date
    ) throws -> Certificate {
        let ca = signer.certificate
        return try Certificate(
            version: .v3,
            serialNumber: RandomSerial.make(),
            publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-TimeInterval(policy.backdate.components.seconds)),
            notValidAfter: min(now.addingTimeInterval(TimeInterval(ttl.components.seconds)), ca.notValidAfter),
            issuer: ca.subject,
            subject: subject,
            signatureAlgorithm: signer.signatureAlgorithm,
            extensions: extensions,
            issuerPrivateKey: signer.privateKey
        )
    }
}

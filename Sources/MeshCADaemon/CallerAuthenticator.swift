import Foundation
import MeshCACore
import MeshCALedger
import MeshCATransport
import X509

/// Decides who a `CreateCertificate` call comes from, in istiod's order: a verified client certificate
/// first (renewal), then the bearer credential: a meshca join token (`mct1.…`) or, when JWT keys are
/// configured, a Kubernetes service-account token. No credential means no certificate.
///
/// A client certificate renews only when it is one this CA issued: the ledger must hold exactly that
/// certificate (the whole DER, not just its serial, which anyone holding another CA key under the bundle
/// can copy), unrevoked; and no certificate above it in the presented chain may be recorded as revoked
/// (an intermediate made by `meshca intermediate create` and revoked with `cACompromise`). Path validation
/// to the bundle alone is not enough: such an intermediate can sign a leaf for any SPIFFE ID. One
/// primary-key lookup per renewal, plus one per chain element that is not the CA's own certificate.
public struct CallerAuthenticator: Sendable {
    private let authority: CertificateAuthority
    private let tokens: TokenAuthenticator
    private let jwt: JWTAuthenticator?
    private let ledger: any IssuanceLedger
    private let repeats: RepeatedRequests

    /// Authenticates against `authority`'s bundle, join tokens, and optionally service-account tokens; client
    /// certificates must be recorded, unrevoked, in `ledger`. A used-up join token still authenticates a
    /// request that repeats, within `retryWindow`, the one that used it (see ``RepeatedRequests``).
    public init(
        authority: CertificateAuthority, tokens: TokenAuthenticator, jwt: JWTAuthenticator?,
        ledger: any IssuanceLedger, retryWindow: Duration = .zero
    ) {
        self.authority = authority
        self.tokens = tokens
        self.jwt = jwt
        self.ledger = ledger
        self.repeats = RepeatedRequests(ledger: ledger, window: retryWindow)
    }

    /// The caller of `call` as of `now`, or ``AuthenticationFailure``.
    public func authenticate(_ call: CertificateCall, at now: Date) async throws -> AuthenticatedCaller {
        if let chain = call.clientChain, let leaf = chain.first {
            let caller = try clientCertificateCaller(leaf, at: now)
            try await refuseUnlessRecorded(chain, at: now)
            return caller
        }
        guard let header = call.authorization else {
            throw AuthenticationFailure(
                method: "none",
                "The request carries no credential. Send `authorization: Bearer <join token or service-account JWT>`, or a client certificate issued by this CA."
            )
        }
        guard header.hasPrefix("Bearer ") else {
            throw AuthenticationFailure(method: "none", "The authorization header must be `Bearer <credential>`.")
        }
        let credential = String(header.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces)
        if JoinToken.looksLikeToken(credential) {
            return try await tokens.authenticate(credential, at: now) { caller in
                await repeats.earlierIssuance(csrPEM: call.csrPEM, identity: caller.identity, requester: caller.requester, at: now) != nil
            }
        }
        guard let jwt else {
            throw AuthenticationFailure(
                method: "jwt",
                "The bearer credential is not a meshca join token, and this CA accepts no service-account JWTs (start `meshca serve` with --jwt-keys to allow them)."
            )
        }
        return try await jwt.authenticate(credential, at: now)
    }

    /// The identity of a client certificate verified in the TLS handshake, checked again at `now`
    /// because a connection can outlive the certificate it was opened with.
    private func clientCertificateCaller(_ leaf: Certificate, at now: Date) throws -> AuthenticatedCaller {
        func fail(_ message: String) -> AuthenticationFailure { AuthenticationFailure(method: "mtls", message) }
        guard now >= leaf.notValidBefore, now <= leaf.notValidAfter else {
            throw fail("The client certificate (serial \(leaf.serialHex)) expired at \(leaf.notValidAfter.formatted(.iso8601)); bootstrap again with a join token.")
        }
        guard case .meetsPolicy = SPIFFEVerifierPolicy.evaluate(leaf: leaf, trustDomain: authority.trustDomain, expectedID: nil),
            let uri = leaf.uriSANs.first, let identity = try? SPIFFEID(parsing: uri)
        else {
            throw AuthenticationFailure(
                method: "mtls", "The client certificate is not an X509-SVID of trust domain \(authority.trustDomain.name).",
                noIdentity: true)
        }
        return AuthenticatedCaller(identity: identity, requester: Requester(name: "mtls:\(leaf.serialHex)", authMethod: "mtls"))
    }

    /// Throws unless the ledger records `chain`'s leaf, byte for byte, as a certificate this CA issued that is
    /// not revoked at `now`, and records none of the other elements as revoked.
    private func refuseUnlessRecorded(_ chain: [Certificate], at now: Date) async throws {
        func fail(_ message: String) -> AuthenticationFailure { AuthenticationFailure(method: "mtls", message) }
        let bootstrap = "Bootstrap again with a new join token (`meshca token create`, then start the agent with it)."
        let signer = authority.signingIdentity
        let own = Set([signer.certificate] + signer.intermediates + signer.bundle)
        for element in chain.dropFirst() where !own.contains(element) {
            guard let record = try await ledger.issuance(serial: element.serialHex), record.certificateDER == element.derBytes,
                let revokedAt = record.revokedAt, revokedAt <= now
            else { continue }
            throw fail(
                "The client certificate's chain contains a revoked certificate: \(element.subject) (serial "
                    + "\(element.serialHex)) was revoked at \(revokedAt.formatted(.iso8601)) (reason: "
                    + "\(record.revocationReason ?? "unspecified")), so nothing it signed can renew. \(bootstrap)"
            )
        }
        let leaf = chain[0]
        guard let record = try await ledger.issuance(serial: leaf.serialHex) else {
            throw fail(
                "The client certificate (serial \(leaf.serialHex), issuer \(leaf.issuer)) was not issued by this CA: "
                    + "its ledger records no certificate with that serial. Only certificates this CA issued can renew "
                    + "over mTLS. \(bootstrap)"
            )
        }
        guard record.certificateDER == leaf.derBytes else {
            throw fail(
                "The client certificate (serial \(leaf.serialHex), issuer \(leaf.issuer)) was not issued by this CA: "
                    + "its ledger records a different certificate with that serial (a copied serial under another "
                    + "signing key). Only certificates this CA issued can renew over mTLS. \(bootstrap)"
            )
        }
        if let revokedAt = record.revokedAt, revokedAt <= now {
            throw fail(
                "The client certificate (serial \(leaf.serialHex), \(record.spiffeID)) was revoked at "
                    + "\(revokedAt.formatted(.iso8601)) (reason: \(record.revocationReason ?? "unspecified")), so it "
                    + "cannot renew. \(bootstrap)"
            )
        }
    }

    /// The TLS-handshake check of a client chain (leaf first): RFC 5280 path validation to the CA's
    /// current bundle plus the X509-SVID leaf rules. Used by ``TLSListener``.
    public func verifyClientChain(_ chain: [Certificate]) async -> Bool {
        guard let leaf = chain.first else { return false }
        let signer = authority.signingIdentity
        var verifier = Verifier(rootCertificates: CertificateStore(signer.bundle)) {
            RFC5280Policy()
            SPIFFEVerifierPolicy(trustDomain: authority.trustDomain)
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(chain.dropFirst() + [signer.certificate] + signer.intermediates))
        if case .validCertificate = result { return true }
        return false
    }
}

import Foundation
import MeshCACore
import MeshCALedger
import MeshCATransport
import X509

/// Decides who a `CreateCertificate` call comes from, in istiod's order: a verified client certificate
/// first (renewal), then the bearer credential: a meshca join token (`mct1.…`) or, when JWT keys are
/// configured, a Kubernetes service-account token. No credential means no certificate.
///
/// A client certificate the ledger records as revoked is refused (one primary-key lookup per renewal), so a
/// revoked workload cannot renew its way back; it must bootstrap again with a new join token.
public struct CallerAuthenticator: Sendable {
    private let authority: CertificateAuthority
    private let tokens: TokenAuthenticator
    private let jwt: JWTAuthenticator?
    private let revocations: (any IssuanceLedger)?

    /// Authenticates against `authority`'s bundle, join tokens, and optionally service-account tokens; with
    /// `revocations`, client certificates that ledger records as revoked are refused.
    public init(
        authority: CertificateAuthority, tokens: TokenAuthenticator, jwt: JWTAuthenticator?,
        revocations: (any IssuanceLedger)? = nil
    ) {
        self.authority = authority
        self.tokens = tokens
        self.jwt = jwt
        self.revocations = revocations
    }

    /// The caller of `call` as of `now`, or ``AuthenticationFailure``.
    public func authenticate(_ call: CertificateCall, at now: Date) async throws -> AuthenticatedCaller {
        if let chain = call.clientChain, let leaf = chain.first {
            let caller = try clientCertificateCaller(leaf, at: now)
            try await refuseIfRevoked(leaf, at: now)
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
            return try await tokens.authenticate(credential, at: now)
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
            throw fail("The client certificate is not an X509-SVID of trust domain \(authority.trustDomain.name).")
        }
        return AuthenticatedCaller(identity: identity, requester: Requester(name: "mtls:\(leaf.serialHex)", authMethod: "mtls"))
    }

    /// Throws when the ledger records `leaf` as revoked at or before `now`.
    private func refuseIfRevoked(_ leaf: Certificate, at now: Date) async throws {
        guard let revocations, let record = try await revocations.issuance(serial: leaf.serialHex),
            let revokedAt = record.revokedAt, revokedAt <= now
        else { return }
        throw AuthenticationFailure(
            method: "mtls",
            "The client certificate (serial \(leaf.serialHex), \(record.spiffeID)) was revoked at "
                + "\(revokedAt.formatted(.iso8601)) (reason: \(record.revocationReason ?? "unspecified")), so it "
                + "cannot renew. Bootstrap again with a new join token (`meshca token create`, then start the agent "
                + "with it)."
        )
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

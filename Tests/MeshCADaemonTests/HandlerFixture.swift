import Foundation
import GRPCCore
import MeshCACore
import MeshCADaemon
import MeshCALedger
import MeshCATestSupport
import MeshCATransport
import SwiftASN1
import X509

/// The daemon's request path in process, for tests that drive `CreateCertificateHandler` or the
/// `IssuanceService` behind it directly: a ``TestPKI``, the handler, the caller authenticator and the service over
/// one ledger, with a join token for default/was, and the handler's log captured.
///
/// The ledger is a ``MemoryLedger`` where it is only a seam; `durable: true` gives a real `SQLiteLedger` in
/// the fixture's directory, for tests about what the ledger records (a repeat row and not a second issuance, a
/// spent token refused inside the ledger's transaction).
struct HandlerFixture {
    let dir: TemporaryDirectory
    let pki: TestPKI
    let ledger: any IssuanceLedger
    let service: IssuanceService
    let handler: CreateCertificateHandler
    let log = CapturedLog()
    let token: JoinToken
    /// `spiffe://cluster.local/ns/default/sa/was`, the identity the token is for.
    let identity: SPIFFEID

    /// A fixture whose token allows `tokenUses` uses and whose service and authenticator hand a repeated request
    /// the certificate already issued within `retryWindow` (off by default); `trustedNodeAccounts` (`ns/sa`) may
    /// send `ImpersonatedIdentity`; `dnsSANs` says who may ask for DNS SANs.
    init(
        _ name: String, durable: Bool = false, tokenUses: Int = 10, retryWindow: Duration = .zero,
        jwt: JWTAuthenticator? = nil, trustedNodeAccounts: [String] = [], dnsSANs: DNSSANPolicy = DNSSANPolicy()
    ) async throws {
        dir = try TemporaryDirectory(name)
        let now = Date()
        pki = try TestPKI()
        ledger = durable ? try SQLiteLedger(path: dir.file("ledger.db")) : MemoryLedger()
        token = JoinToken.generate(rootFingerprint: pki.root.sha256Fingerprint)
        try await ledger.createToken(
            JoinTokenRecord(
                id: token.id, secretSHA256: token.secretSHA256, namespace: "default", serviceAccount: "was",
                createdAt: now, expiresAt: now.addingTimeInterval(3600), maxUses: tokenUses, createdBy: "test"))
        identity = try pki.identity()
        service = IssuanceService(authority: pki.authority, ledger: ledger, retryWindow: retryWindow)
        handler = CreateCertificateHandler(
            service: service,
            authenticator: CallerAuthenticator(
                authority: pki.authority, tokens: TokenAuthenticator(ledger: ledger, trustDomain: pki.trustDomain),
                jwt: jwt, ledger: ledger, retryWindow: retryWindow),
            rateLimiter: nil, trustedNodeAccounts: trustedNodeAccounts, dnsSANs: dnsSANs, metrics: CAMetrics(), logger: log.logger())
    }

    /// A call with the fixture's join token.
    func call(csr: String, metadata: [String: String] = [:]) -> CertificateCall {
        CertificateCall(
            csrPEM: csr, requestedTTL: nil, metadata: metadata, authorization: "Bearer \(token.encoded)",
            remotePeer: "ipv4:127.0.0.1:40000")
    }

    /// The RPC error `call` ends in, or nil when it succeeds.
    func failure(_ call: CertificateCall) async -> RPCError? {
        await RPCResult.failure { _ = try await handler.createCertificate(call) }
    }

    /// CreateCertificate for `csr` with the join token; the leaf of the answer.
    func create(_ csr: String) async throws -> Certificate {
        let chain = try await handler.createCertificate(call(csr: csr))
        return try Certificate(pemEncoded: chain[0])
    }

    /// A CSR for ``identity`` with a fresh key.
    func csr() throws -> String { try TestPKI.csr(for: identity) }
}

import Foundation
import GRPCCore
import MeshCACore
import MeshCADaemon
import MeshCALedger
import MeshCATestSupport
import MeshCATransport
import Testing

/// `citadel_server_csr_sign_err_count{error}`: a request that passed every check but could not be recorded is
/// counted under the daemon error's code and answered UNAVAILABLE (retryable); no certificate leaves the CA.
@Suite("Sign errors in the metrics")
struct SignErrorMetricTests {
    @Test("A full ledger counts citadel_server_csr_sign_err_count{error=\"not-recorded\"} and answers UNAVAILABLE")
    func fullLedgerCountsNotRecorded() async throws {
        let dir = try TemporaryDirectory("signerr")
        defer { dir.remove() }
        let pki = try TestPKI()
        _ = try SQLiteLedger(path: dir.file("ledger.db"))  // created at its normal size
        var configuration = SQLiteLedger.Configuration()
        configuration.maxPageCount = 1  // the file can no longer grow: the first record that needs a page fails
        let ledger = try SQLiteLedger(path: dir.file("ledger.db"), configuration: configuration)
        let token = JoinToken.generate(rootFingerprint: pki.root.sha256Fingerprint)
        let now = Date()
        try await ledger.createToken(
            JoinTokenRecord(
                id: token.id, secretSHA256: token.secretSHA256, namespace: "default", serviceAccount: "was",
                createdAt: now, expiresAt: now.addingTimeInterval(3600), maxUses: 1000, createdBy: "test"))
        let metrics = CAMetrics()
        let handler = CreateCertificateHandler(
            service: IssuanceService(authority: pki.authority, ledger: ledger),
            authenticator: CallerAuthenticator(
                authority: pki.authority, tokens: TokenAuthenticator(ledger: ledger, trustDomain: pki.trustDomain),
                jwt: nil, ledger: ledger),
            rateLimiter: nil, metrics: metrics, logger: CapturedLog().logger())
        var code: RPCError.Code?
        for _ in 0..<500 {
            let call = CertificateCall(
                csrPEM: try TestPKI.csr(for: try pki.identity()), requestedTTL: nil, metadata: [:],
                authorization: "Bearer \(token.encoded)", remotePeer: "ipv4:127.0.0.1:40000")
            code = await RPCResult.code { _ = try await handler.createCertificate(call) }
            if code != nil { break }
        }
        #expect(code == .unavailable, "a ledger that cannot record answers UNAVAILABLE: retryable, nothing issued")
        #expect(metrics.exposition().contains(#"citadel_server_csr_sign_err_count{error="not-recorded"} 1"#), "\(metrics.exposition())")
    }
}

import Foundation
import MeshCACore
import MeshCAIO
import MeshCALedger
import SwiftASN1
import X509

/// The one issuance path every front end uses (`meshca issue`, and later the daemon's gRPC API):
/// authorize and sign in the core, record in the ledger, and only then hand the certificate out.
///
/// Refused requests are recorded as rejections. When the ledger cannot commit the issuance, the signed
/// certificate is dropped and ``DaemonErrorCode/notRecorded`` is thrown: a certificate the ledger does
/// not know about never leaves the CA.
///
/// With a retry window (the daemon's `retry-window`), a request repeated after its answer was lost gets the
/// certificate already issued for it (see ``RepeatedRequests``), recorded as a `repeated-request` row among
/// the rejections, not as a second issuance.
public struct IssuanceService: Sendable {
    /// The CA that signs.
    public let authority: CertificateAuthority
    /// Where every issuance and rejection is recorded.
    public let ledger: any IssuanceLedger
    /// Which requests are repeats of an earlier one.
    public let repeats: RepeatedRequests

    /// Joins a CA and a ledger; `retryWindow` is how long after an issuance a repeated request gets the same
    /// certificate (`.zero`, the default, signs a new one every time, as `meshca issue` does).
    public init(authority: CertificateAuthority, ledger: any IssuanceLedger, retryWindow: Duration = .zero) {
        self.authority = authority
        self.ledger = ledger
        self.repeats = RepeatedRequests(ledger: ledger, window: retryWindow)
    }

    /// Issues a certificate for `request` on behalf of `requester` (connected from `peer`), as of `now`.
    ///
    /// When `token` is given, one use of that join token is consumed in the same ledger transaction as
    /// the issuance record; if the token can no longer be used (a concurrent request took its last use),
    /// nothing is recorded, the certificate is dropped, and ``AuthenticationFailure`` is thrown, unless that
    /// concurrent request was this same one (a repeat): then its certificate is the answer.
    public func issue(
        _ request: IssuanceRequest,
        requester: Requester,
        peer: String = "",
        consuming token: TokenUse? = nil,
        at now: Date
    ) async throws -> Issuance {
        if let earlier = try await answerAgain(request, requester: requester, peer: peer, at: now) { return earlier }
        let issuance: Issuance
        do {
            issuance = try authority.issue(request, at: now)
        } catch let refusal as IssuanceError {
            let rejection = RejectionRecord(
                occurredAt: now,
                requester: requester.name,
                authMethod: requester.authMethod,
                requestedIdentity: request.identity.uri,
                reasonCode: refusal.code.rawValue,
                message: refusal.message,
                peer: peer
            )
            // The refusal is what the caller must see; a ledger that cannot record it is reported
            // through the error text rather than replacing the refusal.
            do {
                try await ledger.record(rejection)
            } catch {
                throw IssuanceError(refusal.code, refusal.message + " (The refusal could not be recorded in the ledger: \(error))")
            }
            throw refusal
        }
        do {
            try await ledger.record(IssuanceRecord(issuance, requester: requester, peer: peer), consuming: token)
        } catch let error as LedgerError where error.code == .tokenRejected {
            if let earlier = try await answerAgain(request, requester: requester, peer: peer, at: now) { return earlier }
            try? await ledger.record(
                RejectionRecord(
                    occurredAt: now,
                    requester: requester.name,
                    authMethod: requester.authMethod,
                    requestedIdentity: request.identity.uri,
                    reasonCode: CAError.Code.tokenRejected.rawValue,
                    message: error.message,
                    peer: peer
                )
            )
            throw AuthenticationFailure(.tokenRejected, method: "token", error.message)
        } catch {
            throw DaemonError(
                .notRecorded,
                "The certificate was signed but could not be recorded in the ledger, so it was not handed out: \(error)"
            )
        }
        return issuance
    }

    /// The certificate already issued for `request` when it repeats an earlier one, after checking the CSR as
    /// for a new certificate (its signature proves the requester holds the key) and recording the repeat;
    /// nil when it is not a repeat.
    private func answerAgain(_ request: IssuanceRequest, requester: Requester, peer: String, at now: Date) async throws -> Issuance? {
        guard
            let record = await repeats.earlierIssuance(csrPEM: request.csrPEM, identity: request.identity, requester: requester, at: now),
            let csr = try? WorkloadCSR.check(pem: request.csrPEM, for: request.identity, allowedDNSNames: request.allowedDNSNames),
            csr.request.publicKey.sha256Fingerprint == record.publicKeySHA256,
            let certificate = try? Certificate(derEncoded: record.certificateDER),
            let issuance = authority.issuanceAgain(
                of: certificate, identity: request.identity, issuedAt: record.issuedAt,
                requestedTTL: record.requestedTTLSeconds.map { .seconds($0) }, keyType: record.keyType,
                csrSHA256: record.csrSHA256, issuerFingerprint: record.issuerFingerprint)
        else { return nil }
        let repeated = RejectionRecord(
            occurredAt: now,
            requester: requester.name,
            authMethod: requester.authMethod,
            requestedIdentity: request.identity.uri,
            reasonCode: CAError.Code.repeatedRequest.rawValue,
            message: "A repeat of the request answered at \(record.issuedAt.formatted(.iso8601)) (same credential, same "
                + "public key, within the retry-window) got the same certificate again, serial \(record.serial); "
                + "nothing new was signed.",
            peer: peer
        )
        do {
            try await ledger.record(repeated)
        } catch {
            throw DaemonError(
                .notRecorded,
                "The repeated request could not be recorded in the ledger, so its certificate was not handed out again: \(error)"
            )
        }
        return issuance
    }
}

extension IssuanceRecord {
    /// The ledger row for an issuance.
    public init(_ issuance: Issuance, requester: Requester, peer: String = "") {
        let leaf = issuance.certificate
        let workload = issuance.identity.workload
        self.init(
            serial: leaf.serialHex,
            spiffeID: issuance.identity.uri,
            trustDomain: issuance.identity.trustDomain.name,
            namespace: workload?.namespace ?? "",
            serviceAccount: workload?.serviceAccount ?? "",
            sans: leaf.sanStrings,
            notBefore: leaf.notValidBefore,
            notAfter: leaf.notValidAfter,
            issuedAt: issuance.issuedAt,
            requestedTTLSeconds: issuance.requestedTTL.map { $0.components.seconds },
            grantedTTLSeconds: issuance.grantedTTL.components.seconds,
            keyType: issuance.keyType,
            publicKeySHA256: leaf.publicKey.sha256Fingerprint,
            csrSHA256: issuance.csrSHA256,
            certificateDER: leaf.derBytes,
            issuerFingerprint: issuance.issuerFingerprint,
            requester: requester.name,
            authMethod: requester.authMethod,
            peer: peer
        )
    }
}

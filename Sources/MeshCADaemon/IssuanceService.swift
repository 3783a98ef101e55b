import Foundation
import MeshCACore
import MeshCAIO
import MeshCALedger
import X509

/// The one issuance path every front end uses (`meshca issue`, and later the daemon's gRPC API):
/// authorize and sign in the core, record in the ledger, and only then hand the certificate out.
///
/// Refused requests are recorded as rejections. When the ledger cannot commit the issuance, the signed
/// certificate is dropped and ``DaemonError/Code/notRecorded`` is thrown: a certificate the ledger does
/// not know about never leaves the CA.
public struct IssuanceService: Sendable {
    /// The CA that signs.
    public let authority: CertificateAuthority
    /// Where every issuance and rejection is recorded.
    public let ledger: any IssuanceLedger

    /// Joins a CA and a ledger.
    public init(authority: CertificateAuthority, ledger: any IssuanceLedger) {
        self.authority = authority
        self.ledger = ledger
    }

    /// Issues a certificate for `request` on behalf of `requester` (connected from `peer`), as of `now`.
    ///
    /// When `token` is given, one use of that join token is consumed in the same ledger transaction as
    /// the issuance record; if the token can no longer be used (a concurrent request took its last use),
    /// nothing is recorded, the certificate is dropped, and ``AuthenticationFailure`` is thrown.
    public func issue(
        _ request: IssuanceRequest,
        requester: Requester,
        peer: String = "",
        consuming token: TokenUse? = nil,
        at now: Date
    ) async throws -> Issuance {
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
            try? await ledger.record(
                RejectionRecord(
                    occurredAt: now,
                    requester: requester.name,
                    authMethod: requester.authMethod,
                    requestedIdentity: request.identity.uri,
                    reasonCode: "token-rejected",
                    message: error.message,
                    peer: peer
                )
            )
            throw AuthenticationFailure(method: "token", error.message)
        } catch {
            throw DaemonError(
                .notRecorded,
                "The certificate was signed but could not be recorded in the ledger, so it was not handed out: \(error)"
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

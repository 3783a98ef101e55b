import Foundation
import MeshCACore
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

    /// Issues a certificate for `request` on behalf of `requester`, as of `now`.
    public func issue(_ request: IssuanceRequest, requester: Requester, at now: Date) async throws -> Issuance {
        let issuance: Issuance
        do {
            issuance = try authority.issue(request, at: now)
        } catch let refusal as IssuanceError {
            let rejection = RejectionRecord(
                id: nil,
                occurredAt: now,
                requester: requester.name,
                authMethod: requester.authMethod,
                requestedIdentity: request.identity.uri,
                reasonCode: refusal.code.rawValue,
                message: refusal.message
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
            try await ledger.record(IssuanceRecord(issuance, requester: requester))
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
    public init(_ issuance: Issuance, requester: Requester) {
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
            authMethod: requester.authMethod
        )
    }
}

import Foundation
import MeshCADaemon

/// The stable JSON shapes of `meshca audit ... --json`. Field names are snake_case and never renamed;
/// new fields may be added. Times are RFC 3339 UTC strings.
enum AuditJSON {
    struct Issuance: Encodable {
        let serial: String
        let spiffeID: String
        let trustDomain: String
        let namespace: String
        let serviceAccount: String
        let sans: [String]
        let notBefore: String
        let notAfter: String
        let issuedAt: String
        let requestedTTLSeconds: Int64?
        let grantedTTLSeconds: Int64
        let status: String
        let keyType: String
        let publicKeySHA256: String
        let csrSHA256: String
        let certificateSHA256: String
        let issuerFingerprint: String
        let requester: String
        let authMethod: String
        let peer: String
        let revokedAt: String?
        let revocationReason: String?
        let certificatePEM: String

        init(_ record: AuditEntry) {
            serial = record.serial
            spiffeID = record.spiffeID
            trustDomain = record.trustDomain
            namespace = record.namespace
            serviceAccount = record.serviceAccount
            sans = record.sans
            notBefore = record.notBefore.rfc3339
            notAfter = record.notAfter.rfc3339
            issuedAt = record.issuedAt.rfc3339
            requestedTTLSeconds = record.requestedTTLSeconds
            grantedTTLSeconds = record.grantedTTLSeconds
            status = record.status
            keyType = record.keyType
            publicKeySHA256 = record.publicKeySHA256
            csrSHA256 = record.csrSHA256
            certificateSHA256 = record.certificateSHA256
            issuerFingerprint = record.issuerFingerprint
            requester = record.requester
            authMethod = record.authMethod
            peer = record.peer
            revokedAt = record.revokedAt?.rfc3339
            revocationReason = record.revocationReason
            certificatePEM = record.certificatePEM
        }

        enum CodingKeys: String, CodingKey {
            case serial, namespace, sans, status, requester
            case spiffeID = "spiffe_id", trustDomain = "trust_domain", serviceAccount = "service_account"
            case notBefore = "not_before", notAfter = "not_after", issuedAt = "issued_at"
            case requestedTTLSeconds = "requested_ttl_seconds", grantedTTLSeconds = "granted_ttl_seconds"
            case keyType = "key_type", publicKeySHA256 = "public_key_sha256", csrSHA256 = "csr_sha256"
            case certificateSHA256 = "certificate_sha256", issuerFingerprint = "issuer_fingerprint"
            case authMethod = "auth_method", peer, revokedAt = "revoked_at", revocationReason = "revocation_reason"
            case certificatePEM = "certificate_pem"
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(serial, forKey: .serial)
            try c.encode(spiffeID, forKey: .spiffeID)
            try c.encode(trustDomain, forKey: .trustDomain)
            try c.encode(namespace, forKey: .namespace)
            try c.encode(serviceAccount, forKey: .serviceAccount)
            try c.encode(sans, forKey: .sans)
            try c.encode(notBefore, forKey: .notBefore)
            try c.encode(notAfter, forKey: .notAfter)
            try c.encode(issuedAt, forKey: .issuedAt)
            // Optional fields are written as null rather than left out, so the shape never changes.
            try c.encode(requestedTTLSeconds, forKey: .requestedTTLSeconds)
            try c.encode(grantedTTLSeconds, forKey: .grantedTTLSeconds)
            try c.encode(status, forKey: .status)
            try c.encode(keyType, forKey: .keyType)
            try c.encode(publicKeySHA256, forKey: .publicKeySHA256)
            try c.encode(csrSHA256, forKey: .csrSHA256)
            try c.encode(certificateSHA256, forKey: .certificateSHA256)
            try c.encode(issuerFingerprint, forKey: .issuerFingerprint)
            try c.encode(requester, forKey: .requester)
            try c.encode(authMethod, forKey: .authMethod)
            try c.encode(peer, forKey: .peer)
            try c.encode(revokedAt, forKey: .revokedAt)
            try c.encode(revocationReason, forKey: .revocationReason)
            try c.encode(certificatePEM, forKey: .certificatePEM)
        }
    }

    struct Rejection: Encodable {
        let occurredAt: String
        let requester: String
        let authMethod: String
        let requestedIdentity: String
        let reasonCode: String
        let message: String
        let peer: String

        init(_ record: RefusalEntry) {
            occurredAt = record.occurredAt.rfc3339
            requester = record.requester
            authMethod = record.authMethod
            requestedIdentity = record.requestedIdentity
            reasonCode = record.reasonCode
            message = record.message
            peer = record.peer
        }

        enum CodingKeys: String, CodingKey {
            case requester, message, peer
            case occurredAt = "occurred_at", authMethod = "auth_method"
            case requestedIdentity = "requested_identity", reasonCode = "reason_code"
        }
    }
}

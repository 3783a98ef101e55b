import Foundation
import MeshCADaemon

/// The stable JSON shapes of `meshca audit ... --json`. Field names are snake_case and never renamed;
/// new fields may be added. Times are RFC 3339 UTC strings.
enum AuditJSON {
    /// One certificate (`audit list`, `audit show`).
    struct Issuance: Encodable {
        let entry: AuditEntry

        init(_ entry: AuditEntry) { self.entry = entry }

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
            try c.encode(entry.serial, forKey: .serial)
            try c.encode(entry.spiffeID, forKey: .spiffeID)
            try c.encode(entry.trustDomain, forKey: .trustDomain)
            try c.encode(entry.namespace, forKey: .namespace)
            try c.encode(entry.serviceAccount, forKey: .serviceAccount)
            try c.encode(entry.sans, forKey: .sans)
            try c.encode(entry.notBefore.rfc3339, forKey: .notBefore)
            try c.encode(entry.notAfter.rfc3339, forKey: .notAfter)
            try c.encode(entry.issuedAt.rfc3339, forKey: .issuedAt)
            // Optional fields are written as null rather than left out, so the shape never changes.
            try c.encode(entry.requestedTTLSeconds, forKey: .requestedTTLSeconds)
            try c.encode(entry.grantedTTLSeconds, forKey: .grantedTTLSeconds)
            try c.encode(entry.status, forKey: .status)
            try c.encode(entry.keyType, forKey: .keyType)
            try c.encode(entry.publicKeySHA256, forKey: .publicKeySHA256)
            try c.encode(entry.csrSHA256, forKey: .csrSHA256)
            try c.encode(entry.certificateSHA256, forKey: .certificateSHA256)
            try c.encode(entry.issuerFingerprint, forKey: .issuerFingerprint)
            try c.encode(entry.requester, forKey: .requester)
            try c.encode(entry.authMethod, forKey: .authMethod)
            try c.encode(entry.peer, forKey: .peer)
            try c.encode(entry.revokedAt?.rfc3339, forKey: .revokedAt)
            try c.encode(entry.revocationReason, forKey: .revocationReason)
            try c.encode(entry.certificatePEM, forKey: .certificatePEM)
        }
    }

    /// One refused request (`audit rejections`).
    struct Rejection: Encodable {
        let entry: RefusalEntry

        init(_ entry: RefusalEntry) { self.entry = entry }

        enum CodingKeys: String, CodingKey {
            case requester, message, peer
            case occurredAt = "occurred_at", authMethod = "auth_method"
            case requestedIdentity = "requested_identity", reasonCode = "reason_code"
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(entry.occurredAt.rfc3339, forKey: .occurredAt)
            try c.encode(entry.requester, forKey: .requester)
            try c.encode(entry.authMethod, forKey: .authMethod)
            try c.encode(entry.requestedIdentity, forKey: .requestedIdentity)
            try c.encode(entry.reasonCode, forKey: .reasonCode)
            try c.encode(entry.message, forKey: .message)
            try c.encode(entry.peer, forKey: .peer)
        }
    }
}

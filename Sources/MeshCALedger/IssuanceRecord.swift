import Foundation

/// Where a certificate stands at a given moment.
public enum IssuanceStatus: String, Sendable, Codable, CaseIterable {
    /// Not revoked, and `notAfter` has not passed.
    case valid
    /// Not revoked, and `notAfter` has passed.
    case expired
    /// Revoked at or before the moment asked about, whether or not it has also expired.
    case revoked
}

/// One certificate that left the CA: everything needed to audit it or revoke it later.
///
/// Every `Date` is stored as whole Unix seconds, so a record read back has its fractions of a second dropped
/// (rounded toward the past). Hex strings are lowercase without separators.
public struct IssuanceRecord: Sendable, Equatable, Codable {
    /// The certificate's serial number as lowercase hex without separators; unique in a ledger.
    public var serial: String
    /// The SPIFFE ID in the certificate, `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`.
    public var spiffeID: String
    /// The trust domain part of `spiffeID`.
    public var trustDomain: String
    /// The Kubernetes namespace part of `spiffeID`.
    public var namespace: String
    /// The Kubernetes service account part of `spiffeID`.
    public var serviceAccount: String
    /// Every subject alternative name, as "URI:..." style strings; stored as a JSON array.
    public var sans: [String]
    /// The start of the certificate's validity.
    public var notBefore: Date
    /// The last moment the certificate is valid (inclusive, as in RFC 5280).
    public var notAfter: Date
    /// When the CA signed the certificate.
    public var issuedAt: Date
    /// The lifetime the requester asked for, or nil when it asked for the default.
    public var requestedTTLSeconds: Int64?
    /// The lifetime the CA granted: `notAfter - issuedAt`.
    public var grantedTTLSeconds: Int64
    /// The subject key's algorithm: "ec-p256", "ec-p384", "rsa-2048", ...
    public var keyType: String
    /// Lowercase hex SHA-256 of the SubjectPublicKeyInfo DER.
    public var publicKeySHA256: String
    /// Lowercase hex SHA-256 of the CSR DER.
    public var csrSHA256: String
    /// The whole certificate, DER encoded.
    public var certificateDER: [UInt8]
    /// Lowercase hex SHA-256 of the issuing CA certificate's DER.
    public var issuerFingerprint: String
    /// Who asked, e.g. "local:root(uid 0)" or a token id.
    public var requester: String
    /// How the requester authenticated: "local", "token", "jwt", "mtls".
    public var authMethod: String
    /// When the certificate was revoked, or nil.
    public var revokedAt: Date?
    /// Why it was revoked, or nil.
    public var revocationReason: String?
    /// The network peer the request came from, e.g. "ipv4:127.0.0.1:53412"; "" for local CLI use and for
    /// issuances recorded before schema version 2.
    public var peer: String

    /// Creates a record; a fresh issuance leaves `revokedAt` and `revocationReason` nil.
    public init(
        serial: String,
        spiffeID: String,
        trustDomain: String,
        namespace: String,
        serviceAccount: String,
        sans: [String],
        notBefore: Date,
        notAfter: Date,
        issuedAt: Date,
        requestedTTLSeconds: Int64?,
        grantedTTLSeconds: Int64,
        keyType: String,
        publicKeySHA256: String,
        csrSHA256: String,
        certificateDER: [UInt8],
        issuerFingerprint: String,
        requester: String,
        authMethod: String,
        revokedAt: Date? = nil,
        revocationReason: String? = nil,
        peer: String = ""
    ) {
        self.serial = serial
        self.spiffeID = spiffeID
        self.trustDomain = trustDomain
        self.namespace = namespace
        self.serviceAccount = serviceAccount
        self.sans = sans
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.issuedAt = issuedAt
        self.requestedTTLSeconds = requestedTTLSeconds
        self.grantedTTLSeconds = grantedTTLSeconds
        self.keyType = keyType
        self.publicKeySHA256 = publicKeySHA256
        self.csrSHA256 = csrSHA256
        self.certificateDER = certificateDER
        self.issuerFingerprint = issuerFingerprint
        self.requester = requester
        self.authMethod = authMethod
        self.revokedAt = revokedAt
        self.revocationReason = revocationReason
        self.peer = peer
    }

    /// The certificate's status at `now`: revoked once `revokedAt` has passed (even when also expired),
    /// otherwise expired once `now` is later than `notAfter`, otherwise valid.
    ///
    /// A certificate whose `notBefore` is still ahead counts as valid: it is neither expired nor revoked.
    /// `IssuanceQuery.status` filters with exactly this rule.
    public func status(at now: Date) -> IssuanceStatus {
        if let revokedAt, revokedAt <= now { return .revoked }
        return now > notAfter ? .expired : .valid
    }
}

import Foundation

/// Whether a join token can be used at a given moment.
public enum JoinTokenState: String, Sendable {
    /// Not revoked, not used up, and `expiresAt` has not come yet.
    case active
    /// `expiresAt` has come (a token is unusable from that moment on).
    case expired
    /// Every one of its `maxUses` uses has been consumed.
    case usedUp = "used-up"
    /// An operator revoked it.
    case revoked
}

/// A join token: a secret an operator hands to a workload without credentials, good for `maxUses` issuances
/// for one namespace and service account until `expiresAt`.
///
/// The ledger stores only `secretSHA256`, never the secret. Every `Date` is stored as whole Unix seconds, so a
/// record read back has its fractions of a second dropped (rounded toward the past). Hex strings are lowercase
/// without separators.
public struct JoinTokenRecord: Sendable, Equatable {
    /// The token's public id, lowercase hex (e.g. "3f9a0c12"); unique in a ledger.
    public var id: String
    /// Lowercase hex SHA-256 of the token's secret; 64 characters.
    public var secretSHA256: String
    /// The Kubernetes namespace the token may obtain certificates for.
    public var namespace: String
    /// The Kubernetes service account the token may obtain certificates for.
    public var serviceAccount: String
    /// When the token was created.
    public var createdAt: Date
    /// The first moment the token can no longer be used.
    public var expiresAt: Date
    /// How many issuances the token allows in total; at least 1.
    public var maxUses: Int
    /// How many of those have been consumed.
    public var uses: Int
    /// When an operator revoked the token, or nil.
    public var revokedAt: Date?
    /// Who created the token, in the same form as `IssuanceRecord.requester`.
    public var createdBy: String
    /// When a use was last consumed, or nil when never.
    public var lastUsedAt: Date?
    /// Lowercase hex SHA-256 of the root certificate the token carries (a client holding it verifies the CA
    /// against that root), or nil when not recorded: tokens created before schema version 5. Set once, at creation.
    public var pinnedRootSHA256: String?

    /// Creates a record; a new token has no uses, no revocation and no last use.
    public init(
        id: String,
        secretSHA256: String,
        namespace: String,
        serviceAccount: String,
        createdAt: Date,
        expiresAt: Date,
        maxUses: Int,
        uses: Int = 0,
        revokedAt: Date? = nil,
        createdBy: String,
        lastUsedAt: Date? = nil,
        pinnedRootSHA256: String? = nil
    ) {
        self.id = id
        self.secretSHA256 = secretSHA256
        self.namespace = namespace
        self.serviceAccount = serviceAccount
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.maxUses = maxUses
        self.uses = uses
        self.revokedAt = revokedAt
        self.createdBy = createdBy
        self.lastUsedAt = lastUsedAt
        self.pinnedRootSHA256 = pinnedRootSHA256
    }

    /// The token's state at `now`: revoked when `revokedAt` is set, otherwise used up when `uses` has reached
    /// `maxUses`, otherwise expired from `expiresAt` on, otherwise active.
    ///
    /// `revokedAt` and `uses` are taken as they are (a revocation counts from the moment it is recorded, whatever
    /// its time), so only expiry depends on `now`. A token use is accepted exactly when this is `.active` at the
    /// use's time.
    public func state(at now: Date) -> JoinTokenState {
        if revokedAt != nil { return .revoked }
        if uses >= maxUses { return .usedUp }
        return now >= expiresAt ? .expired : .active
    }
}

/// One use of a join token, to be consumed in the same transaction that records an issuance
/// (`IssuanceLedger.record(_:consuming:)`).
public struct TokenUse: Sendable, Equatable {
    /// The id of the token presented.
    public var id: String
    /// Lowercase hex SHA-256 of the secret presented; it must equal the token's `secretSHA256`.
    public var secretSHA256: String
    /// When the token is used: checked against `expiresAt` and stored as the token's `lastUsedAt`.
    public var at: Date

    /// Creates a token use.
    public init(id: String, secretSHA256: String, at: Date) {
        self.id = id
        self.secretSHA256 = secretSHA256
        self.at = at
    }
}

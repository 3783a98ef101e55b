import Foundation

/// Where the CA writes down every certificate it issues, every request it refuses, and the join tokens that
/// let workloads ask.
///
/// This protocol is a seam: `SQLiteLedger` serves a single CA process; a PostgreSQL implementation will be
/// added for CA replicas that share one ledger. Every implementation throws `LedgerError`.
public protocol IssuanceLedger: Sendable {
    /// Durably records one issued certificate and, in the same transaction, consumes one use of `token` when
    /// given; returns only after the commit reached the disk, so the caller may hand the certificate out.
    ///
    /// The token use is consumed as
    /// `UPDATE join_tokens SET uses = uses + 1, last_used_at = ? WHERE id = ? AND secret_sha256 = ?
    /// AND revoked_at IS NULL AND expires_at > ? AND uses < max_uses`. When that changes no row, nothing is
    /// recorded and `.tokenRejected` is thrown, its message saying why (unknown or wrong secret, expired, used up,
    /// revoked); so a single-use token can never be used twice, even by concurrent requests. Throws
    /// `.duplicateSerial` when the serial is already recorded (the token use is then not consumed either).
    func record(_ issuance: IssuanceRecord, consuming token: TokenUse?) async throws

    /// Records one refused request; the ledger assigns its `id` (a non-nil `id` passed in is ignored).
    func record(_ rejection: RejectionRecord) async throws

    /// The issuances that pass every filter of `query`, oldest first by (`issuedAt`, `serial`).
    func issuances(matching query: IssuanceQuery) async throws -> [IssuanceRecord]

    /// Rejections that occurred at or after `since` (all when nil), oldest first by (`occurredAt`, `id`).
    /// With a `limit`, the newest `limit` rejections, still oldest first.
    func rejections(since: Date?, limit: Int?) async throws -> [RejectionRecord]

    /// Durably records a new join token. Throws `.duplicateToken` when its id is already recorded, and `.other`
    /// for values that cannot be stored (an id that is not lowercase hex, a malformed hash, `maxUses` below 1).
    func createToken(_ token: JoinTokenRecord) async throws

    /// The join token with this id, or nil when there is none.
    func token(id: String) async throws -> JoinTokenRecord?

    /// Every join token, oldest first by (`createdAt`, creation order).
    func tokens() async throws -> [JoinTokenRecord]

    /// Durably marks the token revoked as of `at`, so no further use is accepted. Returns false, changing
    /// nothing, when the id is unknown or the token is already revoked.
    func revokeToken(id: String, at: Date) async throws -> Bool

    /// Durably marks the certificate `serial` revoked as of `at` (whole seconds) for `reason` (an RFC 5280
    /// CRLReason name; the ledger stores it as given), and appends the revocation to the hash chain in the same
    /// transaction.
    ///
    /// `serial` may be typed as people do (any case, colons, leading zeros; see `SerialNumberText`). The UPDATE
    /// changes only a certificate not yet revoked: a second revocation changes nothing and returns
    /// `.alreadyRevoked` with the first one's time and reason. Throws `.other` for text that is not a serial.
    func revoke(serial: String, reason: String, at: Date) async throws -> RevocationOutcome

    /// The issuance with this serial (typed as `revoke` accepts it), or nil when there is none. A point lookup
    /// on the primary key, cheap enough for every renewal.
    func issuance(serial: String) async throws -> IssuanceRecord?

    /// The newest issuance recorded for `requester` whose certificate holds the public key with SHA-256
    /// `publicKeySHA256` (the ledger's `publicKeySHA256`, lowercase hex) and that was issued at or after
    /// `since`, or nil. How the CA recognizes a request repeated after its answer was lost; an indexed lookup
    /// (issuances by public key), cheap enough for every issuance.
    func newestIssuance(requester: String, publicKeySHA256: String, issuedSince since: Date) async throws -> IssuanceRecord?

    /// The entries of a CRL for one issuing CA: every certificate whose `issuerFingerprint` is
    /// `issuerFingerprint` that is revoked and has not expired at `now` (RFC 5280 lets a CRL drop entries once
    /// the certificate expires). Oldest revocation first.
    func revokedCertificates(issuerFingerprint: String, notExpiredAt now: Date) async throws -> [RevokedCertificate]

    /// A cheap poll for revocations made by other processes: the hash chain's head (its last `seq`) now, and
    /// whether any revocation event was appended after event `seq`. Pass the returned head to the next call.
    func revocations(after seq: Int64) async throws -> (head: Int64, revokedSince: Bool)
}

extension IssuanceLedger {
    /// `newestIssuance(requester:publicKeySHA256:issuedSince:)` through `issuances(matching:)`, for ledgers
    /// without an index of their own.
    public func newestIssuance(requester: String, publicKeySHA256: String, issuedSince since: Date) async throws -> IssuanceRecord? {
        try await issuances(matching: IssuanceQuery(issuedSince: since)).last {
            $0.requester == requester && $0.publicKeySHA256 == publicKeySHA256.lowercased()
        }
    }

    /// Durably records one issued certificate without a join token; returns only after the row is committed
    /// (fsynced), so the caller may hand the certificate out. Throws `.duplicateSerial` when the serial is
    /// already recorded.
    public func record(_ issuance: IssuanceRecord) async throws {
        try await record(issuance, consuming: nil)
    }
}

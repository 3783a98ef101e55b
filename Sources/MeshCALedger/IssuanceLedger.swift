import Foundation

/// Where the CA writes down every certificate it issues and every request it refuses.
///
/// This protocol is a seam: `SQLiteLedger` serves a single CA process; a PostgreSQL implementation will be
/// added for CA replicas that share one ledger. Every implementation throws `LedgerError`.
public protocol IssuanceLedger: Sendable {
    /// Durably records one issued certificate; returns only after the row is committed (fsynced), so the
    /// caller may hand the certificate out. Throws `.duplicateSerial` when the serial is already recorded.
    func record(_ issuance: IssuanceRecord) async throws

    /// Records one refused request; the ledger assigns its `id` (a non-nil `id` passed in is ignored).
    func record(_ rejection: RejectionRecord) async throws

    /// The issuances that pass every filter of `query`, oldest first by (`issuedAt`, `serial`).
    func issuances(matching query: IssuanceQuery) async throws -> [IssuanceRecord]

    /// Rejections that occurred at or after `since` (all when nil), oldest first by (`occurredAt`, `id`).
    /// With a `limit`, the newest `limit` rejections, still oldest first.
    func rejections(since: Date?, limit: Int?) async throws -> [RejectionRecord]
}

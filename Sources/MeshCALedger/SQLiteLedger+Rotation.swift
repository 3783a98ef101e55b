import Foundation

/// What a root rotation asks of the ledger: who holds a live certificate and whether they have been back since
/// the new root was published, and which live certificates still chain to a root about to be retired.
extension SQLiteLedger {
    /// One workload identity that holds at least one unexpired, unrevoked certificate.
    public struct IdentityContact: Sendable, Equatable {
        /// The SPIFFE ID.
        public let spiffeID: String
        /// When it last received a certificate (its last contact with the CA).
        public let lastIssuedAt: Date
        /// When its newest-expiring live certificate expires.
        public let notAfter: Date
        /// Whether it received a certificate at or after the `since` time of the query.
        public let contactedSince: Bool
    }

    /// Every workload identity holding an unexpired, unrevoked certificate at `now` (the daemon's own serving
    /// certificates and non-SPIFFE certificates such as intermediates left out), with its last contact and
    /// whether that was at or after `since`. Sorted by SPIFFE ID.
    ///
    /// One pass over the live part of `issuances_by_not_after`, so the cost follows the number of live
    /// certificates, not the ledger's size.
    public func identityContacts(since: Date, now: Date) async throws -> [IdentityContact] {
        let sql = """
            SELECT spiffe_id, max(issued_at), max(not_after), max(issued_at >= ?)
            FROM issuances
            WHERE not_after > ? AND revoked_at IS NULL AND auth_method <> 'internal' AND spiffe_id LIKE 'spiffe://%'
            GROUP BY spiffe_id ORDER BY spiffe_id
            """
        let parameters: [SQLiteStatement.Value] = [.integer(UnixTime.ceiling(since)), .integer(UnixTime.floor(now))]
        return try await perform { connection in
            try connection.prepare(sql, parameters, operation: "list the identities holding live certificates").rows {
                IdentityContact(
                    spiffeID: $0.text(0), lastIssuedAt: UnixTime.date($0.integer(1)),
                    notAfter: UnixTime.date($0.integer(2)), contactedSince: $0.integer(3) != 0)
            }
        }
    }

    /// The certificates signed by the CA certificate with SHA-256 `issuerFingerprint` that are unexpired and
    /// unrevoked at `now`, apart from the serials in `excluding`: how many, when the last of them expires, and
    /// the `limit` that expire last.
    public func liveCertificates(
        issuedBy issuerFingerprint: String, excluding: [String] = [], now: Date, limit: Int
    ) async throws -> (count: Int, lastNotAfter: Date?, latest: [IssuanceRecord]) {
        let condition = "issuer_fingerprint = ? AND not_after > ? AND revoked_at IS NULL"
            + String(repeating: " AND serial <> ?", count: excluding.count)
        let parameters: [SQLiteStatement.Value] =
            [.text(issuerFingerprint.lowercased()), .integer(UnixTime.floor(now))] + excluding.map { .text($0.lowercased()) }
        let path = self.path
        return try await perform { connection in
            let summary = try connection.prepare(
                "SELECT count(*), max(not_after) FROM issuances WHERE \(condition)", parameters,
                operation: "count live certificates of a root")
            _ = try summary.step()
            let count = Int(summary.integer(0))
            let last = summary.optionalInteger(1).map(UnixTime.date)
            let latest = try connection.prepare(
                IssuanceRecord.selectSQL + " WHERE \(condition) ORDER BY not_after DESC LIMIT ?",
                parameters + [.integer(Int64(max(limit, 0)))], operation: "list live certificates of a root"
            ).rows { try IssuanceRecord(row: $0, path: path) }
            return (count, last, latest)
        }
    }
}

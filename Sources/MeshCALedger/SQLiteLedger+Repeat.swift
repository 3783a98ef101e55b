import Foundation

/// Finding the certificate already issued for a request, so a repeated request gets it again.
extension SQLiteLedger {
    /// The newest issuance to `requester` for the public key `publicKeySHA256` issued at or after `since`; see
    /// `IssuanceLedger.newestIssuance(requester:publicKeySHA256:issuedSince:)`. Uses the index
    /// `issuances_by_public_key`, so it reads only the rows for that key, however large the ledger.
    public func newestIssuance(requester: String, publicKeySHA256: String, issuedSince since: Date) async throws -> IssuanceRecord? {
        let sql = IssuanceRecord.selectSQL
            + " WHERE public_key_sha256 = ? AND issued_at >= ? AND requester = ? ORDER BY issued_at DESC, serial DESC LIMIT 1"
        let path = self.path
        return try await lookUp { connection in
            try connection.prepare(
                sql, [.text(publicKeySHA256.lowercased()), .integer(UnixTime.floor(since)), .text(requester)],
                operation: "look up the certificate issued for a public key"
            ).rows { try IssuanceRecord(row: $0, path: path) }.first
        }
    }
}

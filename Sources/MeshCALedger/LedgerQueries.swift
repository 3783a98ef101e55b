import Foundation

/// The read queries of root rotation and renewal checks that both engines run: the SQL (in SQLite's dialect; the
/// PostgreSQL engine translates it with `PostgresSQL.translate`), its parameters, and how its rows are read, so each
/// engine only runs them.
package enum LedgerQueries {
    /// SQL and the values for its placeholders.
    package typealias Query = (sql: String, parameters: [SQLiteStatement.Value])

    /// `identityContacts(since:now:)`; rows are read by `IdentityContact(row:)`.
    package static func identityContacts(since: Date, now: Date) -> Query {
        let sql = """
            SELECT spiffe_id, max(issued_at), max(not_after), max(CASE WHEN issued_at >= ? THEN 1 ELSE 0 END)
            FROM issuances
            WHERE not_after > ? AND revoked_at IS NULL AND auth_method <> 'internal' AND spiffe_id LIKE 'spiffe://%'
            GROUP BY spiffe_id ORDER BY spiffe_id
            """
        return (sql, [.integer(UnixTime.ceiling(since)), .integer(UnixTime.floor(now))])
    }

    /// The live certificates of `certificatesInUse(issuedBy:excluding:now:)`; rows are read by
    /// `CertificateInUse(row:)`.
    package static func liveCertificates(issuedBy issuerFingerprint: String, excluding: [String], now: Date) -> Query {
        let condition = "issuer_fingerprint = ? AND not_after > ? AND revoked_at IS NULL"
            + String(repeating: " AND serial <> ?", count: excluding.count)
        return (
            "SELECT serial, spiffe_id, requester, auth_method, issued_at, not_after FROM issuances WHERE \(condition) "
                + "ORDER BY not_after DESC, serial",
            [.text(issuerFingerprint.lowercased()), .integer(UnixTime.floor(now))] + excluding.map { .text($0.lowercased()) }
        )
    }

    /// The requesters of the mTLS renewals that may have replaced `live` certificates (column 0); nil when none
    /// of them is a workload certificate, the only kind presented for an mTLS renewal.
    package static func renewals(of live: [CertificateInUse]) -> Query? {
        guard let oldest = live.filter({ !$0.spiffeID.isEmpty }).map(\.issuedAt).min() else { return nil }
        return ("SELECT requester FROM issuances WHERE issued_at >= ? AND auth_method = 'mtls'", [.integer(UnixTime.floor(oldest))])
    }

    /// The `live` certificates no renewal by `requesters` replaced, and how many were replaced.
    package static func inUse(_ live: [CertificateInUse], renewedBy requesters: Set<String>) -> (inUse: [CertificateInUse], renewed: Int) {
        let inUse = live.filter { !requesters.contains("mtls:" + $0.serial) }
        return (inUse, live.count - inUse.count)
    }

    /// `revokedCount(issuedBy:requester:reason:now:)`: one row, the count in column 0.
    package static func revokedCount(issuedBy issuerFingerprint: String, requester: String, reason: String, now: Date) -> Query {
        (
            "SELECT count(*) FROM issuances WHERE not_after > ? AND issuer_fingerprint = ? AND requester = ? "
                + "AND revocation_reason = ? AND revoked_at IS NOT NULL",
            [.integer(UnixTime.floor(now)), .text(issuerFingerprint.lowercased()), .text(requester), .text(reason)]
        )
    }

    /// `expiringIdentities(now:within:limit:)`, with `SQLiteLedger.expiringIdentitiesSQL`; rows are read by
    /// `ExpiringIdentity(row:)` and counted by ``newestPerIdentity(_:limit:)``.
    package static func expiringIdentities(now: Date, within window: Duration) -> Query {
        let seconds = UnixTime.seconds(window)
        return (
            SQLiteLedger.expiringIdentitiesSQL,
            [
                .integer(UnixTime.floor(now)), .integer(UnixTime.ceiling(now.addingTimeInterval(-seconds))),
                .integer(UnixTime.floor(now.addingTimeInterval(seconds))),
            ]
        )
    }

    /// The first `limit` of `rows` and how many identities they hold; two certificates issued in the same second
    /// for one identity are both "newest", and only the first counts.
    package static func newestPerIdentity(_ rows: [ExpiringIdentity], limit: Int) -> (identities: [ExpiringIdentity], total: Int) {
        var seen = Set<String>()
        let unique = rows.filter { seen.insert($0.spiffeID).inserted }
        return (Array(unique.prefix(limit)), unique.count)
    }

    /// `newestCertificateWithoutSPIFFEID(requester:authMethod:)`; rows are read by `IssuanceRecord(row:path:)`.
    package static func newestCertificateWithoutSPIFFEID(requester: String, authMethod: String) -> Query {
        (
            IssuanceRecord.selectSQL
                + " WHERE spiffe_id = '' AND requester = ? AND auth_method = ? ORDER BY issued_at DESC, rowid DESC LIMIT 1",
            [.text(requester), .text(authMethod)]
        )
    }
}

extension IdentityContact {
    /// Reads a row of ``LedgerQueries/identityContacts(since:now:)``.
    package init(row: some LedgerRow) {
        self.init(
            spiffeID: row.text(0), lastIssuedAt: UnixTime.date(row.integer(1)), notAfter: UnixTime.date(row.integer(2)),
            contactedSince: row.integer(3) != 0)
    }
}

extension CertificateInUse {
    /// Reads a row of ``LedgerQueries/liveCertificates(issuedBy:excluding:now:)``.
    package init(row: some LedgerRow) {
        self.init(
            serial: row.text(0), spiffeID: row.text(1), requester: row.text(2), authMethod: row.text(3),
            issuedAt: UnixTime.date(row.integer(4)), notAfter: UnixTime.date(row.integer(5)))
    }
}

extension ExpiringIdentity {
    /// Reads a row of ``LedgerQueries/expiringIdentities(now:within:)``.
    package init(row: some LedgerRow) {
        self.init(
            spiffeID: row.text(0), serial: row.text(1), issuedAt: UnixTime.date(row.integer(2)),
            notAfter: UnixTime.date(row.integer(3)))
    }
}

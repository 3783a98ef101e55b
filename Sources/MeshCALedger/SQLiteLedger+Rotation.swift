import Foundation

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

    /// Creates an entry.
    public init(spiffeID: String, lastIssuedAt: Date, notAfter: Date, contactedSince: Bool) {
        self.spiffeID = spiffeID
        self.lastIssuedAt = lastIssuedAt
        self.notAfter = notAfter
        self.contactedSince = contactedSince
    }
}

/// One certificate signed by a root about to be retired, as the retire gate needs it.
public struct CertificateInUse: Sendable, Equatable {
    /// The serial, lowercase hex.
    public let serial: String
    /// The SPIFFE ID; empty for certificates without one (the daemon's serving certificates, intermediates).
    public let spiffeID: String
    /// Who obtained it (`IssuanceRecord.requester`).
    public let requester: String
    /// How (`IssuanceRecord.authMethod`).
    public let authMethod: String
    /// When it was issued.
    public let issuedAt: Date
    /// When it expires.
    public let notAfter: Date

    /// Creates an entry.
    public init(serial: String, spiffeID: String, requester: String, authMethod: String, issuedAt: Date, notAfter: Date) {
        self.serial = serial
        self.spiffeID = spiffeID
        self.requester = requester
        self.authMethod = authMethod
        self.issuedAt = issuedAt
        self.notAfter = notAfter
    }
}

/// What a root rotation asks of the ledger: who holds a live certificate and whether they have been back since
/// the new root was published, and which certificates of a root about to be retired are still in use.
extension SQLiteLedger {
    /// Every workload identity holding an unexpired, unrevoked certificate at `now` (the daemon's own serving
    /// certificates and non-SPIFFE certificates such as intermediates left out), with its last contact and
    /// whether that was at or after `since`. Sorted by SPIFFE ID.
    ///
    /// One pass over the live part of `issuances_by_not_after`, so the cost follows the number of live
    /// certificates, not the ledger's size.
    public func identityContacts(since: Date, now: Date) async throws -> [IdentityContact] {
        let query = LedgerQueries.identityContacts(since: since, now: now)
        return try await perform { connection in
            try connection.prepare(query.sql, query.parameters, operation: "list the identities holding live certificates")
                .rows(IdentityContact.init(row:))
        }
    }

    /// The certificates signed by the CA certificate with SHA-256 `issuerFingerprint` that are still in use at
    /// `now`, apart from the serials in `excluding`, sorted by `notAfter`, latest first; and how many more of its
    /// unexpired, unrevoked certificates were left out because their holder renewed them.
    ///
    /// In use: unexpired, unrevoked, and not renewed. A certificate counts as renewed once a certificate was issued
    /// to a caller that authenticated with it over mTLS (requester `mtls:<its serial>`, as `meshca agent` renews):
    /// its holder has replaced it. A certificate renewed by another method (a join token, a service-account JWT)
    /// cannot be told apart from a second replica of the same identity, so it counts until it expires.
    ///
    /// Two reads: the live part of `issuances_by_not_after`, then the mTLS renewals issued since the oldest live
    /// workload certificate (through `issuances_by_issued_at`), so the cost follows the live population and about
    /// one certificate lifetime of issuances, not the ledger's size.
    public func certificatesInUse(
        issuedBy issuerFingerprint: String, excluding: [String] = [], now: Date
    ) async throws -> (inUse: [CertificateInUse], renewed: Int) {
        let query = LedgerQueries.liveCertificates(issuedBy: issuerFingerprint, excluding: excluding, now: now)
        return try await perform { connection in
            let live = try connection.prepare(query.sql, query.parameters, operation: "list the live certificates of a root")
                .rows(CertificateInUse.init(row:))
            guard let renewals = LedgerQueries.renewals(of: live) else { return (live, 0) }
            let requesters = try connection.prepare(
                renewals.sql, renewals.parameters, operation: "list the renewals of a root's certificates"
            ).rows { $0.text(0) }
            return LedgerQueries.inUse(live, renewedBy: Set(requesters))
        }
    }

    /// How many certificates that `requester` obtained from the CA certificate with SHA-256 `issuerFingerprint`
    /// are revoked for `reason` and not yet expired at `now` (for a rotation: the daemon's serving certificates
    /// revoked as `superseded`, which no longer hold `retire` back and stay on the CRL until they expire).
    public func revokedCount(
        issuedBy issuerFingerprint: String, requester: String, reason: String, now: Date
    ) async throws -> Int {
        let query = LedgerQueries.revokedCount(issuedBy: issuerFingerprint, requester: requester, reason: reason, now: now)
        return try await perform { connection in
            let statement = try connection.prepare(query.sql, query.parameters, operation: "count revoked certificates of a root")
            _ = try statement.step()
            return Int(statement.integer(0))
        }
    }
}

import Foundation

/// Certificate revocation: recording one, looking one up, and the entries of a CRL.
extension SQLiteLedger {
    /// Durably marks the certificate `serial` revoked as of `at` for `reason`, with its chain event in the same
    /// transaction; see `IssuanceLedger.revoke(serial:reason:at:)`.
    public func revoke(serial: String, reason: String, at: Date) async throws -> RevocationOutcome {
        guard let serial = SerialNumberText.normalize(serial) else {
            throw LedgerError.invalidSerial(serial, operation: "revoke certificate")
        }
        let operation = "revoke certificate \(serial)"
        let chain = self.chain
        let path = self.path
        return try await perform { connection in
            try connection.writeTransaction(operation: operation) {
                try connection.prepare(
                    "UPDATE issuances SET revoked_at = ?, revocation_reason = ? WHERE serial = ? AND revoked_at IS NULL",
                    [.integer(UnixTime.floor(at)), .text(reason), .text(serial)], operation: operation
                ).run()
                let changed = connection.changes > 0
                if changed {
                    try chain.appendCurrent(.revocation, subject: serial, on: connection, operation: operation)
                }
                // Same transaction, so this is exactly the row the UPDATE changed or refused to change.
                guard
                    let record = try Self.storedIssuance(
                        serial: serial, on: connection, path: path, operation: operation)
                else { return .unknownSerial }
                return changed ? .revoked(record) : .alreadyRevoked(record)
            }
        }
    }

    /// The issuance with exactly this serial (normalized as `SerialNumberText.normalize` does), or nil.
    public func issuance(serial: String) async throws -> IssuanceRecord? {
        guard let serial = SerialNumberText.normalize(serial) else { return nil }
        let path = self.path
        return try await lookUp { connection in
            try Self.storedIssuance(serial: serial, on: connection, path: path, operation: "read certificate \(serial)")
        }
    }

    /// Every certificate issued by the CA with `issuerFingerprint` that is revoked and has not expired at `now`,
    /// oldest revocation first (then by serial).
    public func revokedCertificates(issuerFingerprint: String, notExpiredAt now: Date) async throws
        -> [RevokedCertificate]
    {
        let sql = """
            SELECT serial, spiffe_id, revoked_at, revocation_reason, not_after FROM issuances
            WHERE revoked_at IS NOT NULL AND issuer_fingerprint = ? AND not_after >= ?
            ORDER BY revoked_at, serial
            """
        return try await perform { connection in
            try connection.prepare(
                sql, [.text(issuerFingerprint.lowercased()), .integer(UnixTime.ceiling(now))],
                operation: "list revoked certificates"
            ).rows { row in
                RevokedCertificate(
                    serial: row.text(0), spiffeID: row.text(1), revokedAt: UnixTime.date(row.integer(2)),
                    reason: row.optionalText(3), notAfter: UnixTime.date(row.integer(4)))
            }
        }
    }

    /// The chain's head now, and whether any revocation event was appended after event `seq`; see
    /// `IssuanceLedger.revocations(after:)`.
    public func revocations(after seq: Int64) async throws -> (head: Int64, revokedSince: Bool) {
        // A ledger without the chain (opened by a test with old migrations) cannot say; report a change.
        guard chain.isEnabled else { return (seq + 1, true) }
        return try await perform { connection in
            let operation = "check for new revocations"
            let head = try connection.prepare("SELECT coalesce(max(seq), 0) FROM ledger_events", operation: operation)
            _ = try head.step()
            let found = try connection.prepare(
                "SELECT 1 FROM ledger_events WHERE seq > ? AND kind = ? LIMIT 1",
                [.integer(seq), .text(LedgerChainEvent.Kind.revocation.rawValue)], operation: operation
            ).step()
            return (head.integer(0), found)
        }
    }

    private static func storedIssuance(
        serial: String, on connection: SQLiteConnection, path: String, operation: String
    ) throws -> IssuanceRecord? {
        try connection.prepare(IssuanceRecord.selectSQL + " WHERE serial = ?", [.text(serial)], operation: operation)
            .rows { try IssuanceRecord(row: $0, path: path) }.first
    }
}

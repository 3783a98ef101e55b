import Foundation
import MeshCALedger
import MeshCAMigrations
import PostgresNIO

/// `IssuanceLedger` and `LedgerStore` on PostgreSQL. Each method runs the statements the SQLite engine runs (the
/// shared ones translated by `PostgresSQL`) and means the same; see the `SQLiteLedger` method of the same name.
extension PostgresLedger {
    // MARK: - Issuances and rejections

    public func record(_ issuance: IssuanceRecord, consuming token: TokenUse?) async throws {
        try issuance.validateSerial(path: location)
        let parameters = try issuance.parameters()
        let operation = "record certificate \(issuance.serial)"
        let revoked = issuance.revokedAt != nil
        try await write(operation) { connection in
            if let token { try await self.consume(token, for: operation, on: connection) }
            try await self.append(
                .issuance(serial: issuance.serial, parameters: parameters), inserting: (IssuanceRecord.insertSQL, parameters),
                on: connection)
            if revoked {
                try await self.appendCurrent(.revocation, subject: issuance.serial, on: connection, operation: operation)
            }
        }
    }

    public func record(_ rejection: RejectionRecord) async throws {
        let operation = "record a rejection for \(rejection.requester)"
        let parameters = rejection.parameters()
        try await write(operation) { connection in
            let id = try await self.rows(RejectionRecord.insertSQL + " RETURNING id", parameters, on: connection)
                .first?.integer(0) ?? 0
            try await self.append(.rejection(id: id, parameters: parameters), on: connection)
        }
    }

    public func issuances(matching query: IssuanceQuery) async throws -> [IssuanceRecord] {
        if let limit = query.limit, limit <= 0 { return [] }
        let (sql, parameters) = query.statement()
        let location = self.location
        let records = try await read("query issuances") { connection in
            try await self.rows(sql, parameters, on: connection).map { try IssuanceRecord(row: $0, path: location) }
        }
        return query.limit == nil ? records : records.reversed()
    }

    public func rejections(since: Date?, limit: Int?) async throws -> [RejectionRecord] {
        if let limit, limit <= 0 { return [] }
        let (sql, parameters) = RejectionRecord.selectStatement(since: since, limit: limit)
        let records = try await read("query rejections") { connection in
            try await self.rows(sql, parameters, on: connection).map(RejectionRecord.init(row:))
        }
        return limit == nil ? records : records.reversed()
    }

    public func newestIssuance(requester: String, publicKeySHA256: String, issuedSince since: Date) async throws
        -> IssuanceRecord?
    {
        let sql = IssuanceRecord.selectSQL
            + " WHERE public_key_sha256 = ? AND issued_at >= ? AND requester = ? ORDER BY issued_at DESC, serial DESC LIMIT 1"
        let location = self.location
        return try await read("look up the certificate issued for a public key") { connection in
            try await self.rows(
                sql, [.text(publicKeySHA256.lowercased()), .integer(UnixTime.floor(since)), .text(requester)],
                on: connection
            ).first.map { try IssuanceRecord(row: $0, path: location) }
        }
    }

    // MARK: - Join tokens

    public func createToken(_ token: JoinTokenRecord) async throws {
        try token.validate(path: location)
        let parameters = token.parameters()
        let operation = "create join token \(token.id)"
        do {
            try await writeTransaction(operation) { connection in
                try await self.append(
                    .tokenCreation(id: token.id, parameters: parameters), inserting: (token.insertSQL, parameters),
                    on: connection)
                if token.pinnedRootSHA256 != nil {
                    try await self.appendCurrent(.tokenPin, subject: token.id, on: connection, operation: operation)
                }
                if token.uses > 0 || token.lastUsedAt != nil {
                    try await self.appendCurrent(.tokenUse, subject: token.id, on: connection, operation: operation)
                }
                if token.revokedAt != nil {
                    try await self.appendCurrent(.tokenRevocation, subject: token.id, on: connection, operation: operation)
                }
            }
        } catch let error as LedgerError where error.code == .duplicateSerial {
            throw LedgerError(
                code: .duplicateToken,
                message: "Could not \(operation): a join token with that id is already in the ledger at \(location). "
                    + "Token ids must be unique, so nothing was recorded; create the token again with a fresh random id.")
        }
    }

    public func token(id: String) async throws -> JoinTokenRecord? {
        try await read("read join token \(id)") { connection in
            try await self.storedToken(id: id, on: connection)
        }
    }

    public func tokens() async throws -> [JoinTokenRecord] {
        try await read("list join tokens") { connection in
            try await self.rows(JoinTokenRecord.selectSQL + " ORDER BY created_at, rowid", on: connection)
                .map(JoinTokenRecord.init(row:))
        }
    }

    public func revokeToken(id: String, at: Date) async throws -> Bool {
        let operation = "revoke join token \(id)"
        return try await writeTransaction(operation) { connection in
            try await self.update(
                "UPDATE join_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                [.integer(UnixTime.floor(at)), .text(id)], appending: .tokenRevocation, subject: id, on: connection, operation: operation)
        }
    }

    /// Consumes one use of `use` inside the caller's transaction, or throws `.tokenRejected` saying why not. The
    /// guarded UPDATE is SQLite's; under READ COMMITTED a concurrent use of the same row waits for the first one
    /// and then re-checks `uses < max_uses` against the committed row.
    private func consume(_ use: TokenUse, for operation: String, on connection: PostgresConnection) async throws {
        let at = UnixTime.floor(use.at)
        let used = try await update(
            SQLiteLedger.consumeSQL, [.integer(at), .text(use.id), .text(use.secretSHA256.lowercased()), .integer(at)],
            appending: .tokenUse, subject: use.id, on: connection, operation: operation)
        if used { return }
        let stored = try await storedToken(id: use.id, on: connection)
        throw LedgerError.tokenRejected(use, stored: stored, operation: operation, location: location)
    }

    private func storedToken(id: String, on connection: PostgresConnection) async throws -> JoinTokenRecord? {
        try await rows(JoinTokenRecord.selectSQL + " WHERE id = ?", [.text(id)], on: connection)
            .first.map(JoinTokenRecord.init(row:))
    }

    // MARK: - Revocation

    public func revoke(serial: String, reason: String, at: Date) async throws -> RevocationOutcome {
        guard let serial = SerialNumberText.normalize(serial) else {
            throw LedgerError.invalidSerial(serial, operation: "revoke certificate")
        }
        let operation = "revoke certificate \(serial)"
        let location = self.location
        return try await writeTransaction(operation) { connection in
            let changed = try await self.update(
                "UPDATE issuances SET revoked_at = ?, revocation_reason = ? WHERE serial = ? AND revoked_at IS NULL",
                [.integer(UnixTime.floor(at)), .text(reason), .text(serial)],
                appending: .revocation, subject: serial, on: connection, operation: operation)
            guard
                let record = try await self.rows(IssuanceRecord.selectSQL + " WHERE serial = ?", [.text(serial)], on: connection)
                    .first.map({ try IssuanceRecord(row: $0, path: location) })
            else { return .unknownSerial }
            return changed ? .revoked(record) : .alreadyRevoked(record)
        }
    }

    public func issuance(serial: String) async throws -> IssuanceRecord? {
        guard let serial = SerialNumberText.normalize(serial) else { return nil }
        let location = self.location
        return try await read("read certificate \(serial)") { connection in
            try await self.rows(IssuanceRecord.selectSQL + " WHERE serial = ?", [.text(serial)], on: connection)
                .first.map { try IssuanceRecord(row: $0, path: location) }
        }
    }

    public func revokedCertificates(issuerFingerprint: String, notExpiredAt now: Date) async throws -> [RevokedCertificate] {
        let sql = """
            SELECT serial, spiffe_id, revoked_at, revocation_reason, not_after FROM issuances
            WHERE revoked_at IS NOT NULL AND issuer_fingerprint = ? AND not_after >= ?
            ORDER BY revoked_at, serial
            """
        return try await read("list revoked certificates") { connection in
            try await self.rows(
                sql, [.text(issuerFingerprint.lowercased()), .integer(UnixTime.ceiling(now))], on: connection
            ).map { row in
                RevokedCertificate(
                    serial: row.text(0), spiffeID: row.text(1), revokedAt: UnixTime.date(row.integer(2)),
                    reason: row.optionalText(3), notAfter: UnixTime.date(row.integer(4)))
            }
        }
    }

    /// The chain's head now and whether a revocation event was appended after `seq`, by any replica: every
    /// committed event is visible, and events commit in `seq` order (the chain lock), so none can appear later
    /// below the head read here.
    public func revocations(after seq: Int64) async throws -> (head: Int64, revokedSince: Bool) {
        try await read("check for new revocations") { connection in
            let row = try await self.rows(
                "SELECT coalesce(max(seq), 0), EXISTS (SELECT 1 FROM ledger_events WHERE seq > ? AND kind = ?) "
                    + "FROM ledger_events",
                [.integer(seq), .text(LedgerChainEvent.Kind.revocation.rawValue)], on: connection
            ).first
            return (row?.integer(0) ?? 0, row?.integer(1) == 1)
        }
    }

    // MARK: - Expiry and root rotation

    public func expiringIdentities(now: Date, within window: Duration, limit: Int) async throws -> (
        identities: [ExpiringIdentity], total: Int
    ) {
        let query = LedgerQueries.expiringIdentities(now: now, within: window)
        return try await read("list identities with overdue renewals") { connection in
            let rows = try await self.rows(query.sql, query.parameters, on: connection).map(ExpiringIdentity.init(row:))
            return LedgerQueries.newestPerIdentity(rows, limit: limit)
        }
    }

    public func newestCertificateWithoutSPIFFEID(requester: String, authMethod: String) async throws -> IssuanceRecord? {
        let query = LedgerQueries.newestCertificateWithoutSPIFFEID(requester: requester, authMethod: authMethod)
        let location = self.location
        return try await read("find the newest \(requester) certificate") { connection in
            try await self.rows(query.sql, query.parameters, on: connection)
                .first.map { try IssuanceRecord(row: $0, path: location) }
        }
    }

    public func identityContacts(since: Date, now: Date) async throws -> [IdentityContact] {
        let query = LedgerQueries.identityContacts(since: since, now: now)
        return try await read("list the identities holding live certificates") { connection in
            try await self.rows(query.sql, query.parameters, on: connection).map(IdentityContact.init(row:))
        }
    }

    public func certificatesInUse(
        issuedBy issuerFingerprint: String, excluding: [String], now: Date
    ) async throws -> (inUse: [CertificateInUse], renewed: Int) {
        let query = LedgerQueries.liveCertificates(issuedBy: issuerFingerprint, excluding: excluding, now: now)
        return try await read("list the live certificates of a root") { connection in
            let live = try await self.rows(query.sql, query.parameters, on: connection).map(CertificateInUse.init(row:))
            guard let renewals = LedgerQueries.renewals(of: live) else { return (live, 0) }
            let requesters = try await self.rows(renewals.sql, renewals.parameters, on: connection).map { $0.text(0) }
            return LedgerQueries.inUse(live, renewedBy: Set(requesters))
        }
    }

    public func revokedCount(issuedBy issuerFingerprint: String, requester: String, reason: String, now: Date) async throws -> Int {
        let query = LedgerQueries.revokedCount(issuedBy: issuerFingerprint, requester: requester, reason: reason, now: now)
        return try await read("count revoked certificates of a root") { connection in
            Int(try await self.rows(query.sql, query.parameters, on: connection).first?.integer(0) ?? 0)
        }
    }

    // MARK: - Health and size

    /// The database's own check: the server answers, the schema version, and the database's size. PostgreSQL has
    /// no `quick_check`; `quickCheck` is `["ok"]` when every ledger table is there, else names the missing ones.
    /// `walBytes` is 0 (the server's write-ahead log is not the ledger's).
    public func health() async throws -> LedgerHealth {
        let tables = LedgerExport.tables.map(\.name) + ["schema_migrations"]
        return try await read("check the ledger's database") { connection in
            var missing: [String] = []
            for table in tables {
                let exists = try await self.rows("SELECT to_regclass(?) IS NOT NULL", [.text(table)], on: connection)
                if exists.first?.integer(0) != 1 { missing.append("table \(table) is missing") }
            }
            let bytes = try await self.rows("SELECT pg_database_size(current_database())", on: connection)
                .first?.integer(0) ?? 0
            return LedgerHealth(
                quickCheck: missing.isEmpty ? ["ok"] : missing, schemaVersion: try await self.appliedVersion(on: connection) ?? 0,
                latestSchemaVersion: PostgresLedgerMigrations.latestVersion, databaseBytes: bytes, walBytes: 0)
        }
    }

    public func statistics() async throws -> LedgerStatistics {
        try await read("read the ledger's size and event count") { connection in
            let row = try await self.rows(
                "SELECT pg_database_size(current_database()), (SELECT coalesce(max(seq), 0) FROM ledger_events), "
                    + "(SELECT created_at FROM ledger_checkpoints ORDER BY id DESC LIMIT 1)", on: connection
            ).first
            return LedgerStatistics(
                databaseBytes: row?.integer(0) ?? 0, walBytes: 0, eventCount: row?.integer(1) ?? 0,
                newestCheckpointAt: row?.optionalInteger(2).map(UnixTime.date))
        }
    }
}

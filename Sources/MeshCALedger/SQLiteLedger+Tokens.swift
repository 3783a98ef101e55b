import Foundation

/// Join tokens: creating, reading and revoking them, and consuming a use together with an issuance.
extension SQLiteLedger {
    /// Consumes one use when, and only when, the token is active; see `IssuanceLedger.record(_:consuming:)`.
    package static let consumeSQL = """
        UPDATE join_tokens SET uses = uses + 1, last_used_at = ?
        WHERE id = ? AND secret_sha256 = ? AND revoked_at IS NULL AND expires_at > ? AND uses < max_uses
        """

    /// Durably records a new join token. Throws `.duplicateToken` when the id is taken, `.other` for values that
    /// cannot be stored (see `JoinTokenRecord.validate`).
    public func createToken(_ token: JoinTokenRecord) async throws {
        try token.validate(path: path)
        let parameters = token.parameters()
        let operation = "create join token \(token.id)"
        let path = self.path
        let chain = self.chain
        try await perform { connection in
            do {
                try connection.writeTransaction(operation: operation) {
                    try connection.prepare(token.insertSQL, parameters, operation: operation).run()
                    try chain.append(
                        .tokenCreation(id: token.id, parameters: parameters), on: connection, operation: operation)
                    // The pin came with a later schema version than token-creation's columns: an event of its own.
                    if token.pinnedRootSHA256 != nil {
                        try chain.appendCurrent(.tokenPin, subject: token.id, on: connection, operation: operation)
                    }
                    // A token created already used or revoked (an import) gets the state events it would have had.
                    if token.uses > 0 || token.lastUsedAt != nil {
                        try chain.appendCurrent(.tokenUse, subject: token.id, on: connection, operation: operation)
                    }
                    if token.revokedAt != nil {
                        try chain.appendCurrent(
                            .tokenRevocation, subject: token.id, on: connection, operation: operation)
                    }
                }
            } catch let error as LedgerError where error.code == .duplicateSerial {
                // The primary key here is the token id; the generic mapping of that constraint speaks of serials.
                throw LedgerError(
                    code: .duplicateToken,
                    message: "Could not \(operation): a join token with that id is already in the ledger at "
                        + "\(path). Token ids must be unique, so nothing was recorded; create the token again with "
                        + "a fresh random id.")
            }
        }
    }

    /// The join token with this id, or nil when there is none.
    public func token(id: String) async throws -> JoinTokenRecord? {
        try await lookUp { connection in
            try Self.storedToken(id: id, on: connection, operation: "read join token \(id)")
        }
    }

    /// Every join token, oldest first by (`createdAt`, creation order).
    public func tokens() async throws -> [JoinTokenRecord] {
        try await perform { connection in
            let sql = JoinTokenRecord.selectSQL + " ORDER BY created_at, rowid"
            return try connection.prepare(sql, operation: "list join tokens").rows(JoinTokenRecord.init(row:))
        }
    }

    /// Durably marks the token revoked as of `at`. Returns false, changing nothing, when the id is unknown or the
    /// token is already revoked (its first revocation time is kept).
    public func revokeToken(id: String, at: Date) async throws -> Bool {
        let operation = "revoke join token \(id)"
        let chain = self.chain
        return try await perform { connection in
            try connection.writeTransaction(operation: operation) {
                try connection.prepare(
                    "UPDATE join_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                    [.integer(UnixTime.floor(at)), .text(id)], operation: operation
                ).run()
                guard connection.changes > 0 else { return false }
                try chain.appendCurrent(.tokenRevocation, subject: id, on: connection, operation: operation)
                return true
            }
        }
    }

    /// Consumes one use of `use` inside the caller's transaction, or throws `.tokenRejected` saying why not.
    ///
    /// `operation` is the write the token is presented for ("record certificate 0a1b"), for the message.
    static func consume(
        _ use: TokenUse, for operation: String, on connection: SQLiteConnection, path: String, chain: LedgerChain
    ) throws {
        let secretSHA256 = use.secretSHA256.lowercased()
        try connection.prepare(
            consumeSQL,
            [.integer(UnixTime.floor(use.at)), .text(use.id), .text(secretSHA256), .integer(UnixTime.floor(use.at))],
            operation: operation
        ).run()
        if connection.changes > 0 {
            try chain.appendCurrent(.tokenUse, subject: use.id, on: connection, operation: operation)
            return
        }

        // Same transaction, so this is exactly the row the UPDATE just refused.
        let stored = try storedToken(id: use.id, on: connection, operation: operation)
        throw LedgerError.tokenRejected(use, stored: stored, operation: operation, location: path)
    }

    private static func storedToken(
        id: String, on connection: SQLiteConnection, operation: String
    ) throws -> JoinTokenRecord? {
        try connection.prepare(JoinTokenRecord.selectSQL + " WHERE id = ?", [.text(id)], operation: operation)
            .rows(JoinTokenRecord.init(row:)).first
    }
}

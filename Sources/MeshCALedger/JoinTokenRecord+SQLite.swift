import Foundation

/// How a `JoinTokenRecord` maps onto a row of the `join_tokens` table (see `0002_join_tokens_and_peers.sql`).
extension JoinTokenRecord {
    /// The columns in the order `parameters` binds them and `init(row:)` reads them. `pinned_root_sha256` came
    /// with schema version 5 and stays last.
    package static let columns = [
        "id", "secret_sha256", "namespace", "service_account", "created_at", "expires_at", "max_uses", "uses",
        "revoked_at", "created_by", "last_used_at", "pinned_root_sha256",
    ]

    /// `SELECT <columns> FROM join_tokens`, to be followed by a WHERE or ORDER BY clause.
    package static let selectSQL = "SELECT \(columns.joined(separator: ", ")) FROM join_tokens"

    /// `INSERT INTO join_tokens (<columns>) VALUES (?, ...)` for this record. A token without a recorded pin
    /// leaves `pinned_root_sha256` out (NULL), so a ledger a test opened at an older schema version still takes it.
    package var insertSQL: String {
        let names = pinnedRootSHA256 == nil ? Array(Self.columns.dropLast()) : Self.columns
        return "INSERT INTO join_tokens (\(names.joined(separator: ", "))) "
            + "VALUES (\(names.map { _ in "?" }.joined(separator: ", ")))"
    }

    /// The values for `insertSQL`, in `columns` order (without the pin when there is none).
    package func parameters() -> [SQLiteStatement.Value] {
        [
            .text(id), .text(secretSHA256), .text(namespace), .text(serviceAccount),
            .integer(UnixTime.floor(createdAt)), .integer(UnixTime.floor(expiresAt)),
            .integer(Int64(maxUses)), .integer(Int64(uses)), .integer(revokedAt.map(UnixTime.floor)),
            .text(createdBy), .integer(lastUsedAt.map(UnixTime.floor)),
        ] + (pinnedRootSHA256.map { [.text($0)] } ?? [])
    }

    /// Reads the current row of a statement that selected `columns`.
    package init(row: some LedgerRow) {
        self.init(
            id: row.text(0),
            secretSHA256: row.text(1),
            namespace: row.text(2),
            serviceAccount: row.text(3),
            createdAt: UnixTime.date(row.integer(4)),
            expiresAt: UnixTime.date(row.integer(5)),
            maxUses: Int(row.integer(6)),
            uses: Int(row.integer(7)),
            revokedAt: row.optionalInteger(8).map(UnixTime.date),
            createdBy: row.text(9),
            lastUsedAt: row.optionalInteger(10).map(UnixTime.date),
            pinnedRootSHA256: row.optionalText(11)
        )
    }

    /// Refuses values the ledger cannot store faithfully or that could never be used.
    package func validate(path: String) throws {
        let problem: String? =
            if id.isEmpty || !Self.isLowercaseHex(id) {
                "the id must be lowercase hex without separators (e.g. '3f9a0c12')"
            } else if secretSHA256.utf8.count != 64 || !Self.isLowercaseHex(secretSHA256) {
                "the secret hash must be the 64 lowercase hex digits of a SHA-256"
            } else if let pin = pinnedRootSHA256, pin.utf8.count != 64 || !Self.isLowercaseHex(pin) {
                "the pinned root must be the 64 lowercase hex digits of a SHA-256"
            } else if maxUses < 1 {
                "maxUses is \(maxUses), but a token must allow at least one use"
            } else if uses < 0 {
                "uses is \(uses), but it cannot be negative"
            } else {
                nil
            }
        if let problem {
            throw LedgerError(
                code: .other,
                message: "Could not create join token '\(id)' in the ledger at \(path): \(problem). Nothing was "
                    + "recorded; fix the caller.")
        }
    }

    private static func isLowercaseHex(_ string: String) -> Bool {
        string.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
}

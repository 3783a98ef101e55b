/// Which columns of which table each kind of event covers, in the fixed order they are encoded, and reading an
/// event's content back from the row as it is now.
///
/// Row-backed kinds (issuance, rejection, token creation) cover the columns that never change after the insert.
/// State kinds (revocation, token use, token revocation, token pin) cover the columns a later change (or a later
/// schema version) sets; their content is the subject followed by those columns. Changing a list here changes every
/// hash: add a new kind instead.
package enum LedgerChainColumns {
    /// A covered column and the type its STRICT table enforces.
    package struct Column: Sendable {
        package enum ValueType: Sendable { case integer, text, blob }
        package let name: String
        package let type: ValueType
    }

    /// Where an event kind's content lives.
    package struct Source: Sendable {
        /// The table holding the row.
        package let table: String
        /// The column the event's subject names; an INTEGER column takes the subject as a decimal number.
        package let key: Column
        /// The covered columns, in encoding order.
        package let columns: [Column]
        /// Whether the content starts with the subject (state kinds) or is the columns alone (row-backed kinds,
        /// whose columns include the key already).
        package let startsWithSubject: Bool

        /// The subject as the value the key column holds, or nil when it cannot be one (not a number).
        package func keyValue(_ subject: String) -> SQLiteStatement.Value? {
            switch key.type {
            case .integer: Int64(subject).map(SQLiteStatement.Value.integer)
            case .text, .blob: .text(subject)
            }
        }

        /// The covered columns' names, comma-separated: a SELECT (or RETURNING) list reading them in order.
        package var columnList: String { columns.map(\.name).joined(separator: ", ") }

        /// The event of `kind` about `subject` from a row that holds `columns` in order, from its first column.
        package func event(_ kind: LedgerChainEvent.Kind, subject: String, from row: some LedgerRow) -> LedgerChainEvent {
            let fields = LedgerChainColumns.read(columns, from: row, startingAt: 0)
            return LedgerChainEvent(
                kind: kind, subject: subject, fields: startsWithSubject ? [.text(subject)] + fields : fields)
        }
    }

    private static func text(_ name: String) -> Column { Column(name: name, type: .text) }
    private static func integer(_ name: String) -> Column { Column(name: name, type: .integer) }

    /// `issuances` without `revoked_at` and `revocation_reason`, which revocation events cover.
    static let issuance: [Column] = [
        text("serial"), text("spiffe_id"), text("trust_domain"), text("namespace"), text("service_account"),
        text("sans"), integer("not_before"), integer("not_after"), integer("issued_at"),
        integer("requested_ttl_seconds"), integer("granted_ttl_seconds"), text("key_type"), text("public_key_sha256"),
        text("csr_sha256"), Column(name: "certificate_der", type: .blob), text("issuer_fingerprint"),
        text("requester"), text("auth_method"), text("peer"),
    ]

    /// Every column of `rejections`, the ledger-assigned id first.
    static let rejection: [Column] = [
        integer("id"), integer("occurred_at"), text("requester"), text("auth_method"), text("requested_identity"),
        text("reason_code"), text("message"), text("peer"),
    ]

    /// `join_tokens` without `uses`, `last_used_at` and `revoked_at`, which token-use and token-revocation
    /// events cover.
    static let tokenCreation: [Column] = [
        text("id"), text("secret_sha256"), text("namespace"), text("service_account"), integer("created_at"),
        integer("expires_at"), integer("max_uses"), text("created_by"),
    ]

    /// Where the content of `kind` lives, or nil for a standalone kind (its payload is its content).
    package static func source(for kind: LedgerChainEvent.Kind) -> Source? {
        switch kind {
        case .issuance:
            Source(table: "issuances", key: text("serial"), columns: issuance, startsWithSubject: false)
        case .rejection:
            Source(table: "rejections", key: integer("id"), columns: rejection, startsWithSubject: false)
        case .tokenCreation:
            Source(table: "join_tokens", key: text("id"), columns: tokenCreation, startsWithSubject: false)
        case .revocation:
            Source(
                table: "issuances", key: text("serial"),
                columns: [integer("revoked_at"), text("revocation_reason")], startsWithSubject: true)
        case .tokenUse:
            Source(
                table: "join_tokens", key: text("id"), columns: [integer("uses"), integer("last_used_at")],
                startsWithSubject: true)
        case .tokenRevocation:
            Source(table: "join_tokens", key: text("id"), columns: [integer("revoked_at")], startsWithSubject: true)
        case .tokenPin:
            // A column added after token-creation's list was fixed, so it is covered by an event of its own.
            Source(
                table: "join_tokens", key: text("id"), columns: [text("pinned_root_sha256")], startsWithSubject: true)
        default:
            nil
        }
    }

    /// The event of `kind` about `subject` as its row holds it now, or nil when the row does not exist or the kind
    /// is standalone. Used to append state events, to chain rows that predate the chain, and by verification.
    static func currentEvent(
        kind: LedgerChainEvent.Kind, subject: String, on connection: SQLiteConnection, operation: String
    ) throws -> LedgerChainEvent? {
        guard let source = source(for: kind), let key = source.keyValue(subject) else { return nil }
        let statement = try connection.prepare(
            "SELECT \(source.columnList) FROM \(source.table) WHERE \(source.key.name) = ?", [key],
            operation: operation)
        guard try statement.step() else { return nil }
        return source.event(kind, subject: subject, from: statement)
    }

    /// Reads `columns` from the current row of `statement`, the first one at column `offset`.
    package static func read(_ columns: [Column], from statement: some LedgerRow, startingAt offset: Int32)
        -> [LedgerChainField]
    {
        columns.enumerated().map { index, column in
            let position = offset + Int32(index)
            switch column.type {
            case .integer: return statement.optionalInteger(position).map(LedgerChainField.integer) ?? .null
            case .text: return statement.optionalText(position).map(LedgerChainField.text) ?? .null
            case .blob: return .blob(statement.blob(position))
            }
        }
    }
}

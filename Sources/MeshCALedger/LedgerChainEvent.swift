/// One entry of the ledger's hash chain before it is appended: what happened, to what, and its content.
///
/// Two sorts of event exist. A *row-backed* event (issuance, rejection, token creation) covers a row of
/// another table: its content is that row's columns, the event stores only their SHA-256, and `audit verify`
/// recomputes it from the row. Every other event stores its content as `payload`: the state events
/// (revocation, token use, token revocation, token pin) record the changed columns of a row as they were right after the
/// change, and standalone events (root change, and kinds added later) have no row at all.
package struct LedgerChainEvent: Sendable, Equatable {
    /// What kind of event this is, as stored in `ledger_events.kind`. New kinds may be added freely: any kind
    /// that is neither row-backed nor a state kind is stored with its payload and verified from it.
    package struct Kind: Hashable, Sendable, CustomStringConvertible {
        /// A certificate was issued: covers the `issuances` row (every column but the revocation columns).
        package static let issuance = Kind("issuance")
        /// A certificate's revocation columns changed: payload (serial, revoked_at, revocation_reason).
        package static let revocation = Kind("revocation")
        /// A request was refused: covers the `rejections` row, id included.
        package static let rejection = Kind("rejection")
        /// A join token was created: covers the `join_tokens` row's columns that never change.
        package static let tokenCreation = Kind("token-creation")
        /// A join token use was consumed: payload (id, uses, last_used_at) after the use.
        package static let tokenUse = Kind("token-use")
        /// A join token was revoked: payload (id, revoked_at).
        package static let tokenRevocation = Kind("token-revocation")
        /// A join token was created with a recorded pin (schema version 5): payload (id, pinned_root_sha256).
        package static let tokenPin = Kind("token-pin")
        /// The CA's root changed (prepared, activated, retired); payload chosen by the caller.
        package static let rootChange = Kind("root-change")

        /// The kinds whose content is a row of another table.
        package static let rowBacked: [Kind] = [.issuance, .rejection, .tokenCreation]
        /// The kinds whose payload must equal the current state of a row, for the latest event per subject.
        package static let stateKinds: [Kind] = [.revocation, .tokenUse, .tokenRevocation, .tokenPin]

        /// The stored name, e.g. "token-creation".
        package let rawValue: String

        /// A kind with this stored name.
        package init(_ rawValue: String) { self.rawValue = rawValue }

        /// The stored name.
        package var description: String { rawValue }

        /// Whether the content lives in another table's row rather than in the event's payload.
        package var isRowBacked: Bool { Self.rowBacked.contains(self) }
    }

    /// What kind of event this is.
    package let kind: Kind
    /// What the event is about: a serial, a rejection id, a token id, a root's fingerprint.
    package let subject: String
    /// The content, in a fixed order per kind (see `LedgerChain+Rows.swift`).
    package let fields: [LedgerChainField]

    /// Creates an event; callers outside this file use the per-kind constructors or `appendEvent`.
    package init(kind: Kind, subject: String, fields: [LedgerChainField]) {
        self.kind = kind
        self.subject = subject
        self.fields = fields
    }

    /// The canonical encoding of `fields`; stored as `payload` unless the event is row-backed.
    package var content: [UInt8] { LedgerChainField.encode(fields) }

    /// The event for an issuance about to be inserted with `parameters` (bound in `IssuanceRecord.columns` order).
    package static func issuance(serial: String, parameters: [SQLiteStatement.Value]) -> LedgerChainEvent {
        let byName = Dictionary(uniqueKeysWithValues: zip(IssuanceRecord.columns, parameters))
        let fields = LedgerChainColumns.issuance.map { LedgerChainField(byName[$0.name] ?? .null) }
        return LedgerChainEvent(kind: .issuance, subject: serial, fields: fields)
    }

    /// The event for a rejection just inserted as row `id` with `parameters` (bound in `insertSQL` order).
    package static func rejection(id: Int64, parameters: [SQLiteStatement.Value]) -> LedgerChainEvent {
        LedgerChainEvent(
            kind: .rejection, subject: String(id), fields: [.integer(id)] + parameters.map(LedgerChainField.init))
    }

    /// The event for a join token about to be inserted with `parameters` (bound in `JoinTokenRecord.columns`
    /// order).
    package static func tokenCreation(id: String, parameters: [SQLiteStatement.Value]) -> LedgerChainEvent {
        let byName = Dictionary(uniqueKeysWithValues: zip(JoinTokenRecord.columns, parameters))
        let fields = LedgerChainColumns.tokenCreation.map { LedgerChainField(byName[$0.name] ?? .null) }
        return LedgerChainEvent(kind: .tokenCreation, subject: id, fields: fields)
    }
}

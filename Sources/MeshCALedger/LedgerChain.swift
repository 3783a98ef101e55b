import Foundation

/// The ledger's hash chain: every recorded change appends one event in the same transaction as the change.
///
/// Table `ledger_events` (migration `0003_event_chain.sql`) holds, per event: `seq` (1, 2, 3, ... without
/// gaps), `kind`, `subject`, `payload` (the encoded content, except for row-backed kinds whose content is a
/// row elsewhere; see `LedgerChainEvent`), `content_sha256` and
///
///     prev_hash = hash of event seq - 1, or 32 zero bytes for seq 1
///     hash      = SHA-256("meshca-ledger-event-v1" || u64be(seq) || prev_hash
///                         || u32be(len) kind || u32be(len) subject || content_sha256)
///     content_sha256 = SHA-256(encoding of the content fields; see `LedgerChainField`)
///
/// So an event's hash covers its own position and identity, its content, and (through `prev_hash`) every event
/// before it. Editing a covered row changes its content hash; editing, deleting, inserting or reordering events
/// breaks a link; rewriting the whole chain after an edit makes it disagree with the signed checkpoints
/// (`LedgerCheckpoint`), which sign `(seq, hash)` of the head with the ledger key.
///
/// To record a new kind of change from inside a write transaction (for example a certificate revocation), run
/// the row change and then `try chain.append(event, on: connection)` in the same transaction; for state kinds use
/// `appendCurrent(_:subject:on:)` after the change, so the event holds exactly what the row now says.
///
/// Cost per event: one indexed read of the head, two SHA-256 computations (content and link) and one insert.
package struct LedgerChain: Sendable {
    /// The hash `prev_hash` holds for the first event.
    package static let genesis = [UInt8](repeating: 0, count: 32)
    /// Separates these hashes from any other SHA-256 use, and names the encoding version.
    static let domain = Array("meshca-ledger-event-v1".utf8)

    /// Whether the schema has the chain tables; false only for ledgers a test opened with an older migration
    /// list, which must keep working without a chain.
    let isEnabled: Bool
    /// Signs the automatic checkpoints; without one, only explicit `checkpoint(signedBy:)` calls write them.
    let signer: (any CheckpointSigner)?
    /// A checkpoint is written whenever an event's `seq` is a multiple of this (at least 1).
    let checkpointInterval: Int

    /// The hash of an event with these stored values.
    package static func link(
        seq: Int64, previous: [UInt8], kind: String, subject: String, contentSHA256: [UInt8]
    ) -> [UInt8] {
        var bytes = domain
        withUnsafeBytes(of: UInt64(bitPattern: seq).bigEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: previous)
        for text in [kind, subject] {
            withUnsafeBytes(of: UInt32(text.utf8.count).bigEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: text.utf8)
        }
        bytes.append(contentsOf: contentSHA256)
        return LedgerChainField.sha256(bytes)
    }

    /// Selects the last event's `seq` and `hash`.
    package static let headSQL = "SELECT seq, hash FROM ledger_events ORDER BY seq DESC LIMIT 1"
    /// Inserts an event; the values are ``Link/values``.
    package static let insertSQL =
        "INSERT INTO ledger_events (seq, kind, subject, payload, content_sha256, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)"

    /// An event placed after a head: its `seq`, its `hash` and the values ``insertSQL`` stores.
    package struct Link {
        package let seq: Int64
        package let hash: [UInt8]
        package let values: [SQLiteStatement.Value]
    }

    /// `event` placed after `head` (`(0, genesis)` for an empty chain).
    package static func link(_ event: LedgerChainEvent, after head: (seq: Int64, hash: [UInt8])) -> Link {
        let seq = head.seq + 1
        let content = event.content
        let contentSHA256 = LedgerChainField.sha256(content)
        let hash = link(
            seq: seq, previous: head.hash, kind: event.kind.rawValue, subject: event.subject, contentSHA256: contentSHA256)
        return Link(
            seq: seq, hash: hash,
            values: [
                .integer(seq), .text(event.kind.rawValue), .text(event.subject),
                event.kind.isRowBacked ? .null : .blob(content), .blob(contentSHA256), .blob(head.hash), .blob(hash),
            ])
    }

    /// The error for `appendCurrent` when `subject` has no row of `kind` in the ledger at `location`.
    package static func noRow(_ kind: LedgerChainEvent.Kind, subject: String, operation: String, location: String) -> LedgerError {
        LedgerError(
            code: .other,
            message: "Could not \(operation): there is no row for \(kind) '\(subject)' in the ledger at "
                + "\(location) to record in the chain. Nothing was recorded; this is a meshca bug, "
                + "report it to the maintainers.")
    }

    /// The event `appendEvent` records: one of a kind with no table row of its own; throws for a row-backed kind.
    package static func standaloneEvent(
        kind: LedgerChainEvent.Kind, subject: String, fields: [LedgerChainField], operation: String
    ) throws -> LedgerChainEvent {
        guard LedgerChainColumns.source(for: kind) == nil else {
            throw LedgerError(
                code: .other,
                message: "Could not \(operation): \(kind) events are recorded together with their row (by record, "
                    + "createToken, revokeToken), not on their own. Nothing was recorded; fix the caller.")
        }
        return LedgerChainEvent(kind: kind, subject: subject, fields: fields)
    }

    /// The last event's `seq` and `hash`, or `(0, genesis)` for an empty chain. Runs inside the caller's write
    /// transaction, so no other connection can append between this read and the caller's insert.
    static func head(on connection: SQLiteConnection, operation: String) throws -> (seq: Int64, hash: [UInt8]) {
        let statement = try connection.prepare(headSQL, operation: operation)
        guard try statement.step() else { return (0, genesis) }
        let hash = statement.blob(1)
        guard hash.count == 32 else {
            throw LedgerError(
                code: .other,
                message:
                    "Could not \(operation): the last event of the ledger at \(connection.path) "
                    + "(#\(statement.integer(0))) has no hash, so the ledger's existing rows were never chained. "
                    + "Reopen the ledger with this meshca (it chains them on open), then run `meshca audit verify`.")
        }
        return (statement.integer(0), hash)
    }

    /// Appends `event` after the current head; on a checkpoint interval, also signs a checkpoint.
    ///
    /// Must run inside the write transaction (and savepoint) of the change the event records, so the two commit
    /// or roll back together and the chain never has a gap.
    func append(_ event: LedgerChainEvent, on connection: SQLiteConnection, operation: String) throws {
        guard isEnabled else { return }
        let link = Self.link(event, after: try Self.head(on: connection, operation: operation))
        try connection.prepare(Self.insertSQL, link.values, operation: operation).run()
        if let signer, link.seq % Int64(max(checkpointInterval, 1)) == 0 {
            try checkpointQuietly(seq: link.seq, head: link.hash, signer: signer, on: connection, operation: operation)
        }
    }

    /// Appends a state event (revocation, token use, token revocation) holding what the row says right now.
    /// Call it after the change, in the same transaction. Throws when the row does not exist.
    func appendCurrent(
        _ kind: LedgerChainEvent.Kind, subject: String, on connection: SQLiteConnection, operation: String
    ) throws {
        guard isEnabled else { return }
        guard
            let event = try LedgerChainColumns.currentEvent(
                kind: kind, subject: subject, on: connection, operation: operation)
        else {
            throw Self.noRow(kind, subject: subject, operation: operation, location: connection.path)
        }
        try append(event, on: connection, operation: operation)
    }

    /// Writes an interval checkpoint in a savepoint of its own. A failure to sign or store it must not fail the
    /// write that reached the interval: the checkpoint is then skipped (verification reports how many events no
    /// checkpoint covers), unless SQLite abandoned the whole transaction, which fails the write as it would anyway.
    private func checkpointQuietly(
        seq: Int64, head: [UInt8], signer: any CheckpointSigner, on connection: SQLiteConnection, operation: String
    ) throws {
        do {
            try connection.savepoint(operation: operation) {
                _ = try LedgerCheckpoint.write(
                    eventCount: seq, head: head, signer: signer, at: Date(), on: connection, operation: operation)
            }
        } catch {
            guard connection.isInTransaction else { throw error }
        }
    }
}

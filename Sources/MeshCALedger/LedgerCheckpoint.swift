import Foundation

/// A signed statement of the chain's length and head: "the ledger had `eventCount` events, the last with hash
/// `headHash`". Stored in `ledger_checkpoints`.
///
/// The signature is Ed25519 by the ledger key over `signedMessage`, this exact UTF-8 text (each line ends with
/// a newline, the hash is lowercase hex, the time is Unix seconds):
///
///     meshca-ledger-checkpoint-v1
///     events=1000
///     head=3f9a...(64 hex digits)
///     created=1750000000
///
/// so anyone with the public key can check it without meshca (`openssl pkeyutl -verify -rawin`).
public struct LedgerCheckpoint: Sendable, Equatable {
    /// The checkpoint's row id: 1 for the first one written.
    public let id: Int64
    /// How many events the chain had: the checkpoint covers events 1...eventCount.
    public let eventCount: Int64
    /// The hash of event `eventCount`, lowercase hex.
    public let headHash: String
    /// When it was signed (whole seconds).
    public let createdAt: Date
    /// The id of the key that signed it (`CheckpointPublicKey.id`).
    public let keyID: String
    /// The Ed25519 signature over `signedMessage`.
    public let signature: [UInt8]

    /// The exact bytes the signature covers.
    public var signedMessage: [UInt8] {
        Self.message(eventCount: eventCount, headHash: headHash, createdAt: UnixTime.floor(createdAt))
    }

    /// Whether `key` signed this checkpoint.
    public func isSigned(by key: CheckpointPublicKey) -> Bool {
        keyID == key.id && key.isValidSignature(signature, for: signedMessage)
    }

    package static func message(eventCount: Int64, headHash: String, createdAt: Int64) -> [UInt8] {
        Array("meshca-ledger-checkpoint-v1\nevents=\(eventCount)\nhead=\(headHash)\ncreated=\(createdAt)\n".utf8)
    }

    /// Creates a checkpoint as stored; the engines are the producers.
    package init(id: Int64, eventCount: Int64, headHash: String, createdAt: Date, keyID: String, signature: [UInt8]) {
        self.id = id
        self.eventCount = eventCount
        self.headHash = headHash
        self.createdAt = createdAt
        self.keyID = keyID
        self.signature = signature
    }

    /// Selects every column a checkpoint is read from, in ``init(row:)``'s order.
    package static let selectSQL = "SELECT id, event_count, head_hash, created_at, key_id, signature FROM ledger_checkpoints"

    /// Reads a row of ``selectSQL``.
    package init(row: some LedgerRow) {
        self.init(
            id: row.integer(0), eventCount: row.integer(1), headHash: Hex.encode(row.blob(2)),
            createdAt: UnixTime.date(row.integer(3)), keyID: row.text(4), signature: row.blob(5))
    }

    /// Whether this checkpoint already covers a head at `seq` with `signer`'s key, so a new one would repeat it.
    package func covers(_ seq: Int64, signedBy signer: any CheckpointSigner) -> Bool {
        eventCount == seq && keyID == signer.publicKey.id
    }

    /// Signs `(eventCount, head)` and stores the checkpoint, inside the caller's write transaction.
    static func write(
        eventCount: Int64, head: [UInt8], signer: any CheckpointSigner, at date: Date,
        on connection: SQLiteConnection, operation: String
    ) throws -> LedgerCheckpoint {
        let createdAt = UnixTime.floor(date)
        let headHash = Hex.encode(head)
        let signature = try signer.sign(message(eventCount: eventCount, headHash: headHash, createdAt: createdAt))
        let keyID = signer.publicKey.id
        try connection.prepare(
            "INSERT INTO ledger_checkpoints (event_count, head_hash, created_at, key_id, signature) "
                + "VALUES (?, ?, ?, ?, ?)",
            [.integer(eventCount), .blob(head), .integer(createdAt), .text(keyID), .blob(signature)],
            operation: operation
        ).run()
        let id = try connection.prepare("SELECT last_insert_rowid()", operation: operation)
        return LedgerCheckpoint(
            id: try id.step() ? id.integer(0) : 0, eventCount: eventCount, headHash: headHash,
            createdAt: UnixTime.date(createdAt), keyID: keyID, signature: signature)
    }

    /// Every checkpoint, oldest first.
    static func all(on connection: SQLiteConnection, operation: String) throws -> [LedgerCheckpoint] {
        try select("ORDER BY id", on: connection, operation: operation)
    }

    /// The newest checkpoint, or nil when none was written.
    static func latest(on connection: SQLiteConnection, operation: String) throws -> LedgerCheckpoint? {
        try select("ORDER BY id DESC LIMIT 1", on: connection, operation: operation).first
    }

    private static func select(
        _ order: String, on connection: SQLiteConnection, operation: String
    ) throws -> [LedgerCheckpoint] {
        try connection.prepare(selectSQL + " \(order)", operation: operation).rows(LedgerCheckpoint.init(row:))
    }
}

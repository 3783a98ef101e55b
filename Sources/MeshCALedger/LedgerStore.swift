import Foundation

/// A ledger the CA host runs on: the issuance seam (``IssuanceLedger``) plus everything the daemon and the
/// commands ask of their ledger beyond it: the hash chain and its signed checkpoints, the root-rotation gates,
/// the expiry queries and the health and size figures.
///
/// Two engines implement it: ``SQLiteLedger`` (one file in the state directory, the embedded default for one
/// host) and `PostgresLedger` (a database shared by several `meshca serve` replicas). Every method means the
/// same on both, and the tests of `MeshCALedgerTests` run against both.
public protocol LedgerStore: IssuanceLedger {
    /// Where the ledger lives, for messages: the database file's path, or the database's URL without a password.
    var location: String { get }

    /// The engine's own consistency check of the database, its schema version and its sizes.
    func health() async throws -> LedgerHealth

    /// Sizes and counts, cheap enough to read every few seconds (no table scan).
    func statistics() async throws -> LedgerStatistics

    /// Signs a checkpoint of the chain's head with `signer` (or the configured one) and stores it; nil while the
    /// chain is empty. Sign only a chain ``verifyChain(publicKey:progress:)`` has just found intact.
    @discardableResult
    func checkpoint(signedBy signer: (any CheckpointSigner)?) async throws -> LedgerCheckpoint?

    /// Walks the whole hash chain and every checkpoint (against `publicKey`, else the configured signer's key)
    /// and lists every problem found, earliest first; `progress` hears (events read, events in all).
    func verifyChain(
        publicKey: CheckpointPublicKey?, progress: (@Sendable (_ done: Int64, _ total: Int64) -> Void)?
    ) async throws -> LedgerChainReport

    /// Durably appends a root change to the hash chain: `action` (prepare, activate, retire) of `subject`, from
    /// the root with SHA-256 `oldRoot` to `newRoot`, at `at` by `actor`, with the identities that had not come
    /// back yet (`lagging`, SPIFFE IDs).
    func recordRootChange(
        _ action: String, subject: String, oldRoot: String, newRoot: String, at: Date, actor: String, lagging: [String]
    ) async throws

    /// Identities whose newest certificate runs out within `window` of `now` with no renewal recorded (at most
    /// `limit` of them, soonest first) and how many there are in all.
    func expiringIdentities(now: Date, within window: Duration, limit: Int) async throws -> (
        identities: [ExpiringIdentity], total: Int
    )

    /// The newest certificate without a SPIFFE ID that `requester` obtained with `authMethod` (the daemon's
    /// serving certificate), or nil.
    func newestCertificateWithoutSPIFFEID(requester: String, authMethod: String) async throws -> IssuanceRecord?

    /// Every workload identity holding a live certificate at `now`, with whether it came back at or after `since`.
    func identityContacts(since: Date, now: Date) async throws -> [IdentityContact]

    /// The live certificates of the CA certificate `issuerFingerprint` not yet renewed (apart from `excluding`),
    /// latest expiry first, and how many were left out because their holder renewed them.
    func certificatesInUse(
        issuedBy issuerFingerprint: String, excluding: [String], now: Date
    ) async throws -> (inUse: [CertificateInUse], renewed: Int)

    /// How many unexpired certificates `requester` obtained from `issuerFingerprint` are revoked for `reason`.
    func revokedCount(issuedBy issuerFingerprint: String, requester: String, reason: String, now: Date) async throws -> Int

    /// Releases the ledger's connections; nothing may be asked of it afterwards.
    func close() async
}

extension LedgerStore {
    /// Signs a checkpoint with the configured signer.
    @discardableResult
    public func checkpoint() async throws -> LedgerCheckpoint? { try await checkpoint(signedBy: nil) }

    /// Verifies the chain against the configured signer's key, without progress reports.
    public func verifyChain() async throws -> LedgerChainReport { try await verifyChain(publicKey: nil, progress: nil) }

}

extension SQLiteLedger: LedgerStore {
    public func recordRootChange(
        _ action: String, subject: String, oldRoot: String, newRoot: String, at: Date, actor: String, lagging: [String]
    ) async throws {
        try await appendEvent(kind: .rootChange, subject: subject, fields: LedgerChainField.rootChange(
            action, oldRoot: oldRoot, newRoot: newRoot, at: at, actor: actor, lagging: lagging))
    }

    /// The database file's path.
    public var location: String { path }

    /// Nothing to release: the connections close when the ledger is deallocated.
    public func close() async {}
}

extension LedgerStore {
    /// What to keep as evidence of a damaged or changed ledger before anything writes to it again, as an instruction
    /// that starts lowercase: the SQLite files, or a dump of the database the ledger is in.
    public var evidenceAdvice: String {
        self is SQLiteLedger
            ? "copy ledger.db, ledger.db-wal and ledger.db-shm aside"
            : "save a dump of the ledger's database aside (pg_dump)"
    }
}

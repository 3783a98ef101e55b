import Foundation
import MeshCAIO
import MeshCALedger

/// A check of a ledger's hash chain and signed checkpoints (``LedgerChainReport``) as plain values.
public struct LedgerVerification: Sendable {
    /// A signed checkpoint: the chain head after `eventCount` events, signed with the ledger key `keyID`.
    public struct Checkpoint: Sendable {
        public let id: Int64
        public let eventCount: Int64
        public let headHash: String
        public let createdAt: Date
        public let keyID: String
        /// The Ed25519 signature over `signedMessage`.
        public let signature: [UInt8]
        public let signedMessage: String

        init(_ checkpoint: LedgerCheckpoint) {
            id = checkpoint.id
            eventCount = checkpoint.eventCount
            headHash = checkpoint.headHash
            createdAt = checkpoint.createdAt
            keyID = checkpoint.keyID
            signature = checkpoint.signature
            signedMessage = String(decoding: checkpoint.signedMessage, as: UTF8.self)
        }
    }

    /// Something that does not verify (``LedgerChainProblem``).
    public struct Problem: Sendable {
        /// `altered`, `deleted`, `inserted`, `reordered` or `bad-checkpoint`.
        public let kind: String
        public let sequence: Int64?
        public let eventKind: String?
        public let subject: String?
        public let message: String
    }

    public let eventCount: Int64
    public let headHash: String
    /// The checkpoints that verified, oldest first.
    public let checkpoints: [Checkpoint]
    /// The id of the ledger key the checkpoints were checked with, if there was one.
    public let ledgerKeyID: String?
    public let problems: [Problem]

    public var isIntact: Bool { problems.isEmpty }
    public var firstProblem: Problem? { problems.first }
    public var lastCheckpoint: Checkpoint? { checkpoints.last }
    /// How many events no checkpoint covers yet.
    public let eventsSinceLastCheckpoint: Int64

    init(_ report: LedgerChainReport) {
        eventCount = report.eventCount
        headHash = report.headHash
        checkpoints = report.checkpoints.map(Checkpoint.init)
        ledgerKeyID = report.publicKey?.id
        problems = report.problems.map {
            Problem(kind: $0.kind.rawValue, sequence: $0.sequence, eventKind: $0.eventKind, subject: $0.subject, message: $0.message)
        }
        eventsSinceLastCheckpoint = report.eventsSinceLastCheckpoint
    }
}

/// `meshca audit verify`: recomputes the ledger's hash chain and checks its signed checkpoints; with `checkpoint`,
/// signs a checkpoint of an intact ledger's head.
public struct VerifyLedger: Sendable {
    /// What was found, and the checkpoint written.
    public struct Verified: Sendable {
        public let report: LedgerVerification
        /// The checkpoint signed now (only for an intact ledger, when asked).
        public let written: LedgerVerification.Checkpoint?
        /// What to keep as evidence of a changed ledger (``LedgerStore/evidenceAdvice``).
        public let evidenceAdvice: String
    }

    public let directory: StateDirectory
    public let ledger: LedgerLocation
    /// Sign a checkpoint when the ledger verifies (the ledger key is created on first use).
    public var checkpoint = false
    /// A PEM file with the Ed25519 public key to check signatures with, instead of the state directory's ledger key.
    public var publicKeyFile: String?
    /// Show no progress on stderr.
    public var quiet = false

    public init(directory: StateDirectory, ledger: LedgerLocation) {
        self.directory = directory
        self.ledger = ledger
    }

    /// Verifies. An unreadable `publicKeyFile` throws ``CAError`` `invalid-argument`.
    public func run() async throws -> Verified {
        let keyPath = FileCheckpointSigner.path(besideLedgerAt: directory.ledgerPath)
        let signer = checkpoint ? try FileCheckpointSigner(path: keyPath) : nil
        let key = try publicKeyFile.map(Self.readPublicKey) ?? signer?.publicKey ?? FileCheckpointSigner.existingPublicKey(at: keyPath)
        let quiet = quiet
        return try await ledger.withExistingLedger(in: directory, quiet: quiet) { ledger in
            let progress = ProgressReporter("verifying the ledger", unit: "events", quiet: quiet)
            let report = try await ledger.verifyChain(publicKey: key, progress: progress.update(done:total:))
            progress.finish()
            let written = report.isIntact && checkpoint ? try await ledger.checkpoint(signedBy: signer) : nil
            return Verified(report: LedgerVerification(report), written: written.map(LedgerVerification.Checkpoint.init), evidenceAdvice: ledger.evidenceAdvice)
        }
    }

    private static func readPublicKey(_ path: String) throws -> CheckpointPublicKey {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CommandInput.invalidArgument("--public-key: cannot read \(path). Give the ledger key's public half (ledger-key.pub.pem).")
        }
        return try CheckpointPublicKey(pemRepresentation: String(decoding: data, as: UTF8.self), source: path)
    }
}

/// What `SQLiteLedger.verifyChain()` found: the chain's size and head, the checkpoints, and every problem.
public struct LedgerChainReport: Sendable {
    /// How many events the chain holds.
    public let eventCount: Int64
    /// The last event's hash, lowercase hex; "" for an empty chain.
    public let headHash: String
    /// Every checkpoint, oldest first, whether or not it verified.
    public let checkpoints: [LedgerCheckpoint]
    /// The key the signatures were checked with, or nil when none was available.
    public let publicKey: CheckpointPublicKey?
    /// Everything that does not match, the earliest event first; rows with no event at all come last.
    public let problems: [LedgerChainProblem]

    /// Creates a report; `verifyChain()` is the only producer.
    package init(
        eventCount: Int64, headHash: String, checkpoints: [LedgerCheckpoint], publicKey: CheckpointPublicKey?,
        problems: [LedgerChainProblem]
    ) {
        self.eventCount = eventCount
        self.headHash = headHash
        self.checkpoints = checkpoints
        self.publicKey = publicKey
        self.problems = problems
    }

    /// Whether the chain, every covered row and every checkpoint verified.
    public var isIntact: Bool { problems.isEmpty }

    /// The earliest problem: the first event that was altered, deleted, inserted or reordered.
    public var firstProblem: LedgerChainProblem? { problems.first }

    /// The newest checkpoint, if any.
    public var lastCheckpoint: LedgerCheckpoint? { checkpoints.last }

    /// How many events no checkpoint covers yet (recorded after the newest one).
    public var eventsSinceLastCheckpoint: Int64 {
        max(0, eventCount - (checkpoints.map(\.eventCount).max() ?? 0))
    }
}

/// One way the ledger no longer matches its hash chain or checkpoints, found by `SQLiteLedger.verifyChain()`.
public struct LedgerChainProblem: Sendable, Equatable, CustomStringConvertible {
    /// What happened to the ledger, as far as the chain can tell.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        /// A covered row or an event was changed after it was recorded.
        public static let altered = Kind(rawValue: "altered")
        /// A row or an event was removed (from the middle, or from the end of a checkpointed chain).
        public static let deleted = Kind(rawValue: "deleted")
        /// A row or an event was added outside meshca.
        public static let inserted = Kind(rawValue: "inserted")
        /// An event sits at another position than the one it was recorded at.
        public static let reordered = Kind(rawValue: "reordered")
        /// A checkpoint's signature does not verify with the ledger key, or cannot be checked.
        public static let badCheckpoint = Kind(rawValue: "bad-checkpoint")

        /// The kind as a stable kebab-case string, for JSON.
        public let rawValue: String

        /// Creates a kind; the set above is closed for callers outside the package.
        package init(rawValue: String) { self.rawValue = rawValue }

        /// The raw value.
        public var description: String { rawValue }
    }

    /// What happened.
    public let kind: Kind
    /// The sequence number of the first event affected (for a range, its start), or nil for a row that has no
    /// event at all (inserted outside meshca) and so no position.
    public let sequence: Int64?
    /// The event's kind ("issuance", "rejection", "token-creation", ...) when known.
    public let eventKind: String?
    /// What the event is about when known: a certificate serial, a rejection id, a join token id.
    public let subject: String?
    /// A sentence naming the event, the row or checkpoint, and what no longer matches.
    public let message: String

    /// Creates a problem; `verifyChain()` is the only producer.
    package init(kind: Kind, sequence: Int64?, eventKind: String?, subject: String?, message: String) {
        self.kind = kind
        self.sequence = sequence
        self.eventKind = eventKind
        self.subject = subject
        // Messages often open with a place ("event #42 ..."); a sentence starts with a capital.
        self.message = message.prefix(1).uppercased() + message.dropFirst()
    }

    /// The message.
    public var description: String { message }

    /// "event #42 (issuance 0a1b)", "event #42", or "issuance 0a1b": how messages name the place.
    static func place(_ sequence: Int64?, _ eventKind: String?, _ subject: String?) -> String {
        let what = [eventKind, subject].compactMap { $0 }.joined(separator: " ")
        guard let sequence else { return what }
        return what.isEmpty ? "event #\(sequence)" : "event #\(sequence) (\(what))"
    }
}

/// Recomputes a ledger's hash chain and compares it with the rows and the signed checkpoints.
///
/// Four independent passes, each finding problems by event sequence number, merged earliest first:
/// 1. the chain itself (this file): positions without gaps, each event's hash over its own columns, and each
///    `prev_hash` equal to the previous event's hash; only the first break is reported, classified by what the
///    stored hashes still reveal (see `classify`);
/// 2. the covered rows (`+Rows`): each row-backed event's row exists and still hashes to `content_sha256`,
///    each state event's row still holds what the latest such event recorded, and no row lacks its event;
/// 3. the checkpoints (`+Checkpoints`): each signature verifies with the ledger key, and each signed head
///    equals the chain's hash at that position (which catches a chain rewritten after an edit).
struct LedgerChainVerifier {
    let connection: SQLiteConnection
    let publicKey: CheckpointPublicKey?
    /// Told (events read, events in the ledger) every ``progressStep`` events of the chain walk, and at its end.
    var progress: (@Sendable (_ done: Int64, _ total: Int64) -> Void)? = nil
    static let progressStep: Int64 = 1000
    let operation = "verify the ledger's chain"
    /// At most this many problems per pass, so a wholesale edit yields a readable report.
    static let problemLimit = 100

    /// One event as stored.
    struct StoredEvent {
        let seq: Int64
        let kind: String
        let subject: String
        let payload: [UInt8]?
        let contentSHA256: [UInt8]
        let previous: [UInt8]
        let hash: [UInt8]

        /// Reads a row selected as `seq, kind, subject, payload, content_sha256, prev_hash, hash, payload IS NULL`.
        init(row: SQLiteStatement) {
            seq = row.integer(0)
            kind = row.text(1)
            subject = row.text(2)
            payload = row.integer(7) == 1 ? nil : row.blob(3)
            contentSHA256 = row.blob(4)
            previous = row.blob(5)
            hash = row.blob(6)
        }

        /// Whether `hash` is what an event with these columns, sitting at `seq` after `previous`, would have.
        func fits(seq: Int64, after previous: [UInt8]) -> Bool {
            if LedgerChainEvent.Kind(kind).isRowBacked == false {
                // The payload is the content: it must be there and hash to `content_sha256`.
                guard let payload, LedgerChainField.sha256(payload) == contentSHA256 else { return false }
            }
            return hash
                == LedgerChain.link(
                    seq: seq, previous: previous, kind: kind, subject: subject, contentSHA256: contentSHA256)
        }

        /// "event #42 (issuance 0a1b)".
        var place: String { LedgerChainProblem.place(seq, kind, subject) }

        func problem(_ kind: LedgerChainProblem.Kind, _ message: String) -> LedgerChainProblem {
            LedgerChainProblem(kind: kind, sequence: seq, eventKind: self.kind, subject: subject, message: message)
        }
    }

    /// What walking the chain found.
    struct Walk {
        var count: Int64 = 0
        var lastSeq: Int64 = 0
        var head: [UInt8] = []
        var problem: LedgerChainProblem?
        /// The stored hash at each position a checkpoint names.
        var hashes: [Int64: [UInt8]] = [:]
        /// The latest state event per (kind, subject): its position and payload.
        var latestState: [StateKey: (seq: Int64, payload: [UInt8])] = [:]
    }

    /// A state event's kind and subject.
    struct StateKey: Hashable {
        let kind: String
        let subject: String
    }

    /// Runs every pass over one snapshot of the ledger.
    func run() throws -> LedgerChainReport {
        // A read transaction: every pass sees the same ledger even while other processes write.
        try connection.execute("BEGIN", operation: operation)
        defer { try? connection.execute("ROLLBACK", operation: operation) }
        let checkpoints = try LedgerCheckpoint.all(on: connection, operation: operation)
        let walk = try walkChain(checkpointCounts: Set(checkpoints.map(\.eventCount)))
        let found =
            (walk.problem.map { [$0] } ?? []) + (try rowProblems()) + (try stateProblems(walk.latestState))
            + checkpointProblems(checkpoints, walk: walk) + (try uncoveredRows())
        // Earliest event first; problems without a position (rows with no event) last; otherwise pass order.
        let problems = found.enumerated().sorted { left, right in
            let (a, b) = (left.element.sequence ?? .max, right.element.sequence ?? .max)
            return a != b ? a < b : left.offset < right.offset
        }.map(\.element)
        return LedgerChainReport(
            eventCount: walk.count, headHash: Hex.encode(walk.head), checkpoints: checkpoints, publicKey: publicKey,
            problems: problems)
    }

    /// Pass 1: reads every event in `seq` order, checking each link until the first break.
    private func walkChain(checkpointCounts: Set<Int64>) throws -> Walk {
        var walk = Walk()
        let statement = try connection.prepare(
            "SELECT seq, kind, subject, payload, content_sha256, prev_hash, hash, payload IS NULL FROM ledger_events "
                + "ORDER BY seq",
            operation: operation)
        var previous: StoredEvent?
        let total = try progress == nil ? 0 : eventTotal()
        defer { progress?(walk.count, max(total, walk.count)) }
        while try statement.step() {
            if walk.count % Self.progressStep == 0 { progress?(walk.count, max(total, walk.count)) }
            let event = StoredEvent(row: statement)
            if walk.problem == nil {
                walk.problem = try classify(event, previous: previous)
            }
            if checkpointCounts.contains(event.seq) { walk.hashes[event.seq] = event.hash }
            if LedgerChainEvent.Kind.stateKinds.contains(LedgerChainEvent.Kind(event.kind)) {
                walk.latestState[StateKey(kind: event.kind, subject: event.subject)] = (event.seq, event.payload ?? [])
            }
            walk.count += 1
            walk.lastSeq = event.seq
            walk.head = event.hash
            previous = event
        }
        return walk
    }

    /// The number of events, for progress (a count over the primary key's index).
    private func eventTotal() throws -> Int64 {
        let statement = try connection.prepare("SELECT count(*) FROM ledger_events", operation: operation)
        return try statement.step() ? statement.integer(0) : 0
    }

    /// Nil when `event` follows `previous` correctly; otherwise what most likely happened at or before it.
    ///
    /// Every legitimately recorded event still fits the position and predecessor it was recorded with, so the
    /// stored `prev_hash` points at where the event came from: at a later event (reordered), at an earlier one
    /// (the events in between were inserted), or at nothing left in the ledger (its predecessor was deleted or
    /// replaced).
    private func classify(_ event: StoredEvent, previous: StoredEvent?) throws -> LedgerChainProblem? {
        let expectedSeq = (previous?.seq ?? 0) + 1
        let expectedHash = previous?.hash ?? LedgerChain.genesis
        if event.seq > expectedSeq {
            let range =
                event.seq - 1 > expectedSeq
                ? "Events #\(expectedSeq) to #\(event.seq - 1) were" : "Event #\(expectedSeq) was"
            return LedgerChainProblem(
                kind: .deleted, sequence: expectedSeq, eventKind: nil, subject: nil,
                message: "\(range) deleted: "
                    + (expectedSeq == 1
                        ? "the chain starts at #\(event.seq)."
                        : "the chain jumps from #\(expectedSeq - 1) to #\(event.seq)."))
        }
        let fits = event.fits(seq: event.seq, after: event.previous)
        if event.previous == expectedHash {
            if fits { return nil }
            if try nextPreviousHash(after: event.seq) == expectedHash {
                return event.problem(
                    .inserted,
                    "\(event.place) was inserted: the event after it was recorded right after "
                        + "#\(expectedSeq - 1), and its own hash does not fit its position.")
            }
            return event.problem(
                .altered,
                "\(event.place) was altered: its stored hash no longer matches its position, kind, subject "
                    + "and content hash, so the ledger_events row was edited.")
        }
        if event.previous == LedgerChain.genesis {
            return event.problem(.reordered, "\(event.place) is out of order: it was recorded as the first event.")
        }
        if let origin = try sequence(ofHash: event.previous) {
            if origin > event.seq {
                return event.problem(
                    .reordered,
                    "\(event.place) is out of order: it was recorded after event #\(origin), which now "
                        + "comes later.")
            }
            let first = origin + 1
            let range = expectedSeq - 1 > first ? "Events #\(first) to #\(expectedSeq - 1) were" : "Event #\(first) was"
            return LedgerChainProblem(
                kind: .inserted, sequence: first, eventKind: nil, subject: nil,
                message: "\(range) inserted: \(event.place) was recorded right after #\(origin).")
        }
        if fits, let previous {
            return previous.problem(
                .altered,
                "\(previous.place) was replaced: \(event.place) was recorded after a different event "
                    + "that is no longer in the ledger.")
        }
        if event.fits(seq: event.seq, after: expectedHash) {
            return event.problem(.altered, "\(event.place) was altered: its prev_hash column was edited.")
        }
        return event.problem(
            .deleted,
            "An event before \(event.place) was deleted: it was recorded after an event that is no longer "
                + "in the ledger, and the events after the gap were renumbered.")
    }

    /// The `prev_hash` of the first event after position `seq`, or nil at the end of the chain.
    private func nextPreviousHash(after seq: Int64) throws -> [UInt8]? {
        let statement = try connection.prepare(
            "SELECT prev_hash FROM ledger_events WHERE seq > ? ORDER BY seq LIMIT 1", [.integer(seq)],
            operation: operation)
        return try statement.step() ? statement.blob(0) : nil
    }

    /// The position of the event whose hash is `hash`, or nil when no event has it. A full scan, done at most
    /// once, for the first break only.
    private func sequence(ofHash hash: [UInt8]) throws -> Int64? {
        let statement = try connection.prepare(
            "SELECT seq FROM ledger_events WHERE hash = ? LIMIT 1", [.blob(hash)], operation: operation)
        return try statement.step() ? statement.integer(0) : nil
    }
}

import Foundation

/// Pass 3 of verification: the signed checkpoints.
extension LedgerChainVerifier {
    /// Each checkpoint must be signed by the ledger key, and its head must be the chain's hash at its position.
    ///
    /// A chain rewritten consistently after an edit passes pass 1; it cannot match a checkpoint signed before
    /// the edit, which bounds the edit to the events after the previous matching checkpoint. A chain cut short
    /// below a checkpoint's length lost its tail.
    func checkpointProblems(_ checkpoints: [LedgerCheckpoint], walk: Walk) -> [LedgerChainProblem] {
        var problems: [LedgerChainProblem] = []
        guard !checkpoints.isEmpty else { return problems }
        if publicKey == nil {
            problems.append(
                LedgerChainProblem(
                    kind: .badCheckpoint, sequence: checkpoints.map(\.eventCount).min(), eventKind: nil, subject: nil,
                    message:
                        "The signatures of \(checkpoints.count) checkpoint(s) cannot be checked: no ledger key was "
                        + "given and there is no \(FileCheckpointSigner.fileName) beside the ledger. Pass the public "
                        + "key with --public-key, or restore \(FileCheckpointSigner.fileName) from a backup."))
        }
        var matched: Int64 = 0
        for checkpoint in checkpoints {
            let name =
                "Checkpoint #\(checkpoint.id) (events 1-\(checkpoint.eventCount), signed "
                + "\(checkpoint.createdAt.formatted(.iso8601)))"
            if let publicKey, checkpoint.keyID != publicKey.id {
                problems.append(
                    bad(
                        checkpoint,
                        "\(name) was signed by key \(checkpoint.keyID), not by the ledger key \(publicKey.id): "
                            + "it was forged, or the ledger key was replaced."))
            } else if let publicKey, !checkpoint.isSigned(by: publicKey) {
                problems.append(
                    bad(
                        checkpoint,
                        "\(name) has a signature that does not verify with the ledger key \(publicKey.id): "
                            + "the checkpoint was forged or edited."))
            }
            if checkpoint.eventCount > walk.lastSeq {
                let first = walk.lastSeq + 1
                let range =
                    checkpoint.eventCount > first
                    ? "Events #\(first) to #\(checkpoint.eventCount) were"
                    : "Event #\(first) was"
                problems.append(
                    LedgerChainProblem(
                        kind: .deleted, sequence: first, eventKind: nil, subject: nil,
                        message: "\(range) deleted: \(name) signed a chain of \(checkpoint.eventCount) events, but the "
                            + "ledger ends at #\(walk.lastSeq)."))
            } else if let hash = walk.hashes[checkpoint.eventCount] {
                if Hex.encode(hash) == checkpoint.headHash {
                    matched = max(matched, checkpoint.eventCount)
                } else {
                    problems.append(
                        LedgerChainProblem(
                            kind: .altered, sequence: matched + 1, eventKind: nil, subject: nil,
                            message: "The chain no longer matches \(name): event #\(checkpoint.eventCount) has hash "
                                + "\(Hex.encode(hash).prefix(16))..., but the checkpoint signed "
                                + "\(checkpoint.headHash.prefix(16)).... An event between #\(matched + 1) and "
                                + "#\(checkpoint.eventCount) was altered, inserted, deleted or reordered, and the "
                                + "chain was recomputed after it."))
                }
            }
            // Without a stored event at the checkpoint's position, pass 1 has reported the gap already.
        }
        return problems
    }

    private func bad(_ checkpoint: LedgerCheckpoint, _ message: String) -> LedgerChainProblem {
        LedgerChainProblem(
            kind: .badCheckpoint, sequence: checkpoint.eventCount, eventKind: nil, subject: nil, message: message)
    }
}

import Foundation

/// The tamper-evident chain's entry points: signing checkpoints, verifying the chain, and recording events that
/// have no table of their own.
extension SQLiteLedger {
    /// Signs a checkpoint of the chain's current head with `signer` (by default the configured
    /// `checkpointSigner`) and stores it; returns it, or nil when the chain is still empty.
    ///
    /// When the newest checkpoint already covers the head with the same key, that one is returned and nothing is
    /// written. The checkpoint vouches for whatever the chain holds now, so sign only a chain `verifyChain()` has
    /// just found intact (as `meshca audit verify --checkpoint` does). Throws `.ledgerKey` without a signer.
    @discardableResult
    public func checkpoint(signedBy signer: (any CheckpointSigner)?) async throws -> LedgerCheckpoint? {
        let operation = "write a ledger checkpoint"
        guard let signer = signer ?? chain.signer else {
            throw LedgerError.noLedgerKey(operation: operation, location: path)
        }
        try requireChain(operation)
        return try await perform { connection in
            try connection.writeTransaction(operation: operation) { () throws -> LedgerCheckpoint? in
                let head = try LedgerChain.head(on: connection, operation: operation)
                guard head.seq > 0 else { return nil }
                if let latest = try LedgerCheckpoint.latest(on: connection, operation: operation),
                    latest.covers(head.seq, signedBy: signer)
                {
                    return latest
                }
                return try LedgerCheckpoint.write(
                    eventCount: head.seq, head: head.hash, signer: signer, at: Date(), on: connection,
                    operation: operation)
            }
        }
    }

    /// Recomputes the whole chain, compares every covered row with its event, and checks every checkpoint's
    /// signature with `publicKey` (by default the configured signer's) and its head against the chain.
    ///
    /// Reads one consistent snapshot; writes by other processes meanwhile are not seen. Problems are not thrown
    /// but listed in the report, earliest event first; throws only when the ledger cannot be read at all.
    /// `progress` is told (events read, events in the ledger) as the chain is walked.
    public func verifyChain(
        publicKey: CheckpointPublicKey?, progress: (@Sendable (_ done: Int64, _ total: Int64) -> Void)?
    ) async throws -> LedgerChainReport {
        try requireChain("verify the ledger's chain")
        let key = publicKey ?? chain.signer?.publicKey
        return try await perform { connection in
            try LedgerChainVerifier(connection: connection, publicKey: key, progress: progress).run()
        }
    }

    /// Durably records an event whose facts live in no table of their own (a root change, ...), by group commit:
    /// `fields` are stored as the event's payload and covered by the chain.
    ///
    /// Code that changes a table row records its event with `LedgerChain.append` inside that write instead, so
    /// the row and its event commit together.
    package func appendEvent(kind: LedgerChainEvent.Kind, subject: String, fields: [LedgerChainField]) async throws {
        let operation = "record \(kind) \(subject)"
        let event = try LedgerChain.standaloneEvent(kind: kind, subject: subject, fields: fields, operation: operation)
        try requireChain(operation)
        let chain = self.chain
        try await write(operation) { connection in
            try chain.append(event, on: connection, operation: operation)
        }
    }

    /// Throws when this ledger was opened with a migration list older than the chain (tests only).
    private func requireChain(_ operation: String) throws {
        guard chain.isEnabled else {
            throw LedgerError(
                code: .other,
                message: "Could not \(operation): the ledger at \(path) was opened without schema version 3, "
                    + "which adds the event chain. Open it with the full migration list.")
        }
    }
}

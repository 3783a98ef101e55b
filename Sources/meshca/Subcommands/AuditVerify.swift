import ArgumentParser
import Foundation
import MeshCADaemon

/// `meshca audit verify`: recompute the ledger's hash chain and check its signed checkpoints.
struct AuditVerify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check that the ledger was not edited: recompute its hash chain and signed checkpoints.",
        discussion: """
            Reports the first event that was altered, deleted, inserted or reordered (its sequence number, kind \
            and serial or id). Exit status 0 when everything verifies, 1 when anything does not (or the ledger \
            cannot be read). Checkpoint signatures are checked with the ledger key, ledger-key.pem in the state \
            directory, or with --public-key.
            """
    )

    @OptionGroup var state: StateOptions
    @OptionGroup var ledger: LedgerOptions

    @Flag(help: "Print JSON (one object: intact, events, head, checkpoints, problems; see docs/reference/json.md).")
    var json = false

    @Flag(help: "When the ledger verifies, sign a checkpoint of its head with the ledger key (created on first use).")
    var checkpoint = false

    @Option(
        help: ArgumentHelp(
            "Check checkpoint signatures with this Ed25519 public key (PEM) instead of ledger-key.pem.",
            valueName: "file"))
    var publicKey: String?

    @OptionGroup var progress: ProgressOptions

    func run() async throws {
        var verify = VerifyLedger(directory: state.directory, ledger: try ledger.location())
        verify.checkpoint = checkpoint
        verify.publicKeyFile = publicKey
        verify.quiet = progress.quiet
        let verified: VerifyLedger.Verified
        do {
            verified = try await verify.run()
        } catch let error as CAError where error.code == .invalidArgument {
            throw ValidationError(error.message)
        }
        let report = verified.report
        if json {
            print(try Self.json(report, written: verified.written))
        } else {
            print(
                Self.text(report, written: verified.written, requestedCheckpoint: checkpoint, evidence: verified.evidenceAdvice),
                terminator: "")
        }
        if !report.isIntact { throw ExitCode(1) }
    }

    /// The human report: one summary line when intact, else every problem, the first one marked.
    /// `evidence`: what to keep before anything writes again (`LedgerStore.evidenceAdvice`).
    static func text(
        _ report: LedgerVerification, written: LedgerVerification.Checkpoint?, requestedCheckpoint: Bool,
        evidence: String = "copy ledger.db, ledger.db-wal and ledger.db-shm aside"
    ) -> String {
        var lines: [String] = []
        if let first = report.firstProblem {
            lines.append(
                "FAIL  the ledger was changed outside meshca: \(report.problems.count) problem(s); the first bad one:")
            lines.append("      \(first.message)")
            for problem in report.problems.dropFirst().prefix(20) {
                lines.append("also  \(problem.message)")
            }
            if report.problems.count > 21 {
                lines.append("      ... and \(report.problems.count - 21) more (see --json)")
            }
            lines.append(
                "\(evidence.prefix(1).uppercased() + evidence.dropFirst()) as evidence before anything writes again, "
                    + "compare them with your latest backup, and see \"Ledger verification\" in docs/operations.md.")
            if requestedCheckpoint {
                lines.append("No checkpoint was written: a checkpoint must never vouch for a changed ledger.")
            }
            return lines.map { $0 + "\n" }.joined()
        }
        lines.append("OK    ledger intact: \(report.eventCount) events, head \(report.headHash.prefix(16))")
        if let last = report.lastCheckpoint {
            lines.append(
                "      \(report.checkpoints.count) checkpoint(s) verified with ledger key "
                    + "\(report.ledgerKeyID ?? "?"); the last covers events 1-\(last.eventCount) "
                    + "(\(last.createdAt.rfc3339))")
        } else if written == nil {
            lines.append("      no checkpoints yet (`meshca audit verify --checkpoint` signs the current head)")
        }
        if let written {
            lines.append(
                "      checkpoint #\(written.id) covers events 1-\(written.eventCount), "
                    + "signed by ledger key \(written.keyID)"
            )
        } else if report.eventsSinceLastCheckpoint > 0, report.lastCheckpoint != nil {
            lines.append(
                "      \(report.eventsSinceLastCheckpoint) event(s) after the last checkpoint are chained "
                    + "but not signed yet"
            )
        }
        return lines.map { $0 + "\n" }.joined()
    }

    /// The JSON report. Field names are snake_case and never renamed; new fields may be added.
    static func json(_ report: LedgerVerification, written: LedgerVerification.Checkpoint?) throws -> String {
        func checkpoint(_ checkpoint: LedgerVerification.Checkpoint?) -> Any {
            guard let checkpoint else { return NSNull() }
            return [
                "id": checkpoint.id, "events": checkpoint.eventCount, "head": checkpoint.headHash,
                "created_at": checkpoint.createdAt.rfc3339, "key_id": checkpoint.keyID,
                "signature": Data(checkpoint.signature).base64EncodedString(),
                "signed_message": checkpoint.signedMessage,
            ] as [String: Any]
        }
        func problem(_ problem: LedgerVerification.Problem?) -> Any {
            guard let problem else { return NSNull() }
            return [
                "kind": problem.kind, "sequence": problem.sequence.map { $0 as Any } ?? NSNull(),
                "event_kind": problem.eventKind ?? NSNull(), "subject": problem.subject ?? NSNull(),
                "message": problem.message,
            ] as [String: Any]
        }
        let object: [String: Any] = [
            "intact": report.isIntact,
            "events": report.eventCount,
            "head": report.headHash,
            "ledger_key_id": report.ledgerKeyID ?? NSNull(),
            "checkpoints": report.checkpoints.count,
            "last_checkpoint": checkpoint(report.lastCheckpoint),
            "events_since_last_checkpoint": report.eventsSinceLastCheckpoint,
            "first_problem": problem(report.firstProblem),
            "problems": report.problems.map(problem),
            "checkpoint_written": checkpoint(written),
        ]
        return try JSONOutput.render(object: object)
    }
}

import ArgumentParser
import Foundation
import MeshCADaemon

/// `meshca backup DEST`: a consistent copy of the state directory, taken while `meshca serve` runs, then verified.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the state directory consistently (also while meshca serve runs) and verify the copy.",
        discussion: """
            Copies the ledger with SQLite's online backup API (one consistent snapshot, never a file copy of a live \
            WAL database) and every CA file under the state directory's shared lock, so a root rotation step is \
            copied entirely or not at all. DEST is created with mode 0700 and must not exist or be empty; keys are \
            written 0600. The copy is then checked as `meshca audit verify` does; when it does not verify it is \
            removed and the exit status is 1. Put it back with `meshca restore DEST`.
            """
    )

    @Argument(help: ArgumentHelp("The directory to create for the copy (new or empty).", valueName: "dest"))
    var destination: String

    @OptionGroup var state: StateOptions
    @OptionGroup var ledger: LedgerOptions

    @Flag(help: "Print JSON (one object: path, trust_domain, ca, ledger, files; see docs/reference/json.md).")
    var json = false

    @OptionGroup var progress: ProgressOptions

    func run() async throws {
        let result: StateBackup.BackupResult
        do {
            result = try await StateBackup.backUp(state.directory, ledger: try ledger.location(), to: destination, quiet: progress.quiet)
        } catch let failure as StateBackup.VerificationFailure {
            printError(String(AuditVerify.text(failure.verification, written: nil, requestedCheckpoint: false).dropLast()))
            throw failure
        }
        if json {
            print(try BackupRendering.json(result.contents, extra: ["source": result.source, "skipped": result.skipped]))
            return
        }
        print("backed up \(result.source) to \(result.contents.path)")
        print(BackupRendering.text(result.contents, skipped: result.skipped), terminator: "")
        print("restore it with: meshca restore \(result.contents.path) --state-dir DIR")
    }
}

/// `meshca restore SRC`: puts a backup back as a state directory, after checking it.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a backup made by meshca backup into the state directory, after verifying it.",
        discussion: """
            Checks that SRC holds a CA whose key matches its certificate and a ledger that verifies (as `meshca audit \
            verify`), copies it beside the state directory and renames it into place, so the state directory is \
            never half-restored. A non-empty state directory is refused unless --force, which moves its contents \
            aside to DIR.replaced-<time> (never deletes them) and still refuses while another process (meshca serve) \
            has its ledger open.
            """
    )

    @Argument(help: ArgumentHelp("The backup directory (written by meshca backup).", valueName: "src"))
    var source: String

    @OptionGroup var state: StateOptions

    @Flag(help: "Replace a non-empty state directory, moving its contents aside to DIR.replaced-<time>.")
    var force = false

    @Flag(help: "Print JSON (one object: path, trust_domain, ca, ledger, files; see docs/reference/json.md).")
    var json = false

    @OptionGroup var progress: ProgressOptions

    func run() async throws {
        let result: StateBackup.RestoreResult
        do {
            result = try await StateBackup.restore(from: source, into: state.directory, force: force, quiet: progress.quiet)
        } catch let failure as StateBackup.VerificationFailure {
            printError(String(AuditVerify.text(failure.verification, written: nil, requestedCheckpoint: false).dropLast()))
            throw failure
        }
        for leftover in result.interrupted {
            printError("warning: \(leftover) is left from an interrupted backup or restore; remove it once you have checked it is not needed.")
        }
        if json {
            let extra: [String: Any] = [
                "source": result.source, "skipped": result.skipped, "interrupted": result.interrupted,
                "previous_moved_to": result.previousMovedTo ?? NSNull(),
            ]
            print(try BackupRendering.json(result.contents, extra: extra))
            return
        }
        print("restored \(result.source) into \(result.contents.path)")
        if let moved = result.previousMovedTo {
            print("  previous   moved to \(moved) (remove it once the restored CA serves)")
        }
        print(BackupRendering.text(result.contents, skipped: result.skipped), terminator: "")
        print("start it with: meshca serve --state-dir \(result.contents.path)")
    }
}

/// What `backup` and `restore` print about a copy.
enum BackupRendering {
    /// The indented lines under "backed up ..." / "restored ...".
    static func text(_ contents: StateBackup.Contents, skipped: [String]) -> String {
        let report = contents.verification
        var lines = [
            "  CA         \(CommandText.escaped(contents.caSubject)), SHA-256 \(contents.caSHA256)",
            "  trust      \(contents.trustDomainName)",
            "  ledger     \(contents.issuances) issuances, \(report.eventCount) events, intact: "
                + (report.isIntact ? "yes" : "no"),
        ]
        if let last = report.lastCheckpoint {
            lines.append(
                "  checkpoint #\(last.id) covers events 1-\(last.eventCount) (\(last.createdAt.rfc3339)), "
                    + "\(report.eventsSinceLastCheckpoint) event(s) after it")
        } else {
            lines.append("  checkpoint none yet")
        }
        if let stage = contents.rotationStage {
            lines.append("  rotation   in progress, stage \(stage.rawValue)")
        }
        let keys = contents.files.filter { !$0.isDirectory && $0.mode == 0o600 }.map(\.path)
        lines.append(
            "  files      \(contents.files.filter { !$0.isDirectory }.count) (0600: \(keys.joined(separator: ", ")))")
        if !skipped.isEmpty {
            lines.append("  skipped    \(skipped.map(CommandText.escaped).joined(separator: ", ")) (neither file nor directory)")
        }
        return lines.map { $0 + "\n" }.joined()
    }

    /// One JSON object; snake_case keys that are never renamed (new ones may be added).
    static func json(_ contents: StateBackup.Contents, extra: [String: Any]) throws -> String {
        let report = contents.verification
        var object: [String: Any] = [
            "path": contents.path,
            "trust_domain": contents.trustDomainName,
            "ca": [
                "subject": contents.caSubject,
                "sha256": contents.caSHA256,
                "not_after": contents.caNotAfter.rfc3339,
            ] as [String: Any],
            "rotation_stage": contents.rotationStage?.rawValue ?? NSNull(),
            "ledger": [
                "intact": report.isIntact,
                "issuances": contents.issuances,
                "events": report.eventCount,
                "head": report.headHash,
                "last_checkpoint": report.lastCheckpoint.map {
                    ["id": $0.id, "events": $0.eventCount, "created_at": $0.createdAt.rfc3339, "key_id": $0.keyID]
                        as [String: Any]
                } ?? NSNull(),
            ] as [String: Any],
            "files": contents.files.map {
                ["path": $0.path, "mode": String($0.mode, radix: 8), "directory": $0.isDirectory] as [String: Any]
            },
        ]
        object.merge(extra) { _, new in new }
        return try JSONOutput.render(object: object)
    }
}

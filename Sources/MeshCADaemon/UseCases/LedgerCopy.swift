import Foundation
import MeshCAIO
import MeshCALedger

/// `meshca ledger migrate`: copies the state directory's SQLite ledger into an empty ledger elsewhere (a
/// PostgreSQL database), hash chain and checkpoints included, then verifies the copy.
///
/// The source must not be in use (stop `meshca serve` first): a copy taken while the daemon writes would miss
/// what it records afterwards. The copy is verified with the state directory's ledger key, as `meshca audit
/// verify` does, and must end on the same chain head as the source.
public struct LedgerCopy: Sendable {
    /// The state directory whose `ledger.db` is copied.
    public let directory: StateDirectory
    /// Where the copy goes; must be a ledger that takes imports (PostgreSQL).
    public let target: LedgerLocation
    /// How many rows go into one insert.
    public var batchSize = 1000

    /// What was copied.
    public struct Copied: Sendable {
        /// Rows per table, in copy order.
        public let rows: [(table: String, count: Int64)]
        /// The copy's verification (intact, with the source's event count and head).
        public let report: LedgerVerification
        /// Where the copy is (the URL without a password).
        public let target: String
    }

    /// A copy of `directory`'s ledger into `target`.
    public init(directory: StateDirectory, target: LedgerLocation) {
        self.directory = directory
        self.target = target
    }

    /// Copies as ``run(progress:)`` does, showing how far on stderr (when it is a terminal) unless `quiet`.
    public func run(quiet: Bool) async throws -> Copied {
        let progress = ProgressReporter("copying the ledger", unit: "rows", quiet: quiet)
        let copied = try await run(progress: progress.update(done:total:))
        progress.finish()
        return copied
    }

    /// Copies every table, then verifies; `progress` hears (rows copied, rows in all).
    public func run(progress: @escaping @Sendable (_ done: Int64, _ total: Int64) -> Void = { _, _ in }) async throws -> Copied {
        guard case .postgres = target else {
            throw DaemonError(.ledgerUnusable, "--to must be a postgres:// URL: the ledger is already SQLite in \(directory.path).")
        }
        guard FileManager.default.fileExists(atPath: directory.ledgerPath) else {
            throw DaemonError(.noCA, "There is no ledger at \(directory.ledgerPath) to migrate. Check --state-dir.")
        }
        guard !SQLiteLedger.isOpenByAnotherProcess(ledgerAt: directory.ledgerPath) else {
            throw DaemonError(
                .stateInUse,
                "Another process has \(directory.ledgerPath) open (a running `meshca serve`?). Stop it, so nothing is "
                    + "recorded after the copy, and run `meshca ledger migrate` again.")
        }
        let keyPath = FileCheckpointSigner.path(besideLedgerAt: directory.ledgerPath)
        let key = try FileCheckpointSigner.existingPublicKey(at: keyPath)
        let source = try SQLiteLedger(path: directory.ledgerPath)
        let before = try await source.verifyChain(publicKey: key, progress: nil)
        guard before.isIntact else {
            throw DaemonError(
                .backupInvalid,
                "The ledger at \(directory.ledgerPath) does not verify (\(before.problems.count) problem(s); the first: "
                    + "\(before.firstProblem?.message ?? "")). Nothing was copied. Run `meshca audit verify` and see "
                    + "\"Ledger verification\" in docs/operations.md.")
        }
        return try await target.withLedger(in: directory) { opened in
            guard let copy = opened as? any LedgerImporting else {
                throw DaemonError(.ledgerUnusable, "\(opened.location) cannot take a copy of a ledger.")
            }
            guard try await copy.isEmpty() else {
                throw DaemonError(
                    .targetNotEmpty,
                    "\(copy.location) already holds a ledger (or part of an interrupted copy); nothing was copied. "
                        + "Migrate into a new, empty database (dropdb and createdb it if it holds only a failed copy).")
            }
            var counts: [(table: String, count: Int64)] = []
            var total: Int64 = 0
            for table in LedgerExport.tables { total += try await source.count(of: table) }
            var done: Int64 = 0
            progress(0, total)
            for table in LedgerExport.tables {
                var after: Int64 = 0
                var copied: Int64 = 0
                while true {
                    let batch = try await source.export(table, after: after, limit: batchSize)
                    if !batch.rows.isEmpty { try await copy.importRows(batch.rows, into: table) }
                    copied += Int64(batch.rows.count)
                    done += Int64(batch.rows.count)
                    progress(done, total)
                    guard let next = batch.next else { break }
                    after = next
                }
                counts.append((table.name, copied))
            }
            try await copy.finishImport()
            let report = try await copy.verifyChain(publicKey: key, progress: nil)
            guard report.isIntact, report.eventCount == before.eventCount, report.headHash == before.headHash else {
                throw DaemonError(
                    .backupInvalid,
                    "The copy in \(copy.location) does not verify as the original does (\(report.problems.first?.message ?? "another chain head")). "
                        + "Keep using the SQLite ledger; drop the database and report this.")
            }
            return Copied(rows: counts, report: LedgerVerification(report), target: copy.location)
        }
    }
}

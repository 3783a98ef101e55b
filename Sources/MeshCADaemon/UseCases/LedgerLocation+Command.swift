import Foundation
import MeshCAIO
import MeshCALedger

extension LedgerLocation {
    /// Opens the ledger of an existing CA in `directory` (never creates a CA or an SQLite ledger), runs `body` on it
    /// and closes it. The first open after the upgrade to the hash chain shows its progress on stderr unless `quiet`.
    public func withExistingLedger<T>(
        in directory: StateDirectory, quiet: Bool = false, _ body: (any LedgerStore) async throws -> T
    ) async throws -> T {
        guard directory.hasCA || exists(in: directory) else {
            _ = try CAState.load(from: directory)  // throws the "no CA here, run meshca init" message
            throw DaemonError(.noCA, "There is no ledger in \(directory.path).")
        }
        let progress = ProgressReporter("chaining the ledger's existing rows (once, after the upgrade)", unit: "events", quiet: quiet)
        var options = Options()
        options.backfillProgress = { done, total in
            progress.update(done: done, total: total)
            if done == total { progress.finish() }
        }
        return try await withLedger(in: directory, options: options, body)
    }
}

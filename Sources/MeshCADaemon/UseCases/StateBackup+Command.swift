import Foundation
import MeshCACore
import MeshCAIO
import X509

extension StateBackup {
    /// `meshca backup`: ``backUp(_:to:progress:)`` for a CA whose ledger is at `ledger`, showing the copy's
    /// verification on stderr (when it is a terminal) unless `quiet`. A PostgreSQL ledger is refused: pg_dump
    /// backs it up.
    public static func backUp(
        _ directory: StateDirectory, ledger: LedgerLocation, to destination: String, quiet: Bool
    ) async throws -> BackupResult {
        if case .postgres(let url, _) = ledger {
            // A ledger.db left in the directory (from before `ledger migrate`) is not the ledger any more.
            throw DaemonError(
                .ledgerUnusable,
                "This CA's ledger is in PostgreSQL (\(url)), which meshca backup does not copy. Back the database up "
                    + "with PostgreSQL's tools (pg_dump) and copy the state directory's files (\(directory.path)) "
                    + "as they are; check a restored database with `meshca audit verify --ledger URL`.")
        }
        let progress = ProgressReporter("verifying the copy's ledger", unit: "events", quiet: quiet)
        defer { progress.finish() }
        return try await backUp(directory, to: destination, progress: progress.update(done:total:))
    }

    /// `meshca restore`: ``restore(from:into:force:progress:)``, showing the backup's verification on stderr (when
    /// it is a terminal) unless `quiet`.
    public static func restore(from source: String, into directory: StateDirectory, force: Bool, quiet: Bool) async throws -> RestoreResult {
        let progress = ProgressReporter("verifying the backup's ledger", unit: "events", quiet: quiet)
        defer { progress.finish() }
        return try await restore(from: source, into: directory, force: force, progress: progress.update(done:total:))
    }
}

extension StateBackup.Contents {
    /// The CA's trust domain.
    public var trustDomainName: String { trustDomain.name }
    /// The signing CA's subject, SHA-256 fingerprint and expiry.
    public var caSubject: String { caCertificate.subject.description }
    public var caSHA256: String { caCertificate.sha256Fingerprint }
    public var caNotAfter: Date { caCertificate.notValidAfter }
    /// The ledger's verification as plain values.
    public var verification: LedgerVerification { LedgerVerification(ledger) }
}

extension StateBackup.VerificationFailure {
    /// What did not verify, as plain values.
    public var verification: LedgerVerification { LedgerVerification(report) }
}

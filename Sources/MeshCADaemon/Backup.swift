import Foundation
import MeshCACore
import MeshCAErrors
import MeshCAIO
import MeshCALedger
import X509
import MeshCAPlatform

/// `meshca backup` and `meshca restore` as a library: a consistent copy of a state directory, taken while
/// `meshca serve` runs, checked before anyone relies on it, and put back in one rename.
///
/// A copy holds every file of the state directory except the live ledger files (`ledger.db`, `-wal`, `-shm`,
/// `-journal`), dot-files (`.lock`, temporaries of atomic writes) and `*.tmp` files: the ledger is copied with
/// SQLite's online backup API (``SQLiteLedger/backUp(ledgerAt:to:busyTimeout:)``) and the CA's files are read, all
/// under the directory's shared lock (``StateDirectory/withSharedLock(_:)``), so a root rotation step (which
/// records in the ledger, then changes files under the exclusive lock) is in the copy entirely or not at all.
/// Private keys (`*key.pem`) are written 0600, directories 0700, other files with their mode.
///
/// Both commands build the copy in a sibling directory (`<target>.backing-up-XXXXXX`, `<target>.restoring-XXXXXX`),
/// check it, and only then rename it to its final path: the target is never half-written, a failure leaves
/// nothing behind, and a crash leaves the sibling, which ``restore(from:into:force:)`` reports.
public enum StateBackup {
    /// One file or directory of a copy.
    public struct CopiedFile: Sendable, Equatable {
        /// The path inside the copy, e.g. `ca-key.pem` or `next/ca-cert.pem`.
        public let path: String
        /// The permission bits it was written with.
        public let mode: mode_t
        /// Whether it is a directory.
        public let isDirectory: Bool
    }

    /// What a copy holds, as read back from the copy itself.
    public struct Contents: Sendable {
        /// Where the copy is.
        public let path: String
        /// The CA's trust domain.
        public let trustDomain: TrustDomain
        /// The signing CA certificate (`ca-cert.pem`), whose key was checked to match.
        public let caCertificate: Certificate
        /// The stage of a root rotation in progress in the copy, if any.
        public let rotationStage: RootRotation.Progress.Stage?
        /// How many issuances its ledger holds.
        public let issuances: Int64
        /// The ledger's verification, as `meshca audit verify` reports it.
        public let ledger: LedgerChainReport
        /// Every file and directory copied, the ledger included, in path order.
        public let files: [CopiedFile]
    }

    /// What ``backUp(_:to:)`` wrote.
    public struct BackupResult: Sendable {
        /// The state directory that was copied.
        public let source: String
        /// The copy, at its final path.
        public let contents: Contents
        /// Entries left out because they are neither files nor directories (sockets, symbolic links).
        public let skipped: [String]
    }

    /// What ``restore(from:into:force:)`` did.
    public struct RestoreResult: Sendable {
        /// The backup that was restored.
        public let source: String
        /// The restored state directory.
        public let contents: Contents
        /// Where the directory's previous contents were moved (`--force` on a non-empty directory), if anywhere.
        public let previousMovedTo: String?
        /// Entries of the backup left out because they are neither files nor directories.
        public let skipped: [String]
        /// Sibling directories left by an interrupted backup or restore of this target (found, left alone).
        public let interrupted: [String]
    }

    /// A copy whose ledger does not verify; the copy has been removed. `report` says what is wrong.
    ///
    /// Not a ``CAError``: it carries the verification report, which `meshca backup` and `restore` print.
    public struct VerificationFailure: CodedError {
        /// Always `backup-unverified`.
        public var code: CAError.Code { .backupUnverified }
        /// The verification of the copy's ledger.
        public let report: LedgerChainReport
        /// The sentence for a person: what was checked, what happened to the copy, what to do.
        public let message: String
    }

    // MARK: backup

    /// Copies `directory` into `destination` (created 0700; it must not exist or be empty), verifies the copy
    /// as `meshca audit verify` does and returns what it holds.
    ///
    /// Throws ``VerificationFailure`` when the copy's ledger does not verify, `DaemonError` `.targetNotEmpty` for a
    /// non-empty destination, `.backupInvalid` when the copy's CA does not load, `.noCA` when there is nothing to
    /// back up. In every failure the destination is left as it was.
    public static func backUp(
        _ directory: StateDirectory, to destination: String, progress: (@Sendable (_ done: Int64, _ total: Int64) -> Void)? = nil
    ) async throws -> BackupResult {
        let destination = FilePaths.absolute(destination)
        _ = try CAState.load(from: directory)  // the "no CA here" messages, before anything is written
        guard FileManager.default.fileExists(atPath: directory.ledgerPath) else {
            throw DaemonError(
                .noCA,
                "There is no ledger in \(directory.path) (ledger.db); nothing to back up. Run `meshca init` or "
                    + "`meshca serve` there first, or point --state-dir at the CA to back up.")
        }
        guard !isInside(destination, directory.path) else {
            throw DaemonError(
                .targetNotEmpty,
                "The backup destination \(destination) is inside the state directory \(directory.path); a backup "
                    + "must live elsewhere. Give a path outside it.")
        }
        try requireEmptyOrAbsent(
            destination, what: "The backup destination",
            fix: "meshca backup writes only into a new or empty directory, so an older backup is never mixed "
                + "with a newer one. Choose a new path (e.g. one named after today's date) or empty it first.")
        let staged = try StagedDirectory(for: destination, purpose: "backing-up")
        do {
            let (files, skipped) = try await StateDirectory.offCooperativePool {
                try copyState(of: directory, into: staged.path)
            }
            let contents = try await examine(
                staged.path, files: files, label: "The backup of \(directory.path)", source: directory.path,
                progress: progress)
            try staged.commit()
            return BackupResult(source: directory.path, contents: contents.at(destination), skipped: skipped)
        } catch {
            staged.discard()
            throw error
        }
    }

    // MARK: restore

    /// Restores the backup in `source` into `directory`: checks that the backup's CA loads with a key that matches
    /// its certificate, copies it beside `directory`, verifies the copy's ledger, and renames it into place.
    ///
    /// A non-empty `directory` is refused unless `force`; with `force` its contents are moved aside to
    /// `<directory>.replaced-<UTC time>` (never deleted), but never while another process has its ledger open
    /// (a running `meshca serve`): `.stateInUse`. Throws ``VerificationFailure`` when the backup's ledger does not
    /// verify, `DaemonError` `.backupInvalid` when its CA does not load, `.targetNotEmpty` for a non-empty
    /// directory without `force`. In every failure `directory` is left as it was.
    public static func restore(
        from source: String, into directory: StateDirectory, force: Bool, progress: (@Sendable (_ done: Int64, _ total: Int64) -> Void)? = nil
    ) async throws -> RestoreResult {
        let source = FilePaths.absolute(source)
        let target = directory.path
        guard source != target, !isInside(target, source), !isInside(source, target) else {
            throw DaemonError(
                .targetNotEmpty,
                "Cannot restore \(source) into \(target): one is inside the other. Restore into a directory apart from the backup.")
        }
        let backup = StateDirectory(path: source)
        do {
            _ = try CAState.load(from: backup)
        } catch let error as DaemonError {
            throw DaemonError(
                .backupInvalid,
                "\(source) is not a usable meshca backup: \(error.message) Nothing was restored; give the directory "
                    + "`meshca backup` wrote.")
        }
        guard FileManager.default.fileExists(atPath: backup.ledgerPath) else {
            throw DaemonError(
                .backupInvalid,
                "\(source) holds no ledger.db, so it is not a complete meshca backup. Nothing was restored; give the "
                    + "directory `meshca backup` wrote.")
        }
        let replacing = !isEmptyOrAbsent(target)
        if replacing {
            guard force else {
                throw DaemonError(
                    .targetNotEmpty,
                    "The state directory \(target) is not empty (\(entriesSummary(target))). meshca restore does not "
                        + "overwrite a CA: restore into a new --state-dir, or pass --force to move the current contents "
                        + "aside to \(target).replaced-<time> (stop `meshca serve` on it first).")
            }
            try requireNotInUse(directory)
        }
        let interrupted = StagedDirectory.leftovers(for: target)
        let parent = FilePaths.directory(of: target)
        do {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        } catch {
            throw DaemonError(
                .stateDirectoryUnusable,
                "Cannot create \(parent) (\(FilePaths.reason(error))). Choose a --state-dir in a writable location.")
        }
        let staged = try StagedDirectory(for: target, purpose: "restoring")
        do {
            let (files, skipped) = try await StateDirectory.offCooperativePool {
                try copyState(of: backup, into: staged.path)
            }
            let contents = try await examine(
                staged.path, files: files, label: "The backup \(source)", source: source, progress: progress)
            var movedTo: String?
            if replacing {
                // Checked again just before: a daemon started since the first check would lose its files.
                try requireNotInUse(directory)
                let aside = target + ".replaced-" + stamp(Date())
                guard rename(target, aside) == 0 else {
                    throw DaemonError(
                        .writeFailed,
                        "Cannot move \(target) aside to \(aside) (\(String(cString: strerror(errno)))). Nothing was "
                            + "restored. If \(target) is a mount point, restore into a new directory and point "
                            + "--state-dir at it.")
                }
                movedTo = aside
            }
            try staged.commit()
            return RestoreResult(
                source: source, contents: contents.at(target), previousMovedTo: movedTo, skipped: skipped,
                interrupted: interrupted)
        } catch {
            staged.discard()
            throw error
        }
    }

    // MARK: copying

    /// The ledger through SQLite's backup API, then every other file, all under `source`'s shared lock.
    static func copyState(of source: StateDirectory, into destination: String) throws -> ([CopiedFile], [String]) {
        try source.withSharedLock {
            try SQLiteLedger.backUp(ledgerAt: source.ledgerPath, to: destination + "/ledger.db")
            var files = [CopiedFile(path: "ledger.db", mode: 0o600, isDirectory: false)]
            var skipped: [String] = []
            try copyTree(from: source.path, to: destination, prefix: "", files: &files, skipped: &skipped)
            AtomicFile.syncDirectory(destination)
            return (files.sorted { $0.path < $1.path }, skipped)
        }
    }

    /// The live ledger's files, which the backup API copies (a copy of them would not be consistent).
    private static let ledgerFiles: Set<String> = ["ledger.db", "ledger.db-wal", "ledger.db-shm", "ledger.db-journal"]

    private static func copyTree(
        from source: String, to destination: String, prefix: String, files: inout [CopiedFile], skipped: inout [String]
    ) throws {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: source).sorted()
        } catch {
            throw DaemonError(
                .unreadableFile,
                "Cannot list \(source) (\(FilePaths.reason(error))). Run meshca as the user that owns the state directory.")
        }
        for name in names {
            if name.hasPrefix(".") || name.hasSuffix(".tmp") || (prefix.isEmpty && ledgerFiles.contains(name)) { continue }
            let from = source + "/" + name
            let to = destination + "/" + name
            let attributes: [FileAttributeKey: Any]
            do {
                attributes = try FileManager.default.attributesOfItem(atPath: from)  // does not follow symbolic links
            } catch {
                if !FileManager.default.fileExists(atPath: from) { continue }  // removed since the listing
                throw DaemonError(.unreadableFile, "Cannot read \(from) (\(FilePaths.reason(error))).")
            }
            switch attributes[.type] as? FileAttributeType {
            case .typeDirectory?:
                guard mkdir(to, 0o700) == 0 else { throw writeFailure(to, errno) }
                chmod(to, 0o700)
                files.append(CopiedFile(path: prefix + name, mode: 0o700, isDirectory: true))
                try copyTree(from: from, to: to, prefix: prefix + name + "/", files: &files, skipped: &skipped)
                AtomicFile.syncDirectory(to)
            case .typeRegular?:
                let permissions = mode_t((attributes[.posixPermissions] as? NSNumber)?.uint16Value ?? 0o600) & 0o777
                let mode: mode_t = name.hasSuffix("key.pem") ? 0o600 : permissions
                guard let data = FileManager.default.contents(atPath: from) else {
                    if !FileManager.default.fileExists(atPath: from) { continue }
                    throw DaemonError(
                        .unreadableFile,
                        "Cannot read \(from) (permission denied?). Run meshca as the user that owns the state directory.")
                }
                try writeNew(data, to: to, mode: mode)
                files.append(CopiedFile(path: prefix + name, mode: mode, isDirectory: false))
            default:
                skipped.append(prefix + name)
            }
        }
    }

    /// Creates `path` (which must not exist) with exactly `mode`, writes `data` and fsyncs it.
    private static func writeNew(_ data: Data, to path: String, mode: mode_t) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw writeFailure(path, errno) }
        defer { close(descriptor) }
        guard fchmod(descriptor, mode) == 0 else { throw writeFailure(path, errno) }
        let bytes = [UInt8](data)
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw writeFailure(path, errno)
            }
            written += count
        }
        guard fsync(descriptor) == 0 else { throw writeFailure(path, errno) }
    }

    private static func writeFailure(_ path: String, _ code: Int32) -> DaemonError {
        DaemonError(
            .writeFailed,
            "Cannot write \(path) (\(String(cString: strerror(code)))). "
                + (code == ENOSPC ? "The disk is full; free some space and retry." : "Check that its directory is writable."))
    }

    // MARK: checking a copy

    /// Loads the CA in the copy at `path` (key matching certificate, for the signing CA and for a rotation's
    /// next and previous roots), verifies its ledger as `meshca audit verify` does, and counts what it holds.
    /// `label` names the copy in messages ("The backup of /var/lib/meshca"), `source` is what it was copied from.
    static func examine(
        _ path: String, files: [CopiedFile], label: String, source: String, progress: (@Sendable (_ done: Int64, _ total: Int64) -> Void)? = nil
    ) async throws -> Contents {
        let copy = StateDirectory(path: path)
        let state: CAState
        let stage: RootRotation.Progress.Stage?
        do {
            state = try CAState.load(from: copy)
            try requireMatchingKey(copy.nextRootCertificatePath, copy.nextRootKeyPath)
            try requireMatchingKey(copy.previousRootCertificatePath, copy.previousRootKeyPath)
            stage = try RootRotation.progress(in: copy)?.stage
        } catch let error as DaemonError {
            throw DaemonError(
                .backupInvalid, "\(label) does not hold a usable CA: \(error.message) Nothing was written.")
        }
        let (report, issuances) = try await verifyLedger(in: copy, progress: progress)
        guard report.isIntact else {
            throw VerificationFailure(
                report: report,
                message: "\(label) does not verify: its ledger has \(report.problems.count) problem(s) (the first: "
                    + "\(report.firstProblem?.message ?? "?")). The copy was removed; nothing was written. Run "
                    + "`meshca audit verify --state-dir \(source)` to see whether it was changed outside meshca.")
        }
        return Contents(
            path: path, trustDomain: state.trustDomain, caCertificate: state.signer.certificate, rotationStage: stage,
            issuances: issuances, ledger: report, files: files)
    }

    /// `meshca audit verify` on the copy: the hash chain, and the checkpoints against the copy's ledger key. The
    /// ledger is closed again before this returns, so the copy holds no `-wal` or `-shm` file.
    private static func verifyLedger(
        in copy: StateDirectory, progress: (@Sendable (_ done: Int64, _ total: Int64) -> Void)?
    ) async throws -> (LedgerChainReport, Int64) {
        try await StateDirectory.offCooperativePool {
            let key = try FileCheckpointSigner.existingPublicKey(
                at: FileCheckpointSigner.path(besideLedgerAt: copy.ledgerPath))
            return try SQLiteLedger.verifyFile(at: copy.ledgerPath, publicKey: key, progress: progress)
        }
    }

    /// When the certificate at `certificatePath` exists, its key must exist and match it.
    private static func requireMatchingKey(_ certificatePath: String, _ keyPath: String) throws {
        guard FileManager.default.fileExists(atPath: certificatePath) else { return }
        guard let certificate = StateDirectory.certificate(at: certificatePath) else {
            throw DaemonError(.unreadableFile, "\(certificatePath) holds no readable PEM certificate.")
        }
        // A key in an HSM is opened (the token must be reachable to check it); a file key is read.
        guard let key = (try? CAKeyFile.load(keyPath))?.key else {
            throw DaemonError(.unreadableFile, "\(keyPath) (or \(CAKeyFile.referencePath(for: keyPath)) for a key in an HSM), the key of \(certificatePath), is missing, unreadable or its HSM is unreachable.")
        }
        guard key.publicKey == certificate.publicKey else {
            throw DaemonError(.unreadableFile, "\(keyPath) is not the key of \(certificatePath).")
        }
    }

    // MARK: targets

    private static func isEmptyOrAbsent(_ path: String) -> Bool {
        (try? FileManager.default.contentsOfDirectory(atPath: path).isEmpty) ?? !FileManager.default.fileExists(atPath: path)
    }

    private static func requireEmptyOrAbsent(_ path: String, what: String, fix: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return }
        guard isDirectory.boolValue else {
            throw DaemonError(.targetNotEmpty, "\(what) \(path) exists and is not a directory. \(fix)")
        }
        guard isEmptyOrAbsent(path) else {
            throw DaemonError(.targetNotEmpty, "\(what) \(path) is not empty (\(entriesSummary(path))). \(fix)")
        }
    }

    /// "holds 7 entries: ca-cert.pem, ca-key.pem, ..." for a refusal message.
    private static func entriesSummary(_ path: String) -> String {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
        guard !names.isEmpty else { return "it exists and is not a directory" }
        let shown = names.prefix(4).map(\.escapedForLog).joined(separator: ", ")
        return "holds \(names.count) entr\(names.count == 1 ? "y" : "ies"): \(shown)\(names.count > 4 ? ", ..." : "")"
    }

    /// Refuses when another process has the ledger of `directory` open. meshca serve holds no lock on the state
    /// directory itself, but SQLite shows every open connection to the ledger (see
    /// ``SQLiteLedger/isOpenByAnotherProcess(ledgerAt:)``).
    private static func requireNotInUse(_ directory: StateDirectory) throws {
        guard SQLiteLedger.isOpenByAnotherProcess(ledgerAt: directory.ledgerPath) else { return }
        throw DaemonError(
            .stateInUse,
            "Another process has the ledger \(directory.ledgerPath) open (a running `meshca serve` on \(directory.path)?). "
                + "Stop it before restoring over its state directory, then run meshca restore --force again.")
    }

    /// Whether `path` is `directory` or lies under it.
    private static func isInside(_ path: String, _ directory: String) -> Bool {
        path == directory || path.hasPrefix(directory.hasSuffix("/") ? directory : directory + "/")
    }

    /// `20250102T030405Z`: for the name of a moved-aside directory.
    static func stamp(_ date: Date) -> String {
        let text: String = date.formatted(.iso8601)
        return String(text.filter { character in character != "-" && character != ":" })
    }
}

extension StateBackup.Contents {
    /// The same contents, described at the path the copy was renamed to.
    fileprivate func at(_ path: String) -> Self {
        Self(
            path: path, trustDomain: trustDomain, caCertificate: caCertificate, rotationStage: rotationStage,
            issuances: issuances, ledger: ledger, files: files)
    }
}

/// A directory built beside its final path (`<final>.<purpose>-XXXXXX`, mode 0700) and renamed onto it when
/// complete: the final path is never half-written.
struct StagedDirectory {
    /// Where it goes when complete.
    let final: String
    /// Where it is built.
    let path: String

    /// Makes the staging directory.
    init(for final: String, purpose: String) throws {
        var template = Array((final + ".\(purpose)-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw DaemonError(
                .writeFailed,
                "Cannot create a directory beside \(final) (\(String(cString: strerror(errno)))). Its parent "
                    + "\(FilePaths.directory(of: final)) must exist and be writable by this user.")
        }
        self.final = final
        self.path = String(cString: made)
        chmod(path, 0o700)
    }

    /// Renames the staging directory onto `final` (which must be absent or an empty directory) and makes the
    /// rename durable.
    func commit() throws {
        guard rename(path, final) == 0 else {
            let code = errno
            throw DaemonError(
                .writeFailed,
                "Cannot move the finished copy into \(final) (\(String(cString: strerror(code)))). "
                    + (code == EBUSY || code == EXDEV
                        ? "\(final) is a mount point; give a new directory inside it instead."
                        : "Check that \(final) is absent or an empty directory and that its parent is writable."))
        }
        AtomicFile.syncDirectory(FilePaths.directory(of: final))
    }

    /// Removes the staging directory and everything in it.
    func discard() {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Staging directories of `final` left by an interrupted backup or restore.
    static func leftovers(for final: String) -> [String] {
        let parent = FilePaths.directory(of: final)
        let base = FilePaths.lastComponent(of: final)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? []
        return names.filter { $0.hasPrefix(base + ".restoring-") || $0.hasPrefix(base + ".backing-up-") }
            .sorted().map { parent + "/" + $0 }
    }
}

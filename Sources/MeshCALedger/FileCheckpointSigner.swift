import Foundation
import MeshCAPlatform

/// The ledger key in a PEM file, by default `ledger-key.pem` in the state directory beside `ledger.db`.
///
/// The file holds an Ed25519 private key as PKCS#8 (`-----BEGIN PRIVATE KEY-----`), mode 0600. It is created on
/// first use, together with its public half `ledger-key.pub.pem` (mode 0644) for auditors, who can check
/// checkpoints with that alone (`meshca audit verify --public-key`, or `openssl pkeyutl -verify`). Back both up
/// with the ledger; keep a copy of the public half off the CA host, so a replaced key is noticed.
public struct FileCheckpointSigner: CheckpointSigner {
    /// The key's file name in a state directory.
    public static let fileName = "ledger-key.pem"

    /// The key file.
    public let path: String
    /// The public half.
    public var publicKey: CheckpointPublicKey { key.publicKey }
    private let key: InMemoryCheckpointSigner

    /// Loads the key at `path`, creating it (and its public half) when there is none.
    ///
    /// Throws `.ledgerKey` when the file is readable by group or others, is not an Ed25519 private key, or cannot
    /// be created; the message names the file and the fix. Two processes creating it at once end up with the same
    /// key: the file appears complete or not at all, and the slower one loads the faster one's key.
    public init(path: String) throws {
        self.path = path
        if let existing = try Self.load(path) {
            self.key = existing
            return
        }
        let created = InMemoryCheckpointSigner()
        if try Self.createExclusively(path, contents: created.pemRepresentation) {
            self.key = created
            // A convenience copy for auditors; the private key file remains the source of truth, so a failure
            // here (a read-only directory would already have failed above) is not worth failing the caller for.
            try? Data(created.publicKey.pemRepresentation.utf8)
                .write(to: URL(fileURLWithPath: Self.publicKeyPath(for: path)), options: .atomic)
        } else if let winner = try Self.load(path) {
            self.key = winner
        } else {
            throw Self.failure(path, "it vanished while being created; retry")
        }
    }

    /// The key file in the directory of the ledger at `ledgerPath`, loaded or created as by `init(path:)`.
    public init(besideLedgerAt ledgerPath: String) throws {
        try self.init(path: Self.path(besideLedgerAt: ledgerPath))
    }

    /// Where the key for the ledger at `ledgerPath` lives: `ledger-key.pem` in the same directory.
    public static func path(besideLedgerAt ledgerPath: String) -> String {
        let directory = (ledgerPath as NSString).deletingLastPathComponent
        return (directory.isEmpty ? "." : directory) + "/" + fileName
    }

    /// Where the public half of the key file at `path` is written: `ledger-key.pem` -> `ledger-key.pub.pem`.
    public static func publicKeyPath(for path: String) -> String {
        (path.hasSuffix(".pem") ? String(path.dropLast(4)) : path) + ".pub.pem"
    }

    /// The public half of the existing key at `path`, or nil when there is no such file; never creates one.
    public static func existingPublicKey(at path: String) throws -> CheckpointPublicKey? {
        try load(path)?.publicKey
    }

    /// The Ed25519 signature over `message`.
    public func sign(_ message: [UInt8]) throws -> [UInt8] {
        try key.sign(message)
    }

    private static func load(_ path: String) throws -> InMemoryCheckpointSigner? {
        var status = stat()
        guard stat(path, &status) == 0 else {
            if errno == ENOENT { return nil }
            throw failure(path, "it cannot be read (\(String(cString: strerror(errno))))")
        }
        let mode = Int(status.st_mode) & 0o777
        guard mode & 0o077 == 0 else {
            throw LedgerError(
                code: .ledgerKey,
                message: "The ledger key \(path) has mode \(String(mode, radix: 8)), but it must be readable by its "
                    + "owner only, or anyone who can read it can forge ledger checkpoints. Run `chmod 600 \(path)`.")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw failure(path, "it cannot be read by this user; run meshca as the CA's user")
        }
        return try InMemoryCheckpointSigner(pemRepresentation: String(decoding: data, as: UTF8.self), source: path)
    }

    /// Writes `contents` to a private temporary file and links it to `path`, which fails if `path` exists; so
    /// `path` never exists half-written. Returns false when another process created `path` first.
    private static func createExclusively(_ path: String, contents: String) throws -> Bool {
        let temporary = path + ".\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            let directory = (path as NSString).deletingLastPathComponent
            throw failure(
                path,
                "it cannot be created (\(String(cString: strerror(errno)))); the directory \(directory) must "
                    + "exist and be writable by the user running meshca")
        }
        defer { unlink(temporary) }
        // The umask may have removed bits but never adds any; fchmod makes the mode exactly 0600.
        fchmod(descriptor, 0o600)
        let bytes = Array(contents.utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor) == 0
        close(descriptor)
        guard written == bytes.count, synced else {
            throw failure(path, "writing it failed (\(String(cString: strerror(errno)))); free space and retry")
        }
        guard link(temporary, path) == 0 else {
            if errno == EEXIST { return false }
            throw failure(path, "it cannot be created (\(String(cString: strerror(errno))))")
        }
        syncDirectory(of: path)
        return true
    }

    /// Makes the new directory entry durable, so a crash cannot lose a key that already signed checkpoints.
    private static func syncDirectory(of path: String) {
        let directory = (path as NSString).deletingLastPathComponent
        let descriptor = open(directory.isEmpty ? "." : directory, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }

    private static func failure(_ path: String, _ reason: String) -> LedgerError {
        LedgerError(code: .ledgerKey, message: "Could not load the ledger key \(path): \(reason).")
    }
}

import Foundation
import MeshCAIO
import SwiftASN1
import X509
import MeshCAPlatform

/// The directory holding one CA's state: its certificate and key, its trust bundle and its ledger.
///
/// Layout (Istio's `cacerts` names where they exist):
/// - `ca-cert.pem`: the signing CA certificate (the root, for a self-signed CA)
/// - `ca-key.pem`: its private key, mode 0600
/// - `cert-chain.pem`: only for a plug-in CA, the certificates between `ca-cert.pem` and the roots
/// - `root-cert.pem`: the trust bundle handed to workloads
/// - `trust-domain`: the trust domain, one line
/// - `ledger.db` (+ `-wal`, `-shm`): the issuance ledger
/// - during a root rotation (`meshca root`): `rotation.json` (the stage), `next/ca-cert.pem` + `next/ca-key.pem`
///   + `next/cross-cert.pem` (the prepared root and its bridge, until activated), `previous/ca-cert.pem` +
///   `previous/ca-key.pem` + `previous/cross-cert.pem` (the old root and the bridge, from activation until
///   retired); `retired/` keeps the certificates (never the keys) of retired roots
/// - `crl.pem`: the signing CA's certificate revocation list (PEM), rewritten by `meshca revoke` and `meshca serve`
/// - `.lock`: taken while a CA is being created, so two first commands do not both create one
public struct StateDirectory: Sendable {
    /// The absolute path of the directory.
    public let path: String

    /// Uses `path` as the state directory.
    public init(path: String) {
        self.path = path
    }

    /// Where the state lives: `explicit` (`--state-dir`), else `MESHCA_STATE_DIR`, else
    /// `${XDG_DATA_HOME:-~/.local/share}/meshca`.
    public static func resolve(explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> StateDirectory {
        if let explicit, !explicit.isEmpty { return StateDirectory(path: FilePaths.absolute(explicit)) }
        if let fromEnv = environment["MESHCA_STATE_DIR"], !fromEnv.isEmpty { return StateDirectory(path: FilePaths.absolute(fromEnv)) }
        let dataHome = environment["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (environment["HOME"] ?? NSHomeDirectory()) + "/.local/share"
        return StateDirectory(path: FilePaths.absolute(dataHome) + "/meshca")
    }

    /// Whether this process may create files here: false on a read-only mount (a Kubernetes Secret) or without
    /// write permission.
    public var isWritable: Bool { access(path, W_OK) == 0 }

    /// `ca-cert.pem`.
    public var caCertificatePath: String { path + "/ca-cert.pem" }
    /// `ca-key.pem`.
    public var caKeyPath: String { path + "/ca-key.pem" }
    /// `root-cert.pem`.
    public var bundlePath: String { path + "/root-cert.pem" }
    /// `cert-chain.pem`: for a plug-in CA, the certificates between `ca-cert.pem` and the roots.
    public var chainPath: String { path + "/cert-chain.pem" }
    /// `trust-domain`.
    public var trustDomainPath: String { path + "/trust-domain" }
    /// `ledger.db`.
    public var ledgerPath: String { path + "/ledger.db" }
    /// `rotation.json`: present while a root rotation is in progress.
    public var rotationPath: String { path + "/rotation.json" }
    /// `next/`: the prepared root of a rotation, until it is activated.
    public var nextRootDirectory: String { path + "/next" }
    /// `next/ca-cert.pem`: the prepared root.
    public var nextRootCertificatePath: String { nextRootDirectory + "/ca-cert.pem" }
    /// `next/ca-key.pem`: the prepared root's key.
    public var nextRootKeyPath: String { nextRootDirectory + "/ca-key.pem" }
    /// `next/cross-cert.pem`: the prepared root certified by the current one (the bridge, until activation).
    public var nextBridgePath: String { nextRootDirectory + "/cross-cert.pem" }
    /// `previous/`: the old root of a rotation, from activation until it is retired.
    public var previousRootDirectory: String { path + "/previous" }
    /// `previous/ca-cert.pem`: the old root.
    public var previousRootCertificatePath: String { previousRootDirectory + "/ca-cert.pem" }
    /// `previous/ca-key.pem`: the old root's key, kept to sign its CRL until retire.
    public var previousRootKeyPath: String { previousRootDirectory + "/ca-key.pem" }
    /// `previous/cross-cert.pem`: the active root certified by the old one, served by the daemon until retire.
    public var bridgePath: String { previousRootDirectory + "/cross-cert.pem" }
    /// `retired/`: certificates of retired roots, for the record.
    public var retiredDirectory: String { path + "/retired" }
    /// `crl.pem`: the current CRL of the signing CA (see ``CRLPublisher``).
    public var crlPath: String { path + "/crl.pem" }

    /// Whether a CA has been created here (`ca-cert.pem` is written last, so it marks a finished init).
    public var hasCA: Bool { FileManager.default.fileExists(atPath: caCertificatePath) }

    /// Creates the directory (and its parents) when missing, mode 0700. An existing directory is left as is.
    public func create() throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw DaemonError(.stateDirectoryUnusable, "The state directory \(path) exists but is not a directory. Remove it or choose another --state-dir.")
            }
            guard access(path, R_OK | W_OK | X_OK) == 0 else {
                throw DaemonError(.stateDirectoryUnusable, "The state directory \(path) is not readable and writable by this user. Fix its ownership/permissions (it should be 0700 and owned by the user running meshca) or choose another --state-dir.")
            }
            return
        }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw DaemonError(.stateDirectoryUnusable, "Cannot create the state directory \(path) (\(FilePaths.reason(error))). Choose a writable location with --state-dir or MESHCA_STATE_DIR.")
        }
        // Another process may have created it between the check and the call; both are fine.
        chmod(path, 0o700)
    }

    /// Runs `body` while holding an exclusive lock on `.lock` in the directory (flock; released on exit,
    /// even when the process dies). Taken by everything that changes the CA's files (init, root rotation).
    ///
    /// Not re-entrant: `body` must not call anything that takes the lock again (such as ``CAState/load(from:)``).
    public func withLock<T>(_ body: () throws -> T) throws -> T {
        let fd = open(path + "/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw DaemonError(.stateDirectoryUnusable, "Cannot open \(path)/.lock (\(String(cString: strerror(errno)))). Check the permissions of \(path).")
        }
        return try Self.holding(fd, LOCK_EX, body)
    }

    /// Runs `body` while holding a shared lock on `.lock`, so it never reads the CA's files halfway through a
    /// change made under ``withLock(_:)`` (a root activation replaces the certificate and the key). Without a
    /// lock file (a directory this user cannot write, or one from before locking), `body` runs unlocked.
    public func withSharedLock<T>(_ body: () throws -> T) rethrows -> T {
        let fd = open(path + "/.lock", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return try body() }
        return try Self.holding(fd, LOCK_SH, body)
    }

    /// Takes `operation` (LOCK_EX or LOCK_SH) on `fd`, retrying when a signal interrupts the wait, runs `body`,
    /// then unlocks and closes `fd`.
    private static func holding<T>(_ fd: Int32, _ operation: Int32, _ body: () throws -> T) rethrows -> T {
        defer { close(fd) }
        while flock(fd, operation) != 0 {
            guard errno == EINTR else { break }
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }
}

extension StateDirectory {
    /// The first certificate in the PEM file at `path`, or nil when the file is missing, unreadable or holds
    /// none: for the optional files of a root rotation, whose absence is a state, not an error.
    package static func certificate(at path: String) -> Certificate? {
        FileManager.default.contents(atPath: path).flatMap { try? Certificate(pemEncoded: String(decoding: $0, as: UTF8.self)) }
    }

    /// Runs `body`, which may wait for the directory's lock (another meshca process changing the CA) and for
    /// fsync, on a dispatch thread rather than on Swift's cooperative pool, so a long wait never stalls the
    /// daemon's other tasks (there are only as many pool threads as cores).
    package static func offCooperativePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
        }
    }
}

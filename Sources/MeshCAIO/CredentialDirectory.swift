#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

import MeshCAPlatform

/// The agent's output directory, updated so that no reader ever pairs a key with the wrong chain.
///
/// Layout (the way kubelet updates projected volumes):
/// ```
/// DIR/..2026_11_27_11_48_00.123_ab12/   one complete version: cert-chain.pem, key.pem, root-cert.pem
/// DIR/..data -> ..2026_11_27_11_48_00.123_ab12
/// DIR/cert-chain.pem -> ..data/cert-chain.pem   (and key.pem, root-cert.pem, and the combined file if any)
/// ```
/// With a combined file name (`--combined-pem NAME`), each version also holds `NAME`: the chain followed by the
/// key in one file (mode of `key.pem`), for servers and clients that read both from one path (HAProxy, curl).
/// A new version is written and fsynced in full, then `..data` is replaced with one `rename(2)`, so the
/// switch is atomic. A reader that must never mix versions resolves `..data` once and reads the files
/// from that version directory; one that opens the top-level names sees each file whole, and the old
/// version stays on disk until the next-but-one update.
public struct CredentialDirectory: Sendable {
    /// The directory (`--out`).
    public let path: String
    /// Permission bits of `key.pem` (`--file-mode`, default 0600).
    public let keyMode: mode_t
    /// Owner and group for the files (`--file-owner`), or nil to keep the agent's.
    public let owner: (uid: uid_t, gid: gid_t)?
    /// The name of the file holding chain and key together (`--combined-pem`), or nil for none.
    public let combinedName: String?

    static let dataLink = "..data"
    static let files = [CredentialFiles.chainFile, CredentialFiles.keyFile, CredentialFiles.bundleFile]

    /// The directory at `path`; `combinedName` adds a file with the chain and the key (check it with
    /// ``combinedNameProblem(_:)`` first).
    public init(path: String, keyMode: mode_t = 0o600, owner: (uid: uid_t, gid: gid_t)? = nil, combinedName: String? = nil) {
        self.path = path
        self.keyMode = keyMode
        self.owner = owner
        self.combinedName = combinedName
    }

    /// Why `name` cannot be the combined file's name, or nil: a plain file name, not one of the three files nor a
    /// name the version layout uses.
    public static func combinedNameProblem(_ name: String) -> String? {
        if name.isEmpty { return "it is empty" }
        if name.contains("/") { return "it is a path; give a file name, which is written in --out" }
        if name.hasPrefix(".") { return "it starts with \".\" (names starting with \"..\" are the agent's versions)" }
        if files.contains(name) || name == "crl.pem" { return "it is the name of a file the agent already writes" }
        if name.utf8.count > 200 { return "it is longer than 200 bytes" }
        return nil
    }

    /// The files of one version: the three, and the combined one when configured.
    private var versionFiles: [String] { Self.files + (combinedName.map { [$0] } ?? []) }

    /// Writes a complete new version and switches to it atomically; returns the version directory name.
    @discardableResult
    public func write(chainPEM: String, keyPEM: String, bundlePEM: String, at now: Date = Date()) throws -> String {
        try prepareDirectory()
        let stamp = now.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
            .map { "-:T".contains($0) ? "_" : $0 == "Z" ? "" : String($0) }.joined()
        let version = "..\(stamp)_\(UUID().uuidString.prefix(4).lowercased())"
        let versionPath = path + "/" + version
        guard mkdir(versionPath, 0o755) == 0 else { throw failure("creating \(versionPath)", errno) }
        do {
            try AtomicFile.write(keyPEM, to: versionPath + "/" + CredentialFiles.keyFile, mode: keyMode)
            try AtomicFile.write(chainPEM, to: versionPath + "/" + CredentialFiles.chainFile, mode: 0o644)
            try AtomicFile.write(bundlePEM, to: versionPath + "/" + CredentialFiles.bundleFile, mode: 0o644)
            if let combinedName {
                let chain = chainPEM.hasSuffix("\n") ? chainPEM : chainPEM + "\n"
                try AtomicFile.write(chain + keyPEM, to: versionPath + "/" + combinedName, mode: keyMode)
            }
            if let owner {
                for name in versionFiles + [""] where chown(versionPath + (name.isEmpty ? "" : "/" + name), owner.uid, owner.gid) != 0 {
                    throw failure("changing the owner of \(versionPath)/\(name)", errno)
                }
            }
        } catch {
            try? FileManager.default.removeItem(atPath: versionPath)
            throw error
        }
        let previous = currentVersion
        try replaceSymlink(Self.dataLink, pointingTo: version)
        for name in versionFiles where currentLinkTarget(name) != Self.dataLink + "/" + name {
            try replaceSymlink(name, pointingTo: Self.dataLink + "/" + name)
        }
        removeVersions(except: [version, previous].compactMap { $0 })
        return version
    }

    /// The version directory `..data` points to, if any.
    public var currentVersion: String? { currentLinkTarget(Self.dataLink) }

    /// The directory holding the current files: the version `..data` points to, resolved once, or `path`
    /// itself when there is no `..data` (files written by `meshca issue`). Read all three files from it.
    public var currentFiles: String {
        guard let version = currentVersion else { return path }
        return version.hasPrefix("/") ? version : path + "/" + version
    }

    /// The three files of the current version (or plain files left by `meshca issue`), if all exist.
    public func read() -> (chainPEM: String, keyPEM: String, bundlePEM: String)? {
        let base = currentFiles
        func text(_ name: String) -> String? {
            FileManager.default.contents(atPath: base + "/" + name).map { String(decoding: $0, as: UTF8.self) }
        }
        guard let chain = text(CredentialFiles.chainFile), let key = text(CredentialFiles.keyFile), let bundle = text(CredentialFiles.bundleFile) else {
            return nil
        }
        return (chain, key, bundle)
    }

    /// Creates the directory when missing and checks that it is a writable directory that no other user can
    /// rearrange: neither it nor a directory above it may be writable by others without the sticky bit.
    public func prepareDirectory() throws {
        var info = stat()
        if stat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else {
                throw DaemonError(.writeFailed, "The output path \(path) is a file, not a directory. Choose another --out.")
            }
        } else {
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            } catch {
                throw DaemonError(.writeFailed, "Cannot create the output directory \(path) (\(FilePaths.reason(error))). Choose a writable --out.")
            }
        }
        guard access(path, W_OK | X_OK) == 0 else {
            throw DaemonError(.writeFailed, "The output directory \(path) is not writable by this user (uid \(getuid())). Fix its permissions or choose another --out.")
        }
        if let refusal = SharedDirectory.refusal(
            path, what: "The output directory", risk: "another user could replace the files and links written there",
            choose: "choose an --out")
        {
            throw DaemonError(.writeFailed, refusal)
        }
    }

    private func currentLinkTarget(_ name: String) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: path + "/" + name)
    }

    /// Points `name` at `target` atomically: a temporary symlink renamed over the old entry.
    private func replaceSymlink(_ name: String, pointingTo target: String) throws {
        let temporary = path + "/.\(name).tmp-\(UUID().uuidString.prefix(8))"
        guard symlink(target, temporary) == 0 else { throw failure("creating a symlink for \(name)", errno) }
        guard rename(temporary, path + "/" + name) == 0 else {
            let err = errno
            unlink(temporary)
            throw failure("replacing \(path)/\(name)", err)
        }
        AtomicFile.syncDirectory(path)
    }

    private func removeVersions(except keep: [String]) {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        for entry in entries where entry.hasPrefix("..") && entry != Self.dataLink && !keep.contains(entry) {
            try? FileManager.default.removeItem(atPath: path + "/" + entry)
        }
    }

    private func failure(_ what: String, _ err: Int32) -> DaemonError {
        DaemonError(
            .writeFailed,
            "Cannot update \(path): \(what) failed (\(String(cString: strerror(err)))). "
                + (err == ENOSPC ? "The disk is full; the previous files are unchanged." : "Check that --out is a writable directory; the previous files are unchanged.")
        )
    }
}

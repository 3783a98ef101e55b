#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

import MeshCAPlatform

/// Whole-file writes that never leave a half-written file behind: the bytes go to a temporary file in
/// the same directory, created with the final mode, are fsynced, and are renamed over the target; then
/// the directory is fsynced so the rename itself survives a power cut.
public enum AtomicFile {
    /// Writes `contents` to `path` with permission bits `mode` (e.g. `0o600` for keys).
    public static func write(_ contents: String, to path: String, mode: mode_t) throws {
        let directory = FilePaths.directory(of: path)
        let base = FilePaths.lastComponent(of: path)
        let temporary = "\(directory.isEmpty ? "." : directory)/.\(base).tmp-\(UUID().uuidString.prefix(8))"
        func failure(_ what: String, _ err: Int32) -> DaemonError {
            DaemonError(
                .writeFailed,
                "Cannot write \(path): \(what) failed (\(String(cString: strerror(err)))). "
                    + (err == ENOSPC ? "The disk is full; free some space and try again."
                        : "Check that \(directory.isEmpty ? "the directory" : directory) exists and is writable by this user.")
            )
        }
        // O_EXCL: never follow or reuse something an attacker placed at the temporary name.
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw failure("creating a temporary file", errno) }
        var ok = false
        defer {
            if !ok { unlink(temporary) }
        }
        // The umask may have narrowed the mode given to open(); set it exactly.
        guard fchmod(fd, mode) == 0 else {
            let err = errno
            close(fd)
            throw failure("setting permissions", err)
        }
        let bytes = Array(contents.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                let err = errno
                close(fd)
                throw failure("writing", err)
            }
            written += n
        }
        guard fsync(fd) == 0 else {
            let err = errno
            close(fd)
            throw failure("fsync", err)
        }
        close(fd)
        guard rename(temporary, path) == 0 else { throw failure("renaming into place", errno) }
        ok = true
        syncDirectory(directory.isEmpty ? "." : directory)
    }

    /// fsyncs a directory so that entries created or renamed in it are durable.
    package static func syncDirectory(_ directory: String) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    /// The permission bits of `path`, or `nil` when it does not exist.
    public static func mode(of path: String) -> mode_t? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return info.st_mode & 0o7777
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

import MeshCAPlatform

/// Path strings and file-error reasons, without `NSString`, so that the agent links FoundationEssentials
/// alone (no ICU, no libstdc++) and stays small.
package enum FilePaths {
    /// `path` without its last component (`""` for a bare name), like `dirname` without the `"."`.
    package static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The last component of `path`.
    package static func lastComponent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// `path` made absolute against the current directory, with a leading `~` expanded to `$HOME`, and `.`,
    /// `..` and repeated slashes removed (lexically; symlinks are left alone).
    package static func absolute(_ path: String) -> String {
        var expanded = path
        if path == "~" || path.hasPrefix("~/"), let home = ProcessInfo.processInfo.environment["HOME"] {
            expanded = home + path.dropFirst()
        }
        if !expanded.hasPrefix("/") {
            expanded = FileManager.default.currentDirectoryPath + "/" + expanded
        }
        var components: [Substring] = []
        for component in expanded.split(separator: "/") where component != "." {
            if component == ".." {
                _ = components.popLast()
            } else {
                components.append(component)
            }
        }
        return "/" + components.joined(separator: "/")
    }

    /// What `lstat(2)` says of the entry at `path` itself (a symlink is not followed): its device, inode and
    /// whether it is a socket; nil when there is no entry.
    package static func entry(at path: String) -> (device: UInt64, inode: UInt64, isSocket: Bool)? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return (UInt64(info.st_dev), UInt64(info.st_ino), info.st_mode & S_IFMT == S_IFSOCK)
    }

    /// ``entry(at:)`` for the entry `name` in the directory open as `directory` (`fstatat(2)`, not following a symlink).
    package static func entry(in directory: Int32, named name: String) -> (device: UInt64, inode: UInt64, isSocket: Bool)? {
        var info = stat()
        guard fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return nil }
        return (UInt64(info.st_dev), UInt64(info.st_ino), info.st_mode & S_IFMT == S_IFSOCK)
    }

    /// The POSIX reason (e.g. "Permission denied") behind a file error from `FileManager`, for messages.
    package static func reason(_ error: any Error) -> String {
        if let posix = (error as? CocoaError)?.underlying as? POSIXError {
            return String(cString: strerror(posix.code.rawValue))
        }
        if let posix = error as? POSIXError {
            return String(cString: strerror(posix.code.rawValue))
        }
        return "\(error)"
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

import MeshCAPlatform

/// Refuses directories other users may rearrange: a directory (or any directory above it) that is writable by
/// others and lacks the sticky bit lets any local user rename or replace what the agent puts there (swap the
/// Workload API socket for their own, or for a symlink). A sticky directory such as `/tmp` (mode 1777) is fine:
/// there only an entry's owner may rename or remove it.
package enum SharedDirectory {
    /// `path` and each directory above it (following symlinks, as a lookup does) that is writable by others
    /// without the sticky bit, outermost first, with its permission bits; empty when there is none.
    package static func writableByOthers(_ path: String) -> [(path: String, mode: mode_t)] {
        let absolute = FilePaths.absolute(path)
        var prefixes = ["/"]
        var current = ""
        for component in absolute.split(separator: "/") {
            current += "/" + component
            prefixes.append(current)
        }
        return prefixes.compactMap { prefix in
            var info = stat()
            guard stat(prefix, &info) == 0, info.st_mode & S_IFMT == S_IFDIR,
                info.st_mode & S_IWOTH != 0, info.st_mode & S_ISVTX == 0
            else { return nil }
            return (prefix, info.st_mode & 0o7777)
        }
    }

    /// A sentence refusing `path` when it or a directory above it is writable by others without the sticky bit,
    /// naming each such directory, its mode and the fix; nil when `path` is safe. `what` names the directory
    /// ("The Workload API socket's directory"), `risk` says what another user could do, `choose` what to pick
    /// instead ("another --out").
    package static func refusal(_ path: String, what: String, risk: String, choose: String) -> String? {
        let shared = writableByOthers(path)
        guard !shared.isEmpty else { return nil }
        let listed = shared.map { "\($0.path) (mode 0\(String($0.mode, radix: 8)))" }.joined(separator: ", ")
        let commands = shared.map { "`chmod o-w \($0.path)`" }.joined(separator: " and ")
        return "\(what) \(path) is not safe: \(listed) can be written by every user and has no sticky bit, so "
            + "\(risk). Run \(commands) (or make it sticky with `chmod +t`, as /tmp is), or \(choose) in a "
            + "directory only the agent's user can write."
    }
}

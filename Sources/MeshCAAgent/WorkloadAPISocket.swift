#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import MeshCAIO

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The Workload API's socket file: its directory before binding, its mode after, its removal at exit.
///
/// Mode 0666: anyone who can reach the directory may connect, and admission is decided per call from
/// the kernel's peer credentials (``PeerCredentials``). A tighter mode would turn a refused caller's
/// `PERMISSION_DENIED`, which names the uid and the fix, into a bare `EACCES` at connect, and would make
/// an agent running as root unusable by a workload uid without extra group setup. SPIRE's agent socket
/// is world-connectable for the same reason. Operators who want a second fence restrict the directory.
struct WorkloadAPISocket: Sendable {
    /// The socket file's mode after binding.
    static let mode: mode_t = 0o666
    /// The mode of directories created on the way to the socket.
    static let directoryMode: Int = 0o755
    /// Linux's `sun_path` holds 108 bytes including the terminating NUL.
    static let maximumPathBytes = 107

    /// Identifies one socket file, so that exit removes only the file this server bound.
    struct Identity: Equatable, Sendable {
        let device: UInt64
        let inode: UInt64
    }

    /// The absolute path of the socket.
    let path: String

    /// A socket at `path`, made absolute against the current directory.
    init(path: String) {
        self.path = URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// Checks the path, creates missing parent directories (0755), and leaves any stale socket for the
    /// bind to replace. Refuses to touch a path that holds something other than a socket.
    func prepare() throws {
        guard path.utf8.count <= Self.maximumPathBytes else {
            throw WorkloadAPIError(
                .badSocketPath,
                "The Workload API socket path \(path) is \(path.utf8.count) bytes; Unix sockets allow at most "
                    + "\(Self.maximumPathBytes). Choose a shorter --workload-api-socket, e.g. /run/meshca/agent.sock."
            )
        }
        let directory = FilePaths.directory(of: path)
        do {
            try FileManager.default.createDirectory(
                atPath: directory,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: Self.directoryMode]
            )
        } catch {
            throw WorkloadAPIError(
                .socketSetupFailed,
                "Cannot create \(directory) for the Workload API socket: \(FilePaths.reason(error)). Create it "
                    + "(mode 0755) or choose another --workload-api-socket."
            )
        }
        if let entry = FilePaths.entry(at: path), !entry.isSocket {
            throw WorkloadAPIError(
                .badSocketPath,
                "\(path) exists and is not a socket, so meshca will not replace it with the Workload API socket. "
                    + "Remove it or choose another --workload-api-socket."
            )
        }
    }

    /// Sets the bound socket's mode and returns its identity.
    func adopt() throws -> Identity {
        guard chmod(path, Self.mode) == 0, let identity = currentIdentity() else {
            let reason = String(cString: strerror(errno))
            throw WorkloadAPIError(
                .socketSetupFailed,
                "Cannot set mode 0666 on the Workload API socket \(path): \(reason). Check the directory's owner "
                    + "and mount options."
            )
        }
        return identity
    }

    /// Removes the socket file if it is still the one identified by `identity` (another agent may have
    /// replaced it since).
    func remove(ifStill identity: Identity) {
        if currentIdentity() == identity { unlink(path) }
    }

    /// The identity of the socket now at `path`, or `nil` when there is none.
    func currentIdentity() -> Identity? {
        guard let entry = FilePaths.entry(at: path), entry.isSocket else { return nil }
        return Identity(device: entry.device, inode: entry.inode)
    }
}

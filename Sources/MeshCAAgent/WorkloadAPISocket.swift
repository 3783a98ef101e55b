#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import MeshCAIO
import MeshCAPlatform

/// The Workload API's socket file: its directory before binding, its creation with its final mode, its removal
/// at exit.
///
/// Mode 0666: anyone who can reach the directory may connect, and admission is decided per call from
/// the kernel's peer credentials (``PeerCredentials``). A tighter mode would turn a refused caller's
/// `PERMISSION_DENIED`, which names the uid and the fix, into a bare `EACCES` at connect, and would make
/// an agent running as root unusable by a workload uid without extra group setup. SPIRE's agent socket
/// is world-connectable for the same reason. Operators who want a second fence restrict the directory.
///
/// The socket never appears at ``path`` with any other mode, and its mode is never set through ``path``: the
/// transport binds it in a fresh private directory beside it (``Staging``, 0700, so no other user can touch
/// what is inside), its mode is set there through that directory's descriptor, and `rename(2)` moves it into
/// place. `rename` replaces whatever entry is at ``path`` (a stale socket, or a symlink someone planted) without
/// following it, and the bound socket keeps its inode. Setting the mode at bind instead needs the umask (Linux
/// creates the socket file with the mode of the socket's inode minus the umask, so `fchmod` before `bind` alone
/// is not enough), and the umask is per process: other threads creating files or directories at that moment
/// would get the wrong modes.
struct WorkloadAPISocket: Sendable {
    /// The socket file's mode.
    static let mode: mode_t = 0o666
    /// The mode of directories created on the way to the socket.
    static let directoryMode: Int = 0o755
    /// Linux's `sun_path` holds 108 bytes including the terminating NUL.
    static let maximumPathBytes = 107
    /// The private directory's name template, and the socket's name inside it.
    static let stagingTemplate = ".meshca-XXXXXX"
    static let stagingName = "s"

    /// Identifies one socket file, so that exit removes only the file this server bound.
    struct Identity: Equatable, Sendable {
        let device: UInt64
        let inode: UInt64
    }

    /// A private directory (0700) beside the socket's final path, where the transport binds.
    struct Staging: Sendable {
        /// The directory.
        let directory: String
        /// An open descriptor of ``directory``, so that the mode is set inside it whatever happens to its path.
        let descriptor: Int32
        /// Where the transport binds.
        var socketPath: String { directory + "/" + WorkloadAPISocket.stagingName }
    }

    /// The absolute path of the socket.
    let path: String

    /// A socket at `path`, made absolute against the current directory.
    init(path: String) {
        self.path = URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// The socket's directory.
    var directory: String { FilePaths.directory(of: path) }

    /// Checks the path, creates missing parent directories (0755), refuses a directory other users could
    /// rearrange (writable by others without the sticky bit, itself or above), and leaves any stale socket for
    /// ``publish(_:)`` to replace. Refuses to touch a path that holds something other than a socket.
    func prepare() throws {
        let stagingBytes = directory.utf8.count + 1 + Self.stagingTemplate.utf8.count + 1 + Self.stagingName.utf8.count
        guard path.utf8.count <= Self.maximumPathBytes, stagingBytes <= Self.maximumPathBytes else {
            throw AgentError(
                .badSocketPath,
                "The Workload API socket path \(path) is \(path.utf8.count) bytes; Unix sockets allow at most "
                    + "\(Self.maximumPathBytes), and the agent first binds in a private directory beside it, so its "
                    + "directory may have at most \(Self.maximumPathBytes - (stagingBytes - directory.utf8.count)) bytes "
                    + "(\(directory) has \(directory.utf8.count)). Choose a shorter --workload-api-socket, e.g. "
                    + "/run/meshca/agent.sock."
            )
        }
        do {
            try FileManager.default.createDirectory(
                atPath: directory,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: Self.directoryMode]
            )
        } catch {
            throw AgentError(
                .socketSetupFailed,
                "Cannot create \(directory) for the Workload API socket: \(FilePaths.reason(error)). Create it "
                    + "(mode 0755) or choose another --workload-api-socket."
            )
        }
        if let refusal = SharedDirectory.refusal(
            directory, what: "The Workload API socket's directory",
            risk: "another user could replace the socket with their own and answer the workloads",
            choose: "choose a --workload-api-socket")
        {
            throw AgentError(.unsafeDirectory, refusal)
        }
        if let entry = FilePaths.entry(at: path), !entry.isSocket {
            throw AgentError(
                .badSocketPath,
                "\(path) exists and is not a socket, so meshca will not replace it with the Workload API socket. "
                    + "Remove it or choose another --workload-api-socket."
            )
        }
    }

    /// Creates the private directory the transport binds in.
    func stage() throws -> Staging {
        var template = Array((directory + "/" + Self.stagingTemplate).utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard created != nil else { throw setupFailure("creating a private directory in \(directory)") }
        let staging = String(cString: template)
        let descriptor = open(staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else {
            let failure = setupFailure("opening \(staging)")
            rmdir(staging)
            throw failure
        }
        return Staging(directory: staging, descriptor: descriptor)
    }

    /// Gives the socket bound in `staging` its mode and renames it to ``path``; returns its identity.
    func publish(_ staging: Staging) throws -> Identity {
        // The stat goes through MeshCAIO: in this module Foundation's CoreFoundation also declares `stat`, and the
        // static release build then refuses its members here (MemberImportVisibility).
        guard fchmodat(staging.descriptor, Self.stagingName, Self.mode, 0) == 0,
            let entry = FilePaths.entry(in: staging.descriptor, named: Self.stagingName)
        else { throw setupFailure("setting mode 0666 on the new socket in \(staging.directory)") }
        guard rename(staging.socketPath, path) == 0 else { throw setupFailure("moving the new socket to \(path)") }
        let identity = Identity(device: entry.device, inode: entry.inode)
        guard currentIdentity() == identity else {
            throw AgentError(
                .socketSetupFailed,
                "The Workload API socket \(path) was replaced by another process as soon as it was created. "
                    + "Check that no other agent uses this path."
            )
        }
        return identity
    }

    /// Removes the private directory (and the socket in it, when it was never published).
    func discard(_ staging: Staging) {
        unlinkat(staging.descriptor, Self.stagingName, 0)
        close(staging.descriptor)
        rmdir(staging.directory)
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

    private func setupFailure(_ what: String) -> AgentError {
        AgentError(
            .socketSetupFailed,
            "Cannot set up the Workload API socket \(path): \(what) failed (\(String(cString: strerror(errno)))). "
                + "Check the directory's owner and mount options."
        )
    }
}

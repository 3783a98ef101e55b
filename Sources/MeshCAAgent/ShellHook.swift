import Dispatch
import MeshCAPlatform

/// Runs `--on-rotate` through `/bin/sh -c` with posix_spawn (Foundation's `Process` is not in
/// FoundationEssentials, which is all `meshca-agent` links). The hook inherits the agent's standard streams and
/// nothing else: every descriptor from 3 up is closed in the child before `/bin/sh` starts, whether or not it is
/// close-on-exec (SwiftNIO opens its sockets and its epoll without `CLOEXEC`), so a hook cannot accept on the
/// Workload API socket or the status port, nor hold them open after the agent exits.
enum ShellHook {
    /// The command's exit status; 128 + N when signal N ended it, and -1 when it could not be started.
    static func run(_ command: String, environment: [String: String]) async -> Int32 {
        let arguments = ["/bin/sh", "-c", command]
        let variables = environment.map { "\($0.key)=\($0.value)" }
        // The hook starts with default signal handling and nothing blocked, as a shell started by hand would:
        // the agent ignores SIGTERM and SIGINT (they arrive through a dispatch source), and ignored signals
        // would otherwise stay ignored in the hook and everything it starts.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t()
        sigfillset(&all)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        // glibc 2.34+ closes them with close_range(2) in the child (scanning /proc/self/fd on older kernels).
        guard let closeFrom = addCloseFrom else { return -1 }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        guard closeFrom(&actions, 3) == 0 else { return -1 }
        var pid = pid_t()
        let spawned = withCStrings(arguments) { argv in
            withCStrings(variables) { envp in posix_spawn(&pid, "/bin/sh", &actions, &attributes, argv, envp) }
        }
        guard spawned == 0 else { return -1 }
        let child = pid
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var status: Int32 = 0
                while waitpid(child, &status, 0) < 0 && errno == EINTR {}
                let signal = status & 0x7f
                continuation.resume(returning: signal == 0 ? (status >> 8) & 0xff : 128 + signal)
            }
        }
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+; the agent's binaries need 2.34 anyway), looked
    /// up at run time because Swift's Glibc module imports `spawn.h` without `_GNU_SOURCE`, which hides it. Without
    /// it no hook runs: starting one with the agent's sockets open is what this is here to prevent.
    private static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(
            symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    /// Calls `body` with a NULL-terminated array of C strings that live for the call.
    private static func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
        let pointers = strings.map { strdup($0) } + [nil]
        defer { pointers.forEach { free($0) } }
        return body(pointers)
    }
}

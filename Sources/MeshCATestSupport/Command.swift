import Foundation
import Synchronization

/// Runs programs for tests: the built `meshca` binary and independent tools such as `openssl`.
public enum Command {
    /// The outcome of one run.
    public struct Result: Sendable {
        /// The exit status (or 128 + signal).
        public let status: Int32
        /// Everything written to standard output.
        public let stdout: String
        /// Everything written to standard error.
        public let stderr: String
    }

    /// Runs `executable` (a path, or a name looked up on PATH) with `arguments`, waits, and collects output.
    ///
    /// The wait happens on a thread of its own. Tests run on Swift's cooperative thread pool, which has one
    /// thread per core (two on a 2-core machine): a test that blocked a pool thread for the life of a child
    /// process stalled every other test's gRPC calls behind it, which is how a first RPC to an idle daemon
    /// ran past its 15 s deadline on a busy machine.
    public static func run(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String]? = nil,
        directory: String? = nil,
        stdin: String? = nil
    ) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(
                    with: Swift.Result {
                        try runBlocking(executable, arguments, environment: environment, directory: directory, stdin: stdin)
                    })
            }
        }
    }

    /// ``run(_:_:environment:directory:stdin:)`` on the calling thread, which it blocks until the child exits:
    /// for the benchmark's timed runs and other code that is not on the cooperative pool.
    public static func runBlocking(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String]? = nil,
        directory: String? = nil,
        stdin: String? = nil
    ) throws -> Result {
        let process = Process()
        process.executableURL = URL(
            fileURLWithPath: executable.contains("/")
                ? executable : path(of: executable, searching: environment?["PATH"] ?? ProcessInfo.processInfo.environment["PATH"]))
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let out = Pipe()
        let err = Pipe()
        let input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        // A hang guard, not a speed expectation: a child that never exits becomes a failure naming it.
        let hang = HangGuard(pid: process.processIdentifier, after: .seconds(hangGuardSeconds))
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        // Read both pipes to the end before waiting, so a chatty child cannot block on a full pipe.
        let group = DispatchGroup()
        nonisolated(unsafe) var errData = Data()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        if hang.exited() {
            throw BackgroundProcessError(
                "\(executable) \(arguments.joined(separator: " ")) did not exit within \(hangGuardSeconds) s and was killed; "
                    + "stderr:\n\(String(decoding: errData, as: UTF8.self))")
        }
        return Result(
            status: process.terminationStatus,
            stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self)
        )
    }

    /// Where `name` is in `searchPath` (a `PATH` value: the child's, as `env` would search it; the first executable
    /// file of that name), looked up once per name and path; `name` itself when it is nowhere, so that running it
    /// fails naming it. Spares each run of a tool an `env` process.
    public static func path(of name: String, searching searchPath: String?) -> String {
        let directories = searchPath ?? "/usr/bin:/bin"
        let key = directories + "\u{0}" + name
        if let known = paths.withLock({ $0[key] }) { return known }
        let found = directories.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) } ?? name
        paths.withLock { $0[key] = found }
        return found
    }

    private static let paths = Mutex<[String: String]>([:])

    /// How long a run may take before it is killed and reported (a hang guard).
    static let hangGuardSeconds = 180

    /// The `meshca` executable built next to the running test bundle (or `$MESHCA_BIN`).
    public static var meshcaBinary: String {
        if let explicit = ProcessInfo.processInfo.environment["MESHCA_BIN"] { return explicit }
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        // On Linux the test runner is `<build dir>/meshcaPackageTests.xctest`; on macOS it is nested in a bundle.
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("meshca").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory.deleteLastPathComponent()
        }
        return ".build/debug/meshca"
    }

    /// The `meshca-agent` executable built beside ``meshcaBinary``.
    public static var agentBinary: String {
        URL(fileURLWithPath: meshcaBinary).deletingLastPathComponent().appendingPathComponent("meshca-agent").path
    }

    /// Runs the built `meshca` with `arguments`, with `MESHCA_STATE_DIR` unset unless given in `environment`.
    public static func meshca(_ arguments: [String], environment: [String: String] = [:], directory: String? = nil) async throws -> Result {
        try await run(meshcaBinary, arguments, environment: meshcaEnvironment(environment), directory: directory)
    }

    /// ``meshca(_:environment:directory:)`` blocking the calling thread (see ``runBlocking(_:_:environment:directory:stdin:)``).
    public static func meshcaBlocking(_ arguments: [String], environment: [String: String] = [:], directory: String? = nil) throws -> Result {
        try runBlocking(meshcaBinary, arguments, environment: meshcaEnvironment(environment), directory: directory)
    }

    /// The test process's environment without `MESHCA_STATE_DIR`, with `overrides` merged in.
    private static func meshcaEnvironment(_ overrides: [String: String]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "MESHCA_STATE_DIR")
        env.merge(overrides) { _, new in new }
        return env
    }
}

/// Kills a child with SIGKILL when it is still running after a time (a hang guard), once. It holds only the
/// process id: holding the `Process` would keep its pipes open until the timer fires, and a few hundred runs later
/// the test process had over 1,024 descriptors open.
final class HangGuard: Sendable {
    private let pid: Int32
    private let done = Atomic<Bool>(false)
    private let killed = Atomic<Bool>(false)

    /// Arms the guard for the child `pid`.
    init(pid: Int32, after delay: DispatchTimeInterval) {
        self.pid = pid
        DispatchQueue.global().asyncAfter(deadline: .now() + delay) { [self] in
            guard !done.load(ordering: .acquiring), !killed.exchange(true, ordering: .acquiringAndReleasing) else { return }
            kill(pid, SIGKILL)
        }
    }

    /// Call once the child has been waited for; true when the guard killed it.
    func exited() -> Bool {
        done.store(true, ordering: .releasing)
        return killed.load(ordering: .acquiring)
    }
}

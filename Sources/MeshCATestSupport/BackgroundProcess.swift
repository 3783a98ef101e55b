import Foundation
import Synchronization

/// A long-running child process (such as `meshca serve`) whose output a test can wait on.
///
/// Standard output and error are collected continuously; ``waitForLine(containing:timeout:)`` returns
/// the first stdout line containing a marker, waiting through ``Wait``. The timeout only guards against a hang;
/// it is never a speed expectation.
public final class BackgroundProcess: Sendable {
    /// Text collected from one pipe, appended from the pipe's reader thread.
    private final class Collected: Sendable {
        let text = Mutex<String>("")
        /// Set once the pipe reached end of file: every byte the process wrote is in `text`.
        let complete = Atomic<Bool>(false)
    }

    private let process: Process
    private let stdout = Collected()
    private let stderr = Collected()

    /// Starts `executable` with `arguments` and `environment` (merged over the current one).
    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], directory: String? = nil) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "MESHCA_STATE_DIR")
        env.merge(environment) { _, new in new }
        process.environment = env
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        self.process = process
        try process.run()
        Self.drain(out.fileHandleForReading, into: stdout)
        Self.drain(err.fileHandleForReading, into: stderr)
    }

    /// Appends everything `handle` yields to `collected`, on a thread of its own, until end of file.
    ///
    /// A blocking read loop rather than `FileHandle.readabilityHandler`: on Linux the handler's libdispatch read
    /// source can be torn down while libdispatch still holds its epoll registration, and the dispatch manager
    /// thread then crashes the whole test process with SIGSEGV in `_dispatch_event_loop_drain`
    /// (swift-corelibs-libdispatch#949). A blocking read never registers the descriptor with libdispatch.
    private static func drain(_ handle: FileHandle, into collected: Collected) {
        Thread.detachNewThread {
            while true {
                let data = handle.availableData
                if data.isEmpty {
                    collected.complete.store(true, ordering: .releasing)
                    return
                }
                collected.text.withLock { $0 += String(decoding: data, as: UTF8.self) }
            }
        }
    }

    /// Everything written to standard output so far.
    public var output: String { stdout.text.withLock { $0 } }
    /// Everything written to standard error so far.
    public var errorOutput: String { stderr.text.withLock { $0 } }
    /// The process id.
    public var pid: Int32 { process.processIdentifier }
    /// Whether the process is still running.
    public var isRunning: Bool { process.isRunning }

    /// The first stdout line containing `marker`; throws when the process exits or `timeout` passes first (a hang
    /// guard counted from this call, not a speed expectation: the readiness line is where a test's own deadlines
    /// begin).
    public func waitForLine(containing marker: String, timeout: Duration = .seconds(120)) async throws -> String {
        let name = process.executableURL?.lastPathComponent ?? "the process"
        return try await Wait.value("\(name) prints \"\(marker)\"; stderr so far:\n\(errorOutput)", timeout: timeout) {
            if let line = output.split(separator: "\n").first(where: { $0.contains(marker) }) { return String(line) }
            if !process.isRunning {
                throw BackgroundProcessError("\(name) exited with status \(process.terminationStatus) before printing \"\(marker)\"; stderr:\n\(errorOutput)")
            }
            return nil
        }
    }

    /// Sends `signal` (SIGTERM by default) and waits for the process to exit; returns its status. After `timeout`
    /// (a hang guard) it is killed and this throws.
    @discardableResult
    public func stop(signal: Int32 = SIGTERM, timeout: Duration = .seconds(60)) async throws -> Int32 {
        if process.isRunning { kill(process.processIdentifier, signal) }
        do {
            try await Wait.until("the process exits after signal \(signal)", timeout: timeout) { !process.isRunning }
            // Its output is complete only once both pipes are read to their end.
            try await Wait.until("its output pipes reach end of file", timeout: timeout) {
                stdout.complete.load(ordering: .acquiring) && stderr.complete.load(ordering: .acquiring)
            }
        } catch let error as WaitError {
            kill(process.processIdentifier, SIGKILL)
            throw BackgroundProcessError("\(error); killed")
        }
        return process.terminationStatus
    }

    /// Waits until standard output or standard error contains `text` (a line logged after the event that caused it
    /// may still be in the pipe when the event is seen from outside). `timeout` is a hang guard.
    public func waitForOutput(containing text: String, timeout: Duration = .seconds(60)) async throws {
        try await Wait.until("the process writes \"\(text)\"", timeout: timeout) {
            output.contains(text) || errorOutput.contains(text)
        }
    }

    /// Sends SIGTERM and returns at once; a thread of its own waits for the exit (killing the process after 60 s, a
    /// hang guard) and then runs `cleanup`. For `defer` blocks, which cannot await: blocking there would hold one of
    /// the cooperative pool's threads (two on a 2-core machine) for the whole shutdown, stalling every other test.
    ///
    /// The test process waits for these threads as it exits (up to 30 s), so a daemon stopped by the last test to
    /// finish still has its directory removed.
    public func terminate(then cleanup: @escaping @Sendable () -> Void = {}) {
        let process = process
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        let hang = HangGuard(pid: process.processIdentifier, after: .seconds(60))
        let pending = Self.pendingCleanups
        pending.enter()
        Thread.detachNewThread {
            process.waitUntilExit()
            _ = hang.exited()
            cleanup()
            pending.leave()
        }
    }

    /// The threads of ``terminate(then:)`` still running; waited for at exit.
    private static let pendingCleanups: DispatchGroup = {
        atexit { _ = BackgroundProcess.pendingCleanups.wait(timeout: .now() + 30) }
        return DispatchGroup()
    }()

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// A background process that misbehaved.
public struct BackgroundProcessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

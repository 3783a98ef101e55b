import Dispatch
import Synchronization

/// One fuzz target: a parser that takes bytes from the network or from disk, and the function that feeds it one
/// input. The `fuzz-<name>` executables (built only with MESHCA_FUZZ=1, see scripts/fuzz.sh) call `run` from
/// libFuzzer; MeshCAFuzzReplayTests calls it on every file under Fuzz/Corpus/<name> and Fuzz/Crashes/<name>.
///
/// An entry returns for every input; a crash (trap, failed precondition, sanitizer report) is the finding.
/// Entries also check a few properties that must hold for any input that parses (a parsed value survives
/// its own serialization), and trap when one does not.
public struct FuzzTarget: Sendable {
    /// The directory name under Fuzz/Corpus and the product name without `fuzz-`.
    public let name: String
    /// Feeds one input.
    public let run: @Sendable ([UInt8]) async -> Void
    /// The same, for the targets whose parsers are synchronous (called directly, without a task).
    let runSynchronously: (@Sendable ([UInt8]) -> Void)?

    init(name: String, run: @escaping @Sendable ([UInt8]) async -> Void) {
        self.name = name
        self.run = run
        self.runSynchronously = nil
    }

    init(name: String, synchronous: @escaping @Sendable ([UInt8]) -> Void) {
        self.name = name
        self.run = { synchronous($0) }
        self.runSynchronously = synchronous
    }

    /// Every target, in the order scripts/fuzz.sh runs them.
    public static let all: [FuzzTarget] = [
        FuzzTarget(name: "csr", synchronous: CSRFuzz.run),
        FuzzTarget(name: "chain", run: { await ChainFuzz.run($0) }),
        FuzzTarget(name: "crl", synchronous: CRLFuzz.run),
        FuzzTarget(name: "token", synchronous: TokenFuzz.run),
        FuzzTarget(name: "jwt", run: { await JWTFuzz.run($0) }),
        FuzzTarget(name: "request", run: { await RequestFuzz.run($0) }),
        FuzzTarget(name: "config", synchronous: ConfigFuzz.run),
    ]

    /// The target called `name`; traps for an unknown name (a fuzz executable naming itself wrongly).
    public static func named(_ name: String) -> FuzzTarget {
        guard let target = all.first(where: { $0.name == name }) else { fatalError("no fuzz target \(name)") }
        return target
    }

    /// Feeds one input from libFuzzer's `LLVMFuzzerTestOneInput` (a plain thread, outside Swift concurrency):
    /// a synchronous target directly, an asynchronous one in a task it waits for. Not for use from async code
    /// (it blocks the calling thread).
    public func runBlocking(_ data: UnsafePointer<UInt8>, _ size: Int) {
        let bytes = Array(UnsafeBufferPointer(start: data, count: size))
        if let runSynchronously { return runSynchronously(bytes) }
        let done = DispatchSemaphore(value: 0)
        let run = self.run
        Task {
            await run(bytes)
            done.signal()
        }
        done.wait()
    }
}

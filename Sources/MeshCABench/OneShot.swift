import Foundation
import MeshCAErrors
import MeshCATestSupport

/// Phase 4: one certificate from a cold process, the way a person at a shell gets one: `meshca issue --sa
/// was` against `cfssl gencert` with the same key type (ECDSA P-256 workload key under a P-256 CA), each
/// timed as a whole process (spawn to exit), runs interleaved so a load change hits both alike.
///
/// They do not do the same work, and the report says so: `meshca issue` checks the CSR, signs, checks the
/// result, commits the ledger row (fsync) and writes cert-chain.pem, key.pem and root-cert.pem atomically;
/// `cfssl gencert` generates the key and signs, prints JSON on stdout, and records nothing.
struct OneShot {
    /// Wall times of each run, in milliseconds, in run order.
    var meshca: [Double]
    var cfssl: [Double]

    /// Runs each command `runs` times after one untimed warm-up each (the warm-up creates meshca's CA).
    static func measure(meshcaBinary: String, cfsslBinary: String?, directory: TemporaryDirectory, runs: Int) throws -> OneShot {
        let state = directory.file("oneshot-state")
        func issue(_ run: Int) throws -> Double {
            try timed(meshcaBinary, ["issue", "--sa", "was", "--state-dir", state, "--out", directory.file("oneshot-out-\(run)")])
        }
        var cfsslIssue: ((Int) throws -> Double)?
        if let cfsslBinary {
            let cfsslDirectory = try TemporaryDirectory("bench-cfssl-oneshot")
            try CFSSLServe.makeCA(binary: cfsslBinary, directory: cfsslDirectory)
            try cfsslDirectory.write("was.json", #"{"CN": "was", "key": {"algo": "ecdsa", "size": 256}}"#)
            cfsslIssue = { _ in
                try timed(cfsslBinary, [
                    "gencert", "-ca", cfsslDirectory.file("ca.pem"), "-ca-key", cfsslDirectory.file("ca-key.pem"),
                    "-config", cfsslDirectory.file("config.json"), "-loglevel", "2", cfsslDirectory.file("was.json"),
                ])
            }
        }
        _ = try issue(-1)
        _ = try cfsslIssue?(-1)
        var result = OneShot(meshca: [], cfssl: [])
        for run in 0..<runs {
            result.meshca.append(try issue(run))
            if let cfsslIssue { result.cfssl.append(try cfsslIssue(run)) }
        }
        return result
    }

    /// Wall milliseconds of one run of `executable`, which must exit 0.
    static func timed(_ executable: String, _ arguments: [String]) throws -> Double {
        let begin = ContinuousClock.now
        let result = try Command.runBlocking(executable, arguments)
        let elapsed = ContinuousClock.now - begin
        guard result.status == 0 else {
            throw BenchError(.toolFailed, "\(executable) \(arguments.joined(separator: " ")) exited \(result.status): \(result.stderr.suffix(500))")
        }
        return elapsed.milliseconds
    }
}

/// The median of some samples (the mean of the middle two for an even count); NaN when empty.
func median(_ samples: [Double]) -> Double {
    guard !samples.isEmpty else { return .nan }
    let sorted = samples.sorted()
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

import Foundation

/// Phase 4b: what starting a `meshca` process costs, `meshca --version` timed as a whole process (spawn to
/// exit), beside `cfssl version` when cfssl is there, runs interleaved. One-shot issuance and every audit
/// query pay this before they do any work.
struct Startup {
    /// Wall times of each run, in milliseconds, in run order.
    var meshca: [Double]
    var cfssl: [Double]

    /// Runs each command `runs` times after one untimed warm-up each.
    static func measure(meshcaBinary: String, cfsslBinary: String?, runs: Int) throws -> Startup {
        _ = try OneShot.timed(meshcaBinary, ["--version"])
        if let cfsslBinary { _ = try OneShot.timed(cfsslBinary, ["version"]) }
        var result = Startup(meshca: [], cfssl: [])
        for _ in 0..<runs {
            result.meshca.append(try OneShot.timed(meshcaBinary, ["--version"]))
            if let cfsslBinary { result.cfssl.append(try OneShot.timed(cfsslBinary, ["version"])) }
        }
        return result
    }
}

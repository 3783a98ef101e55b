import Dispatch
import Foundation
import MeshCACore
import MeshCAErrors
import Synchronization
import X509

/// The limit the cryptography sets: ECDSA P-256 signatures and verifications per second on this machine,
/// through swift-crypto (BoringSSL's P-256), single-threaded and on every core at once.
///
/// The calls are the ones meshca's issuance makes: `Certificate.PublicKey.isValidSignature(_:for:)` on a real
/// workload CSR (SHA-256 over the request info, then the verification), and `Certificate.PrivateKey.sign(bytes:
/// signatureAlgorithm:)` over a to-be-signed certificate of a real leaf's size. Both are thin switches over
/// swift-crypto's `P256.Signing` keys, so their cost is swift-crypto's.
struct CryptoBound: Sendable {
    /// Signatures per second on one thread.
    var signOneCore: Double
    /// Verifications per second on one thread.
    var verifyOneCore: Double
    /// Signatures per second with one thread per core.
    var signAllCores: Double
    /// Verifications per second with one thread per core.
    var verifyAllCores: Double
    /// How many threads ran in the all-cores figures.
    var cores: Int

    /// Issuances per second if each costs one CSR verification and one signature (the definition).
    func issuances(cores all: Bool) -> Double {
        all ? 1 / (1 / signAllCores + 1 / verifyAllCores) : 1 / (1 / signOneCore + 1 / verifyOneCore)
    }

    /// The same bound counting the post-sign self-check's verification too (2 verifications + 1 signature).
    func issuancesWithSelfCheck(cores all: Bool) -> Double {
        all ? 1 / (1 / signAllCores + 2 / verifyAllCores) : 1 / (1 / signOneCore + 2 / verifyOneCore)
    }

    /// CPU microseconds the cryptography of one issuance costs on one core (verify + sign).
    var microsecondsPerIssuance: Double { 1e6 / issuances(cores: false) }

    /// Measures each figure for `seconds` of wall time.
    static func measure(seconds: Double, cores: Int) throws -> CryptoBound {
        let identity = try SPIFFEID(trustDomain: TrustDomain("cluster.local"), namespace: "default", serviceAccount: "crypto")
        let csr = try WorkloadCSR.make(for: identity, key: KeyType.ecP256.generate())
        let caKey = try KeyType.ecP256.generate()
        // A meshca X509-SVID's tbsCertificate is about 420 bytes; what is hashed matters little next to the curve math.
        let tbs = (0..<420).map { UInt8(truncatingIfNeeded: $0 &* 131) }
        let sign: @Sendable () -> Bool = { (try? caKey.sign(bytes: tbs, signatureAlgorithm: .ecdsaWithSHA256)) != nil }
        let verify: @Sendable () -> Bool = { csr.publicKey.isValidSignature(csr.signature, for: csr) }
        guard sign(), verify() else { throw BenchError(.setupFailed, "the crypto self-test failed: a fresh CSR does not verify, or signing fails") }
        return CryptoBound(
            signOneCore: rate(of: sign, threads: 1, seconds: seconds),
            verifyOneCore: rate(of: verify, threads: 1, seconds: seconds),
            signAllCores: rate(of: sign, threads: cores, seconds: seconds),
            verifyAllCores: rate(of: verify, threads: cores, seconds: seconds),
            cores: cores
        )
    }

    /// Operations per second of `operation` run back to back on `threads` threads for `seconds`.
    private static func rate(of operation: @Sendable () -> Bool, threads: Int, seconds: Double) -> Double {
        let total = Atomic<Int>(0)
        let started = ContinuousClock.now
        let deadline = started + .milliseconds(Int64(seconds * 1000))
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            var count = 0
            repeat {
                for _ in 0..<8 where operation() { count += 1 }
            } while ContinuousClock.now < deadline
            total.add(count, ordering: .relaxed)
        }
        return Double(total.load(ordering: .relaxed)) / (ContinuousClock.now - started).seconds
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    /// The duration in milliseconds, as a `Double`.
    var milliseconds: Double { seconds * 1000 }
}

/// A benchmark step that could not run; the message says what to do.
typealias BenchError = CodedFailure<BenchErrorCode>

/// The closed list of reasons for a ``BenchError``; each `rawValue` is a stable kebab-case name.
enum BenchErrorCode: String, ErrorCode {
    /// A tool the benchmark needs (sqlite3, cfssl) is not installed and could not be.
    case missingTool = "missing-tool"
    /// A tool the benchmark runs (meshca, sqlite3, cfssl, h2load) failed or did not start.
    case toolFailed = "tool-failed"
    /// The machine or server is not fit to measure on (fsync off, no free port, a failed self-test).
    case setupFailed = "setup-failed"
    /// A request could not be sent or its connection failed.
    case requestFailed = "request-failed"
    /// An answer that cannot be read or is not what was asked for.
    case badResponse = "bad-response"
    /// A ledger, database or agent counted other than what was sent.
    case countMismatch = "count-mismatch"
}

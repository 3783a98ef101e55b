import Foundation
import GRPCCore
import MeshCACore
import MeshCATestSupport
import MeshCATransport
import Synchronization
import Testing
import X509

/// A real `meshca serve` process on loopback with its own state directory, as a user would run it.
final class TestDaemon: Sendable {
    let directory: TemporaryDirectory
    let process: BackgroundProcess
    /// `127.0.0.1:PORT` of the gRPC/TLS listener.
    let address: String
    /// `127.0.0.1:PORT` of the metrics and health endpoint.
    let monitoring: String

    var stateDir: String { directory.file("state") }

    /// Starts a daemon (on ports chosen by the kernel) and waits until it is serving: both listeners bound, the
    /// "listening on" line printed. Every deadline a test then applies (each RPC's 15 s, its own waits) counts from
    /// that moment; the wait for a free daemon slot and for start-up come before it, the latter under a hang guard.
    static func start(_ extra: [String] = [], directory given: TemporaryDirectory? = nil, listen: String = "127.0.0.1:0") async throws -> TestDaemon {
        // At most a few daemons at once (ProcessSlots.daemons); the slot is given back by shutdown() or stop().
        await ProcessSlots.daemons.acquire()
        let slot = Slot()
        do {
            return try await start(extra, directory: given, listen: listen, slot: slot)
        } catch {
            slot.release()
            throw error
        }
    }

    private static func start(_ extra: [String], directory given: TemporaryDirectory?, listen: String, slot: Slot) async throws -> TestDaemon {
        let directory = try given ?? TemporaryDirectory("serve")
        // A state directory without a CA gets one from the daemon, as `meshca serve --init-if-missing` creates it.
        let create = FileManager.default.fileExists(atPath: directory.file("state/ca-cert.pem")) ? [] : ["--init-if-missing"]
        let process = try BackgroundProcess(
            Command.meshcaBinary,
            ["serve", "--listen", listen, "--monitoring", "127.0.0.1:0", "--state-dir", directory.file("state")] + create + extra
        )
        let line = try await process.waitForLine(containing: "listening on")
        // "meshca serve: listening on 127.0.0.1:41077 (gRPC, TLS); metrics and health on http://127.0.0.1:37569"
        let words = line.split(separator: " ")
        guard let at = words.firstIndex(of: "on"), let http = words.last?.replacingOccurrences(of: "http://", with: "") else {
            throw BackgroundProcessError("unexpected ready line: \(line)")
        }
        return TestDaemon(directory: directory, process: process, address: String(words[at + 1]), monitoring: http, slot: slot)
    }

    /// This daemon's place in ``ProcessSlots/daemons``, given back once.
    private final class Slot: Sendable {
        private let held = Atomic<Bool>(true)
        func release() {
            if held.exchange(false, ordering: .relaxed) { ProcessSlots.daemons.release() }
        }
    }
    private let slot: Slot

    private init(directory: TemporaryDirectory, process: BackgroundProcess, address: String, monitoring: String, slot: Slot) {
        self.directory = directory
        self.process = process
        self.address = address
        self.monitoring = monitoring
        self.slot = slot
    }

    /// Runs a `meshca` CLI command against this daemon's state directory.
    @discardableResult
    func meshca(_ arguments: String...) async throws -> Command.Result {
        try await Command.meshca(arguments + ["--state-dir", stateDir], directory: directory.path)
    }

    /// Creates a join token with `meshca token create`.
    func token(sa: String = "was", ns: String = "default", uses: Int = 1, ttl: String = "1h") async throws -> String {
        let result = try await meshca("token", "create", "--sa", sa, "--ns", ns, "--uses", String(uses), "--ttl", ttl)
        guard result.status == 0 else { throw BackgroundProcessError("token create failed: \(result.stderr)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The CA's roots, as the state directory holds them.
    func roots() throws -> [Certificate] {
        try Certificate.parseAll(pem: String(contentsOfFile: directory.file("state/root-cert.pem"), encoding: .utf8))
    }

    /// A client trusting this CA's roots.
    func client(identity: CAClient.ClientIdentity? = nil) throws -> CAClient {
        try CAClient(address: address, trust: .roots(roots()), identity: identity)
    }

    /// `meshca audit list --json`, decoded.
    func ledger() async throws -> [[String: Any]] {
        let result = try await meshca("audit", "list", "--json")
        return (try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]]) ?? []
    }

    /// `meshca audit rejections --json`, decoded.
    func rejections() async throws -> [[String: Any]] {
        let result = try await meshca("audit", "rejections", "--json")
        return (try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]]) ?? []
    }

    /// Stops the daemon with SIGTERM and removes its directory.
    func shutdown(keepDirectory: Bool = false) async throws {
        defer { slot.release() }
        try await process.stop()
        keepLog(as: logName)
        if !keepDirectory { directory.remove() }
    }

    /// Stops the daemon and, once it has exited, keeps its log, removes its directory and frees its slot; returns at
    /// once (for `defer`, see ``BackgroundProcess/terminate(then:)``).
    func stop() {
        let logName = self.logName
        process.terminate { [self] in
            keepLog(as: logName)
            directory.remove()
            slot.release()
        }
    }

    /// Keeps the daemon's log (stderr, with timestamps) as `.build/test-logs/<test function>-<port>.log`, so a test
    /// that failed on a busy machine (an RPC past its deadline) can be matched to what its daemon did meanwhile.
    private func keepLog(as name: String) {
        let logs = FileManager.default.currentDirectoryPath + "/.build/test-logs"
        guard (try? FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)) != nil else { return }
        try? process.errorOutput.write(toFile: "\(logs)/serve-\(name).log", atomically: true, encoding: .utf8)
    }

    /// `<test function>-<port>`, read while the test's task is current.
    private var logName: String {
        let test = (Test.current?.name ?? "test").filter { $0.isLetter || $0.isNumber }
        return test + "-" + (address.split(separator: ":").last.map(String.init) ?? "0")
    }
}

/// A fresh workload key and a CSR for `spiffe://cluster.local/ns/<ns>/sa/<sa>`.
func workloadCSR(sa: String = "was", ns: String = "default", keyType: KeyType = .ecP256) throws -> (key: Certificate.PrivateKey, pem: String) {
    let id = try SPIFFEID(trustDomain: TrustDomain("cluster.local"), namespace: ns, serviceAccount: sa)
    let key = try keyType.generate()
    return (key, try WorkloadCSR.pem(WorkloadCSR.make(for: id, key: key)))
}

/// `authorization: Bearer <credential>`.
func bearer(_ credential: String) -> Metadata {
    ["authorization": "Bearer \(credential)"]
}

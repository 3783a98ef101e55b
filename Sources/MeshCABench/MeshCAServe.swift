import Foundation
import GRPCCore
import MeshCACore
import MeshCALedger
import MeshCATestSupport
import MeshCATransport
import X509

/// Phase 2: a real `meshca serve` process (durable ledger, synchronous=FULL, group commit) driven over
/// gRPC/TLS by this process, with up to 8 HTTP/2 connections shared by the workers.
///
/// Each level authenticates with one join token allowing exactly as many uses as requests, so every
/// request also consumes a token use in the issuance's transaction, as a first certificate does in a mesh.
/// After each level the ledger is read back and must hold exactly the serials that were handed out.
struct MeshCAServe {
    let daemon: BackgroundProcess
    /// `host:port` of the gRPC listener.
    let address: String
    /// The daemon's state directory.
    let state: String
    let client: CAClient
    let ledger: SQLiteLedger
    /// Added to the environment of every `meshca` this runs (`SOFTHSM2_CONF` for a CA key in SoftHSM).
    var environment: [String: String] = [:]

    /// Starts `meshca serve` on a free port with a new CA in `directory`/`stateName`, under `prefix` when given
    /// (a profiler such as `valgrind --tool=callgrind`, which keeps the process id). With `initArguments` the CA is
    /// made first by `meshca init` with them (e.g. `--key pkcs11:...` for the HSM phase), everything running with
    /// `environment` added. `serveArguments` go to `meshca serve` after the benchmark's own.
    static func start(
        binary: String, directory: TemporaryDirectory, prefix: [String] = [], stateName: String = "state",
        initArguments: [String]? = nil, serveArguments: [String] = [], environment: [String: String] = [:]
    ) async throws -> MeshCAServe {
        let state = directory.file(stateName)
        if let initArguments {
            let created = try Command.meshcaBlocking(["init"] + initArguments + ["--state-dir", state], environment: environment)
            guard created.status == 0 else { throw BenchError("meshca init \(initArguments.joined(separator: " ")) failed: \(created.stderr)") }
        }
        let command = prefix + [binary] + [
            "serve", "--listen", "127.0.0.1:0", "--monitoring", "127.0.0.1:0", "--state-dir", state, "--init-if-missing",
            "--rate-limit", "off", "--log-level", "warning",
        ] + serveArguments
        let daemon = try BackgroundProcess(CFSSLServe.which(command[0]) ?? command[0], Array(command.dropFirst()), environment: environment)
        do {
            let line = try await daemon.waitForLine(containing: "listening on")
            let words = line.split(separator: " ")
            let address = String(words[(words.firstIndex(of: "on") ?? 0) + 1])
            let roots = try Certificate.parseAll(pem: String(contentsOfFile: state + "/root-cert.pem", encoding: .utf8))
            return MeshCAServe(
                daemon: daemon, address: address, state: state,
                client: try CAClient(address: address, trust: .roots(roots)),
                ledger: try SQLiteLedger(path: state + "/ledger.db"),
                environment: environment
            )
        } catch {
            daemon.terminate()
            throw error
        }
    }

    /// A join token for `serviceAccount` good for `uses` issuances, made with `meshca token create`.
    func token(for serviceAccount: String, uses: Int) throws -> String {
        let token = try Command.meshcaBlocking(["token", "create", "--sa", serviceAccount, "--uses", String(uses), "--ttl", "1h", "--state-dir", state], environment: environment)
        guard token.status == 0 else { throw BenchError("meshca token create failed: \(token.stderr)") }
        return token.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Sends `csrs` (all for `serviceAccount` in namespace default) with `level` requests in flight.
    func run(level: Int, csrs: [String], serviceAccount: String) async throws -> LevelResult {
        let headers: Metadata = ["authorization": "Bearer \(try token(for: serviceAccount, uses: csrs.count))"]
        let connections = min(level, 8)
        let client = self.client
        var result = try await LevelResult.measure(concurrency: level, serverPID: daemon.pid, serial: Self.serial(ofLeaf:)) {
            await withTaskGroup(of: [LevelResult.Outcome].self) { group in
                for connection in 0..<connections {
                    let workers = (0..<level).filter { $0 % connections == connection }
                    group.addTask {
                        do {
                            return try await client.withConnection { open in
                                await withTaskGroup(of: [LevelResult.Outcome].self) { inner in
                                    for worker in workers {
                                        inner.addTask {
                                            var done: [LevelResult.Outcome] = []
                                            for index in stride(from: worker, to: csrs.count, by: level) {
                                                done.append(await Self.send(csrs[index], headers: headers, on: open))
                                            }
                                            return done
                                        }
                                    }
                                    return await inner.reduce(into: []) { $0 += $1 }
                                }
                            }
                        } catch {
                            return [.failure(BenchError("connection failed: \(error)"))]
                        }
                    }
                }
                return await group.reduce(into: []) { $0 += $1 }
            }
        }
        let recorded = Set(try await ledger.issuances(matching: IssuanceQuery(serviceAccount: serviceAccount)).map(\.serial))
        result.recordedExactly = recorded == Set(result.serials) && result.serials.count == csrs.count
        return result
    }

    /// One `CreateCertificate`, timed from the call to the parsed response.
    private static func send(_ csr: String, headers: Metadata, on connection: CAClient.Connection) async -> LevelResult.Outcome {
        let begin = ContinuousClock.now
        do {
            let chain = try await connection.createCertificate(csrPEM: csr, ttl: nil, headers: headers)
            let elapsed = ContinuousClock.now - begin
            guard let leaf = chain.first else { return .failure(BenchError("the response carries no certificate")) }
            return .success((leaf, elapsed.milliseconds))
        } catch {
            return .failure(BenchError("\(error)"))
        }
    }

    /// The serial of the leaf certificate in `pem`.
    static func serial(ofLeaf pem: String) throws -> String {
        guard let certificate = try Certificate.parseAll(pem: pem).first else { throw BenchError("the response carries no certificate") }
        return certificate.serialHex
    }

    /// Peak resident memory so far (VmHWM), in KiB.
    var peakRSS: Int? { ProcessStats.memory(pid: daemon.pid, field: "VmHWM") }

    /// Private resident memory now (RssAnon: heap, stacks, relocated data), in KiB.
    var anonymousRSS: Int? { ProcessStats.memory(pid: daemon.pid, field: "RssAnon") }

    func stop() { daemon.terminate() }
}

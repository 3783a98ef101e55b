import Foundation
import GRPCCore
import MeshCACore
import MeshCAErrors
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
    /// Where the daemon records its issuances, read back after each level.
    let ledger: BenchLedger
    /// Added to the environment of every `meshca` this runs (`SOFTHSM2_CONF` for a CA key in SoftHSM,
    /// `MESHCA_LEDGER` for a ledger in PostgreSQL).
    var environment: [String: String] = [:]

    /// Starts `meshca serve` on a free port with a new CA in `directory`/`stateName`, under `prefix` when given
    /// (a profiler such as `valgrind --tool=callgrind`, which keeps the process id). With `initArguments` the CA is
    /// made first by `meshca init` with them (e.g. `--key pkcs11:...` for the HSM phase), everything running with
    /// `environment` added. `serveArguments` go to `meshca serve` after the benchmark's own. With `postgres` the
    /// ledger is that database (`MESHCA_LEDGER` in the environment of every `meshca` run) instead of the state
    /// directory's `ledger.db`; a second replica is started on the same `stateName` with `initArguments` nil.
    static func start(
        binary: String, directory: TemporaryDirectory, prefix: [String] = [], stateName: String = "state",
        initArguments: [String]? = nil, serveArguments: [String] = [], environment: [String: String] = [:],
        postgres: (server: PostgreSQLServer, database: String)? = nil
    ) async throws -> MeshCAServe {
        let state = directory.file(stateName)
        var environment = environment
        if let postgres { environment["MESHCA_LEDGER"] = postgres.server.url(database: postgres.database) }
        if let initArguments {
            let created = try Command.meshcaBlocking(["init"] + initArguments + ["--state-dir", state], environment: environment)
            guard created.status == 0 else { throw BenchError(.toolFailed, "meshca init \(initArguments.joined(separator: " ")) failed: \(created.stderr)") }
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
                ledger: try postgres.map { .postgres($0.server, database: $0.database) } ?? .sqlite(SQLiteLedger(path: state + "/ledger.db")),
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
        guard token.status == 0 else { throw BenchError(.toolFailed, "meshca token create failed: \(token.stderr)") }
        return token.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Sends `csrs` (all for `serviceAccount` in namespace default) with `level` requests in flight.
    func run(level: Int, csrs: [String], serviceAccount: String) async throws -> LevelResult {
        try await Self.run(replicas: [self], level: level, csrs: csrs, serviceAccount: serviceAccount)
    }

    /// Sends `csrs` with `level` requests in flight to `replicas` (daemons sharing one state directory and one
    /// ledger; the first makes the join token). Up to 8 connection slots are shared by the workers, as with one
    /// daemon; each slot holds one connection to every replica, and each worker sends its requests to the replicas
    /// in turn, so every replica gets an equal share at every level (at c=1 too). With one replica this is the
    /// one-daemon load. The server CPU is that of every replica. After the level the ledger must hold exactly the
    /// serials handed out.
    static func run(replicas: [MeshCAServe], level: Int, csrs: [String], serviceAccount: String) async throws -> LevelResult {
        guard let first = replicas.first else { throw BenchError(.setupFailed, "no daemon to send requests to") }
        let headers: Metadata = ["authorization": "Bearer \(try first.token(for: serviceAccount, uses: csrs.count))"]
        let connections = min(level, 8)
        let clients = replicas.map(\.client)
        var result = try await LevelResult.measure(concurrency: level, serverPIDs: replicas.map(\.daemon.pid), database: first.ledger.databaseProcesses, serial: Self.serial(ofLeaf:)) {
            await withTaskGroup(of: [LevelResult.Outcome].self) { group in
                for connection in 0..<connections {
                    let workers = (0..<level).filter { $0 % connections == connection }
                    group.addTask {
                        do {
                            return try await withConnections(clients[...]) { open in
                                await withTaskGroup(of: [LevelResult.Outcome].self) { inner in
                                    for worker in workers {
                                        inner.addTask {
                                            var done: [LevelResult.Outcome] = []
                                            for (turn, index) in stride(from: worker, to: csrs.count, by: level).enumerated() {
                                                done.append(await Self.send(csrs[index], headers: headers, on: open[(worker + turn) % open.count]))
                                            }
                                            return done
                                        }
                                    }
                                    return await inner.reduce(into: []) { $0 += $1 }
                                }
                            }
                        } catch {
                            return [.failure(BenchError(.requestFailed, "connection failed: \(error)"))]
                        }
                    }
                }
                return await group.reduce(into: []) { $0 += $1 }
            }
        }
        let recorded = try await first.ledger.serials(serviceAccount: serviceAccount)
        result.recorded = recorded.count
        result.recordedExactly = recorded == Set(result.serials) && result.serials.count == csrs.count
        return result
    }

    /// One open connection to each of `clients`, in order, for the time `body` runs.
    private static func withConnections<Result: Sendable>(
        _ clients: ArraySlice<CAClient>, opened: [CAClient.Connection] = [], _ body: ([CAClient.Connection]) async throws -> Result
    ) async throws -> Result {
        guard let client = clients.first else { return try await body(opened) }
        return try await client.withConnection { connection in
            try await withConnections(clients.dropFirst(), opened: opened + [connection], body)
        }
    }

    /// One `CreateCertificate`, timed from the call to the parsed response.
    private static func send(_ csr: String, headers: Metadata, on connection: CAClient.Connection) async -> LevelResult.Outcome {
        let begin = ContinuousClock.now
        do {
            let chain = try await connection.createCertificate(csrPEM: csr, ttl: nil, headers: headers)
            let elapsed = ContinuousClock.now - begin
            guard let leaf = chain.first else { return .failure(BenchError(.badResponse, "the response carries no certificate")) }
            return .success((leaf, elapsed.milliseconds))
        } catch {
            return .failure(BenchError(.requestFailed, "\(error)"))
        }
    }

    /// The serial of the leaf certificate in `pem`.
    static func serial(ofLeaf pem: String) throws -> String {
        guard let certificate = try Certificate.parseAll(pem: pem).first else { throw BenchError(.badResponse, "the response carries no certificate") }
        return certificate.serialHex
    }

    /// Peak resident memory so far (VmHWM), in KiB.
    var peakRSS: Int? { ProcessStats.memory(pid: daemon.pid, field: "VmHWM") }

    /// Private resident memory now (RssAnon: heap, stacks, relocated data), in KiB.
    var anonymousRSS: Int? { ProcessStats.memory(pid: daemon.pid, field: "RssAnon") }

    func stop() { daemon.terminate() }
}

/// A daemon's ledger as the benchmark reads it back: the state directory's SQLite file, or a PostgreSQL database
/// (read with `psql`, independently of the ledger code being measured).
enum BenchLedger: Sendable {
    case sqlite(SQLiteLedger)
    case postgres(PostgreSQLServer, database: String)

    /// The database server's processes (the postmaster and its children), for its CPU time; nil for SQLite.
    var databaseProcesses: (@Sendable () -> [Int32])? {
        guard case .postgres(let server, _) = self else { return nil }
        return {
            guard let text = try? String(contentsOfFile: server.dataDirectory + "/postmaster.pid", encoding: .utf8),
                let postmaster = text.split(separator: "\n").first.flatMap({ Int32($0) })
            else { return [] }
            return ProcessStats.withChildren(postmaster)
        }
    }

    /// The serials (lowercase hex) of every issuance recorded for `serviceAccount`.
    func serials(serviceAccount: String) async throws -> Set<String> {
        switch self {
        case .sqlite(let ledger):
            return Set(try await ledger.issuances(matching: IssuanceQuery(serviceAccount: serviceAccount)).map(\.serial))
        case .postgres(let server, let database):
            guard serviceAccount.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }) else {
                throw BenchError(.badResponse, "unexpected service account name \(serviceAccount)")
            }
            let output = try await server.psql("SELECT serial FROM issuances WHERE service_account = '\(serviceAccount)'", database: database)
            return Set(output.split(separator: "\n").map { String($0) })
        }
    }
}

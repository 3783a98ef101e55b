import Foundation
import MeshCATestSupport

/// Phase 2c (issue 14): the ledger in PostgreSQL, one `meshca serve` replica and then two on one database, given
/// the same CSRs at the same levels as the SQLite daemon of phase 2.
///
/// The benchmark starts a PostgreSQL server of its own (the distribution's binaries, `initdb` in a temporary
/// directory, loopback TCP) with `fsync=on` and every connection at `synchronous_commit=on`, as meshca sets it: a
/// certificate is answered only after its row is durable, as with SQLite's synchronous=FULL. Each replica count
/// gets a database and a state directory of its own (`meshca init` with the database as `--ledger`); two replicas
/// share both, as in docs/replicas.md. The load is split evenly: each worker sends its requests to the replicas in
/// turn. After each level the database must hold exactly the serials handed out (read with `psql`).
struct PostgresReplicas {
    /// The results at each level for each replica count (1, then 2).
    var replicas: [Int: [LevelResult]] = [:]
    /// `SELECT version()`, and the settings that decide durability, as the server reported them.
    var serverVersion = ""
    var settings: [String: String] = [:]

    static let replicaCounts = [1, 2]

    /// Runs the phase; throws (naming the level) when a ledger does not hold exactly what was issued.
    static func measure(
        binary: String, directory: TemporaryDirectory, levels: [Int], csrs: [[String]], serviceAccounts: [String],
        describe: (String, LevelResult) -> String
    ) async throws -> PostgresReplicas {
        let server = try await PostgreSQLServer.start(fsync: true)
        do {
            var results = PostgresReplicas()
            results.serverVersion = try await server.psql("SELECT version()", database: "postgres")
            for name in ["fsync", "synchronous_commit", "wal_sync_method", "full_page_writes", "commit_delay", "shared_buffers", "max_connections"] {
                results.settings[name] = try await server.psql("SHOW \(name)", database: "postgres")
            }
            guard results.settings["fsync"] == "on" else { throw BenchError("the benchmark's PostgreSQL server runs with fsync=\(results.settings["fsync"] ?? "?"); it must be on") }
            print("postgres: \(results.serverVersion.split(separator: ",").first ?? ""), fsync=\(results.settings["fsync"] ?? "?"), wal_sync_method=\(results.settings["wal_sync_method"] ?? "?"), port \(server.port)")
            for count in replicaCounts {
                let database = try await server.createDatabase()
                let stateName = "state-postgres-\(count)"
                var daemons: [MeshCAServe] = []
                do {
                    for replica in 0..<count {
                        daemons.append(
                            try await MeshCAServe.start(
                                binary: binary, directory: directory, stateName: stateName, initArguments: replica == 0 ? [] : nil,
                                postgres: (server, database)))
                    }
                    var levelResults: [LevelResult] = []
                    for (index, level) in levels.enumerated() {
                        let result = try await MeshCAServe.run(replicas: daemons, level: level, csrs: csrs[index], serviceAccount: serviceAccounts[index])
                        let name = count == 1 ? "meshca serve, PostgreSQL, 1 replica" : "meshca serve, PostgreSQL, \(count) replicas"
                        print(describe(name, result) + String(format: ", database %.2f cores (%.0f us per issuance)", result.databaseCores ?? .nan, result.databaseMicrosecondsPerIssuance ?? .nan))
                        levelResults.append(result)
                        guard result.recordedExactly else {
                            throw BenchError(
                                "PostgreSQL with \(count) replica(s), concurrency \(level): the ledger holds \(result.recorded.map(String.init) ?? "?") rows for \(serviceAccounts[index]), "
                                    + "not exactly the \(result.serials.count) serials issued of \(csrs[index].count) sent (\(result.failures) failed: \(result.firstFailure ?? "-"))")
                        }
                    }
                    results.replicas[count] = levelResults
                } catch {
                    daemons.forEach { $0.stop() }
                    throw error
                }
                daemons.forEach { $0.stop() }
            }
            await server.remove()
            return results
        } catch {
            await server.remove()
            throw error
        }
    }

    /// The side-by-side table: issuances/s and latency at each level, SQLite (phase 2) beside PostgreSQL.
    func render(levels: [Int], sqlite: [LevelResult]) -> String {
        let header = ["ledger", "c", "issuances/s", "p50 ms", "p99 ms", "daemon us/iss.", "database us/iss.", "daemon cores", "database cores"]
        var body: [[String]] = []
        func row(_ name: String, _ result: LevelResult) -> [String] {
            [
                name, String(result.concurrency), BenchReport.format(result.rate), BenchReport.format(result.percentile(0.5)), BenchReport.format(result.percentile(0.99)),
                BenchReport.format(result.serverMicrosecondsPerIssuance), BenchReport.format(result.databaseMicrosecondsPerIssuance),
                BenchReport.format(result.serverCores), BenchReport.format(result.databaseCores),
            ]
        }
        for (index, _) in levels.enumerated() {
            if sqlite.indices.contains(index) { body.append(row("SQLite, 1 daemon", sqlite[index])) }
            for count in Self.replicaCounts {
                if let results = replicas[count], results.indices.contains(index) {
                    body.append(row("PostgreSQL, \(count) replica\(count == 1 ? "" : "s")", results[index]))
                }
            }
        }
        let widths = header.indices.map { column in ([header] + body).map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == 0 ? cell.padding(toLength: widths[0], withPad: " ", startingAt: 0) : String(repeating: " ", count: widths[index] - cell.count) + cell
            }.joined(separator: "  ")
        }
        let rule = String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1))
        return ([line(header), rule] + body.map(line)).joined(separator: "\n") + "\n"
    }

    /// The JSON form.
    var json: [String: Any] {
        var document: [String: Any] = ["server_version": serverVersion, "settings": settings]
        for (count, results) in replicas { document["replicas_\(count)"] = results.map(\.json) }
        return document
    }

    /// Issue 14's target: two replicas issue at least as many certificates per second as one, at each level.
    func targetLines() -> [(met: Bool, text: String)] {
        guard let one = replicas[1], let two = replicas[2] else { return [] }
        return zip(one, two).map { one, two in
            (two.rate >= one.rate, String(format: "PostgreSQL, 2 replicas >= 1 replica at c=%d: %.0f vs %.0f issuances/s (%.2fx)", one.concurrency, two.rate, one.rate, two.rate / one.rate))
        }
    }
}

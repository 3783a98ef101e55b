import Foundation
import MeshCAErrors
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
    /// For each replica count (1, 2), every round's results at each level.
    var rounds: [Int: [[LevelResult]]] = [:]
    /// For each replica count, at each level, the round with the median issuance rate (its latencies with it).
    var replicas: [Int: [LevelResult]] {
        rounds.mapValues { rounds in
            guard let first = rounds.first else { return [] }
            return first.indices.map { level in
                let sorted = rounds.compactMap { $0.indices.contains(level) ? $0[level] : nil }.sorted { $0.rate < $1.rate }
                return sorted[(sorted.count - 1) / 2]
            }
        }
    }
    /// `SELECT version()`, and the settings that decide durability, as the server reported them.
    var serverVersion = ""
    var settings: [String: String] = [:]
    /// With `statements` on: per replica count, per level (round after round), what pg_stat_statements counted.
    var statementCounts: [Int: [[Statement]]] = [:]

    /// One statement's figures over one level (pg_stat_statements; execution time includes waiting for locks,
    /// and a COMMIT's includes its WAL flush).
    struct Statement {
        var query: String
        var calls: Int
        var milliseconds: Double
        var json: [String: Any] { ["query": query, "calls": calls, "total_exec_ms": milliseconds] }
    }

    static let replicaCounts = [1, 2]

    /// Runs the phase: `rounds` rounds, each one replica and then two (in the other order in every second round, so
    /// a drift of the shared machine's load does not favour one), each on a fresh database and state directory.
    /// Throws (naming the level) when a ledger does not hold exactly what was issued.
    static func measure(
        binary: String, directory: TemporaryDirectory, levels: [Int], csrs: [[String]], serviceAccounts: [String],
        rounds: Int = 1, statements: Bool = false, describe: (String, LevelResult) -> String
    ) async throws -> PostgresReplicas {
        let server = try await PostgreSQLServer.start(fsync: true)
        do {
            var results = PostgresReplicas()
            if statements {
                // A diagnosis, not the measured configuration: pg_stat_statements costs some of the shared CPU.
                try await server.psql("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'", database: "postgres")
                try await server.stop()
                try await server.startServer()
                // In the maintenance database: meshca refuses a ledger database holding tables of another program.
                try await server.psql("CREATE EXTENSION pg_stat_statements", database: "postgres")
            }
            results.serverVersion = try await server.psql("SELECT version()", database: "postgres")
            for name in ["fsync", "synchronous_commit", "wal_sync_method", "full_page_writes", "commit_delay", "shared_buffers", "max_connections"] {
                results.settings[name] = try await server.psql("SHOW \(name)", database: "postgres")
            }
            guard results.settings["fsync"] == "on" else { throw BenchError(.setupFailed, "the benchmark's PostgreSQL server runs with fsync=\(results.settings["fsync"] ?? "?"); it must be on") }
            print("postgres: \(results.serverVersion.split(separator: ",").first ?? ""), fsync=\(results.settings["fsync"] ?? "?"), wal_sync_method=\(results.settings["wal_sync_method"] ?? "?"), port \(server.port)")
            for (round, count) in (0..<max(rounds, 1)).flatMap({ round in (round % 2 == 0 ? replicaCounts : replicaCounts.reversed()).map { (round, $0) } }) {
                let database = try await server.createDatabase()
                let stateName = "state-postgres-\(count)-round\(round + 1)"
                var daemons: [MeshCAServe] = []
                do {
                    for replica in 0..<count {
                        daemons.append(
                            try await MeshCAServe.start(
                                binary: binary, directory: directory, stateName: stateName, initArguments: replica == 0 ? [] : nil,
                                postgres: (server, database)))
                    }
                    var levelResults: [LevelResult] = []
                    var levelStatements: [[Statement]] = []
                    for (index, level) in levels.enumerated() {
                        if statements { try await server.psql("SELECT pg_stat_statements_reset()", database: "postgres") }
                        let result = try await MeshCAServe.run(replicas: daemons, level: level, csrs: csrs[index], serviceAccount: serviceAccounts[index])
                        let name = "meshca serve, PostgreSQL, \(count) replica\(count == 1 ? "" : "s")" + (rounds > 1 ? ", round \(round + 1)" : "")
                        print(describe(name, result) + String(format: ", database %.2f cores (%.0f us per issuance)", result.databaseCores ?? .nan, result.databaseMicrosecondsPerIssuance ?? .nan))
                        levelResults.append(result)
                        if statements {
                            let counted = try await Self.statements(server: server, database: database)
                            levelStatements.append(counted)
                            let issued = Double(max(result.serials.count, 1))
                            for statement in counted.prefix(14) {
                                print(String(format: "  %8d calls (%.2f per issuance), %9.1f ms: %@", statement.calls, Double(statement.calls) / issued, statement.milliseconds, String(statement.query.prefix(90))))
                            }
                            if let lock = counted.first(where: { $0.query.contains("pg_advisory_xact_lock") }) {
                                print(String(format: "  group commits: %d, %.1f issuances each; time waiting for the chain lock (pg_advisory_xact_lock): %.0f ms in %.1f s", lock.calls, issued / Double(max(lock.calls, 1)), lock.milliseconds, result.seconds))
                            }
                        }
                        guard result.recordedExactly else {
                            throw BenchError(
                                .countMismatch,
                                "PostgreSQL with \(count) replica(s), concurrency \(level): the ledger holds \(result.recorded.map(String.init) ?? "?") rows for \(serviceAccounts[index]), "
                                    + "not exactly the \(result.serials.count) serials issued of \(csrs[index].count) sent (\(result.failures) failed: \(result.firstFailure ?? "-"))")
                        }
                    }
                    results.rounds[count, default: []].append(levelResults)
                    if statements { results.statementCounts[count, default: []] += levelStatements }
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

    /// Every statement pg_stat_statements (in the database `postgres`) counted in `database` since its last reset,
    /// most called first.
    static func statements(server: PostgreSQLServer, database: String) async throws -> [Statement] {
        let output = try await server.psql(
            "SELECT s.calls, round(s.total_exec_time::numeric, 3), regexp_replace(s.query, '\\s+', ' ', 'g') FROM pg_stat_statements s "
                + "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = '\(database)' ORDER BY s.calls DESC, s.total_exec_time DESC",
            database: "postgres")
        return output.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: "|", maxSplits: 2)
            guard fields.count == 3, let calls = Int(fields[0]), let milliseconds = Double(fields[1]) else { return nil }
            return Statement(query: String(fields[2]), calls: calls, milliseconds: milliseconds)
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
        for (count, results) in replicas { document["replicas_\(count)_median_round"] = results.map(\.json) }
        for (count, rounds) in rounds { document["replicas_\(count)_rounds"] = rounds.map { $0.map(\.json) } }
        for (count, levels) in statementCounts { document["statements_replicas_\(count)"] = levels.map { $0.map(\.json) } }
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

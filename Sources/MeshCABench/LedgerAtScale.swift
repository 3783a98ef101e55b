import Foundation
import MeshCAErrors
import MeshCATestSupport

/// Phase 6: a ledger holding many issuances, queried with `meshca audit list` as a whole process.
///
/// The ledger is created by `meshca init` (so it has every migration's schema and indexes) and seeded
/// with one real issuance; then `rows` realistic rows are bulk-inserted with the sqlite3 shell in one
/// transaction: random 128-bit serials, 100 namespaces, one service account per 100 rows, issuance times
/// spread evenly over the last 30 days in insertion order, 24h lifetimes, and the seed's real certificate
/// DER in every row so rows have their real size. Each query runs once untimed, then the queries run
/// `runs` rounds, each query once per round (interleaved, so a passing disturbance of the machine touches
/// every query a little rather than one query's every sample); the median is reported. The file stays in
/// the page cache between runs (a warm query, like a repeated audit).
///
/// When the ledger has the tamper-evident event chain, each bulk row also gets its placeholder event, as
/// migration 0003 leaves for rows that predate the chain; the next `meshca` to open the ledger chains them
/// (timed as the backfill), and then `meshca audit verify` recomputes the whole chain (timed too).
struct LedgerAtScale {
    struct Query {
        var name: String
        var arguments: [String]
        var samples: [Double] = []
        var resultCount = 0
        /// How many certificates it must list; nil when too few rows make it depend on the second it runs.
        var expectedCount: Int?
    }

    var rows: Int
    var fillSeconds: Double
    /// Seconds the first open took to chain the bulk rows (nil without an event chain).
    var backfillSeconds: Double?
    /// `meshca audit verify` wall times in milliseconds, and whether it said the ledger is intact.
    var verifySamples: [Double] = []
    var verifyIntact: Bool?
    var fileBytes: Int
    /// The same command on the ledger holding only the seed row: what process start-up alone costs.
    var floor: Query
    var queries: [Query]

    static func measure(meshcaBinary: String, directory: TemporaryDirectory, rows: Int, runs: Int) throws -> LedgerAtScale {
        let state = directory.file("ledger-state")
        let ledger = state + "/ledger.db"
        try checked(meshcaBinary, ["init", "--state-dir", state])
        try checked(meshcaBinary, ["issue", "--sa", "seed", "--state-dir", state, "--out", directory.file("ledger-seed")])

        let accounts = max(1, rows / 100)
        let account = "sa-\(42 % accounts)"
        let namespace = "ns-\((42 % accounts) % 100)"
        let perAccount = rows / accounts + (42 % accounts < rows % accounts ? 1 : 0)
        let expiring = rows / 720  // 24h lifetimes over 30 days: issued in the hour 24h ago expire within the next hour
        let listed = ["audit", "list", "--json", "--limit", "50", "--state-dir", state]
        var floor = Query(name: "same query, ledger with 1 row", arguments: listed + ["--sa", "seed"], expectedCount: 1)
        try time(&floor, binary: meshcaBinary, runs: runs)

        let started = ContinuousClock.now
        let chained = try fill(ledger, rows: rows, accounts: accounts)
        let fillSeconds = (ContinuousClock.now - started).seconds
        var backfillSeconds: Double?
        if chained {
            let opened = ContinuousClock.now
            try checked(meshcaBinary, listed + ["--sa", "seed"])
            backfillSeconds = (ContinuousClock.now - opened).seconds
        }

        // The fill and the chaining leave over a gigabyte of dirty pages; flush them first, so the queries below
        // are timed against the ledger rather than against the kernel's writeback.
        sync()

        var queries = [
            Query(name: "audit list --sa \(account) --json --limit 50", arguments: listed + ["--sa", account], expectedCount: min(50, perAccount)),
            Query(name: "audit list --ns \(namespace) --sa \(account) --json --limit 50", arguments: listed + ["--ns", namespace, "--sa", account], expectedCount: min(50, perAccount)),
            Query(name: "audit list --expiring-within 1h --json --limit 50", arguments: listed + ["--expiring-within", "1h"], expectedCount: expiring >= 60 ? 50 : nil),
        ]
        for index in queries.indices { try time(&queries[index], binary: meshcaBinary, runs: 0) }
        for _ in 0..<runs {
            for index in queries.indices { queries[index].samples.append(try OneShot.timed(meshcaBinary, queries[index].arguments)) }
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: ledger)[.size] as? Int) ?? 0
        var result = LedgerAtScale(rows: rows, fillSeconds: fillSeconds, backfillSeconds: backfillSeconds, fileBytes: size, floor: floor, queries: queries)
        if chained {
            for _ in 0..<max(1, min(runs, 3)) {
                let begin = ContinuousClock.now
                let verified = try Command.runBlocking(meshcaBinary, ["audit", "verify", "--json", "--state-dir", state])
                result.verifySamples.append((ContinuousClock.now - begin).milliseconds)
                let report = try? JSONSerialization.jsonObject(with: Data(verified.stdout.utf8)) as? [String: Any]
                result.verifyIntact = report?["intact"] as? Bool
            }
        }
        return result
    }

    /// Bulk-inserts `rows` issuances in one transaction (no journal and no fsync while filling, then back to WAL),
    /// each with a placeholder chain event when the ledger has an event chain; returns whether it has one.
    static func fill(_ ledger: String, rows: Int, accounts: Int) throws -> Bool {
        let chained = try SQLiteShell.run(database: ledger, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'ledger_events';")
            .trimmingCharacters(in: .whitespacesAndNewlines) == "1"
        guard rows > 0 else { return chained }
        let events = chained ? "INSERT INTO ledger_events (kind, subject) SELECT 'issuance', serial FROM issuances WHERE service_account != 'seed' ORDER BY rowid;" : ""
        let window = 30 * 86_400
        let sql = """
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            PRAGMA cache_size = -204800;
            BEGIN;
            WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < \(rows - 1))
            INSERT INTO issuances (serial, spiffe_id, trust_domain, namespace, service_account, sans, not_before, not_after,
              issued_at, requested_ttl_seconds, granted_ttl_seconds, key_type, public_key_sha256, csr_sha256, certificate_der,
              issuer_fingerprint, requester, auth_method, peer)
            SELECT serial, 'spiffe://cluster.local/ns/' || ns || '/sa/' || sa, 'cluster.local', ns, sa,
              '["URI:spiffe://cluster.local/ns/' || ns || '/sa/' || sa || '"]', t - 120, t + 86400, t, NULL, 86400, 'ec-p256',
              lower(hex(randomblob(32))), lower(hex(randomblob(32))), (SELECT certificate_der FROM issuances WHERE service_account = 'seed'),
              (SELECT issuer_fingerprint FROM issuances WHERE service_account = 'seed'),
              'token:' || printf('%016x', i / 1000), 'token', 'ipv4:10.' || (i % 250) || '.' || (i / 250 % 250) || '.1:' || (30000 + i % 30000)
            FROM (SELECT i, lower(hex(randomblob(16))) AS serial, 'ns-' || (i % \(accounts) % 100) AS ns, 'sa-' || (i % \(accounts)) AS sa,
              CAST(strftime('%s', 'now') AS INTEGER) - \(window) + i * \(window) / \(rows) AS t FROM n);
            \(events)
            COMMIT;
            PRAGMA journal_mode = WAL;
            """
        let output = try SQLiteShell.run(database: ledger, sql)
        guard output.contains("wal") else { throw BenchError(.toolFailed, "the filled ledger did not return to WAL mode: \(output)") }
        return chained
    }

    /// Runs `query` once untimed, then `runs` times, checking it lists the expected number of certificates.
    static func time(_ query: inout Query, binary: String, runs: Int) throws {
        let warm = try Command.runBlocking(binary, query.arguments)
        guard warm.status == 0, let listed = try JSONSerialization.jsonObject(with: Data(warm.stdout.utf8)) as? [Any] else {
            throw BenchError(.toolFailed, "meshca \(query.arguments.joined(separator: " ")) failed: \(warm.stderr.suffix(500))")
        }
        query.resultCount = listed.count
        guard query.expectedCount.map({ $0 == listed.count }) ?? true else {
            throw BenchError(.countMismatch, "\(query.name) listed \(listed.count) certificates, expected \(query.expectedCount ?? 0)")
        }
        for _ in 0..<runs { query.samples.append(try OneShot.timed(binary, query.arguments)) }
    }

    private static func checked(_ binary: String, _ arguments: [String]) throws {
        let result = try Command.runBlocking(binary, arguments)
        guard result.status == 0 else { throw BenchError(.toolFailed, "meshca \(arguments.joined(separator: " ")) failed: \(result.stderr.suffix(500))") }
    }
}

import Foundation
import MeshCALedger
@testable import MeshCALedgerPostgres
import MeshCAMigrations
import MeshCATestSupport
import Synchronization
import Testing

/// Several ledgers on one database at once (replicas of `meshca serve` on PostgreSQL, a daemon and the CLI on an
/// SQLite file): one token use, one chain, every revocation seen by every replica.
@Suite("Replicas sharing one ledger", .timeLimit(.minutes(2)))
struct ReplicaTests {
    @Test("Two replicas racing on one single-use token: exactly one certificate, the other .tokenRejected", arguments: LedgerEngine.all)
    func tokenRace(_ engine: LedgerEngine) async throws {
        try await withLedgers(engine, count: 2) { replicas async throws in
            for round in 0..<10 {
                let token = JoinTokenRecord.fixture(id: String(format: "7a%02x", round), maxUses: 1)
                try await replicas[0].createToken(token)
                let outcomes = await concurrently(2) { index in
                    try await replicas[index].record(
                        .fixture(serial: String(format: "%02x%02x", round, index)), consuming: token.use(at: at(60)))
                }
                #expect(outcomes.filter { $0.succeeded }.count == 1, "round \(round)")
                #expect(outcomes.compactMap { $0.ledgerError }.map(\.code) == [.tokenRejected], "round \(round)")
                #expect(try await replicas[1].token(id: token.id)?.uses == 1)
            }
            #expect(try await replicas[0].allIssuances().count == 10)
            #expect(try await replicas[0].verifyChain().problems.isEmpty)
        }
    }

    @Test("Two replicas issuing, refusing and revoking at once write one chain that verifies", arguments: LedgerEngine.all)
    func concurrentChain(_ engine: LedgerEngine) async throws {
        try await withLedgers(engine, count: 2) { replicas async throws in
            let perReplica = 40
            let outcomes = await concurrently(2 * perReplica) { index in
                let replica = replicas[index % 2]
                let serial = String(format: "c%03x", index)
                try await replica.record(.fixture(serial: serial, issuedAt: at(Double(index))))
                if index % 5 == 0 {
                    try await replica.record(
                        RejectionRecord(
                            occurredAt: at(Double(index)), requester: "r\(index)", authMethod: "token",
                            requestedIdentity: "", reasonCode: "token-rejected", message: "no", peer: ""))
                }
                if index % 7 == 0 { _ = try await replicas[1 - index % 2].revoke(serial: serial, reason: "superseded", at: at(500)) }
            }
            #expect(outcomes.allSatisfy { $0.succeeded }, "\(outcomes.failures)")
            let report = try await replicas[1].verifyChain()
            #expect(report.problems.isEmpty, "\(report.problems)")
            // One event per issuance, rejection and revocation, whichever replica wrote it.
            #expect(report.eventCount == Int64(2 * perReplica + 16 + 12))
            #expect(try await replicas[0].allIssuances().count == 2 * perReplica)
            #expect(try await replicas[1].statistics().eventCount == report.eventCount)
        }
    }

    @Test("A revocation made through one replica is seen by another's revocation poll", arguments: LedgerEngine.all)
    func revocationPoll(_ engine: LedgerEngine) async throws {
        try await withLedgers(engine, count: 2) { replicas async throws in
            try await replicas[0].record(.fixture(serial: "0a01"))
            let head = try await replicas[1].revocations(after: 0).head
            #expect(try await replicas[1].revocations(after: head).revokedSince == false)
            _ = try await replicas[0].revoke(serial: "0a01", reason: "key-compromise", at: at(10))
            let poll = try await replicas[1].revocations(after: head)
            #expect(poll.revokedSince)
            #expect(poll.head == head + 1)
            #expect(try await replicas[1].issuance(serial: "0a01")?.revocationReason == "key-compromise")
        }
    }
}

/// What only the PostgreSQL engine has: its schema versions, a lost server, password authentication.
@Suite(
    "PostgreSQL ledger", .timeLimit(.minutes(2)),
    .enabled(if: PostgreSQLServer.isAvailable, "\(PostgreSQLServer.unavailableReason)"))
struct PostgresLedgerTests {
    @Test("The PostgreSQL schema is at the SQLite engine's newest version, and the folder matches the embedded list")
    func versionsAligned() throws {
        #expect(PostgresLedgerMigrations.latestVersion == LedgerMigrations.latestVersion)
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Migrations/postgres").path
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".sql") }.sorted()
        #expect(files.map { "postgres/" + $0 } == PostgresLedgerMigrations.all.map(\.fileName))
    }

    @Test("The same writes give the same chain, hash for hash, on SQLite and on PostgreSQL")
    func sameHashes() async throws {
        var heads: [String] = []
        for engine in LedgerEngine.allCases {
            try await withLedger(engine) { ledger async throws in
                let token = JoinTokenRecord(
                    id: "3f9a0c12", secretSHA256: secretHash("5e"), namespace: "payments", serviceAccount: "api",
                    createdAt: epoch, expiresAt: at(3600), maxUses: 2, createdBy: "local:root(uid 0)",
                    pinnedRootSHA256: secretHash("9b"))
                try await ledger.createToken(token)
                var first = IssuanceRecord.fixture(serial: "0a01", requestedTTLSeconds: 600)
                first.peer = "ipv4:127.0.0.1:53412"
                try await ledger.record(first, consuming: token.use(at: at(60)))
                try await ledger.record(
                    RejectionRecord(
                        occurredAt: at(70), requester: "token:ci", authMethod: "token", requestedIdentity: "",
                        reasonCode: "bad-csr", message: "The CSR signature does not verify."))
                try await ledger.record(
                    .fixture(serial: "0a02", issuedAt: at(80), certificateDER: [], revokedAt: at(90), revocationReason: "superseded"))
                _ = try await ledger.revoke(serial: "0a01", reason: "key-compromise", at: at(95))
                #expect(try await ledger.revokeToken(id: token.id, at: at(100)))
                try await ledger.recordRootChange(
                    "prepare", subject: "ab12", oldRoot: secretHash("01"), newRoot: secretHash("02"), at: at(110),
                    actor: "local:root(uid 0)", lagging: ["spiffe://mesh.example/ns/a/sa/b"])
                let report = try await ledger.verifyChain()
                #expect(report.isIntact, "\(engine): \(report.problems)")
                #expect(report.eventCount == 10)
                heads.append(report.headHash)
            }
        }
        #expect(heads.count == 2)
        #expect(Set(heads).count == 1, "\(heads)")
    }

    @Test("A database at a newer schema version is refused, naming both versions")
    func newerSchema() async throws {
        let server = try await PostgreSQLServer.shared
        let database = try await server.createDatabase()
        let configuration = try postgresConfiguration(server, database: database)
        let ledger = try await PostgresLedger.open(configuration, checkpointSigner: nil, logger: testLogger)
        #expect(try await ledger.schemaVersion == PostgresLedgerMigrations.latestVersion)
        await ledger.close()
        let newer = PostgresLedgerMigrations.latestVersion + 1
        try await server.psql(
            "INSERT INTO schema_migrations (version, file_name, applied_at) VALUES (\(newer), 'future.sql', 0)",
            database: database)
        let error = try await #require(throws: LedgerError.self) {
            _ = try await PostgresLedger.open(configuration, checkpointSigner: nil, logger: testLogger)
        }
        #expect(error.code == .newerSchema)
        #expect(error.message.contains("schema version \(newer)"))
        #expect(error.message.contains(configuration.redactedURL))
    }

    @Test("A database holding another program's tables is refused and left alone")
    func foreignDatabase() async throws {
        let server = try await PostgreSQLServer.shared
        let database = try await server.createDatabase()
        try await server.psql("CREATE TABLE orders (id int)", database: database)
        let error = try await #require(throws: LedgerError.self) {
            _ = try await PostgresLedger.open(
                try postgresConfiguration(server, database: database), checkpointSigner: nil, logger: testLogger)
        }
        #expect(error.code == .notALedger)
        #expect(error.message.contains("orders"))
        #expect(try await server.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", database: database) == "1")
    }

    @Test("Two replicas opening an empty database at once migrate it once")
    func concurrentOpen() async throws {
        let server = try await PostgreSQLServer.shared
        let configuration = try postgresConfiguration(server, database: try await server.createDatabase())
        let outcomes = await concurrently(3) { _ in
            let ledger = try await PostgresLedger.open(configuration, checkpointSigner: nil, logger: testLogger)
            await ledger.close()
        }
        #expect(outcomes.allSatisfy { $0.succeeded }, "\(outcomes.failures)")
    }

    @Test("A server that stops answering but keeps its connections open: a write is .unavailable after answerTimeout, and the next ones go through once it answers again")
    func serverStalls() async throws {
        try await withPrivateServer { server, configuration in
            var configuration = configuration
            configuration.answerTimeout = .seconds(2)
            let ledger = try await PostgresLedger.open(configuration, checkpointSigner: nil, logger: testLogger)
            try await ledger.record(.fixture(serial: "0b01"))
            try server.signalAll(SIGSTOP)
            let error = try await #require(throws: LedgerError.self) { try await ledger.record(.fixture(serial: "0b02")) }
            #expect(error.code == .unavailable)
            #expect(error.message.contains("did not answer within 2s"), "\(error.message)")
            #expect(error.message.contains(configuration.redactedURL))
            try server.signalAll(SIGCONT)
            _ = try await Wait.value("a write goes through once the server answers again") {
                try? await ledger.record(.fixture(serial: "0b03"))
            }
            let recorded = try await ledger.allIssuances().map(\.serial)
            #expect(recorded.first == "0b01" && recorded.last == "0b03", "\(recorded)")
            #expect(try await ledger.verifyChain().problems.isEmpty)
            await ledger.close()
        }
    }

    @Test("A server lost under load: every write in flight or arriving is .unavailable naming the database, nothing half-recorded, and writing resumes when it returns")
    func serverLostUnderLoad() async throws {
        try await withPrivateServer { server, configuration in
            var configuration = configuration
            // Longer than the waits below: a refusal must come from the lost connection itself, not this bound.
            configuration.answerTimeout = .seconds(300)
            let ledger = try await PostgresLedger.open(configuration, checkpointSigner: nil, logger: testLogger)
            let log = OutageLog()
            let writers = Task {
                await withTaskGroup(of: Void.self) { group in
                    for writer in 0..<4 {
                        group.addTask {
                            var round = 0
                            while !Task.isCancelled {
                                let serial = String(format: "%02x%04x", writer, round)
                                round += 1
                                do {
                                    try await ledger.record(.fixture(serial: serial))
                                    log.succeeded(serial)
                                } catch {
                                    log.failed(serial, error)
                                    await Task.yield()
                                }
                            }
                        }
                    }
                }
            }
            try await Wait.until("20 writes committed before the server stops") { log.successes.count >= 20 }
            try await server.stop()
            log.mark()
            try await Wait.until("4 writes refused while the server is down") { log.failuresSinceMark.count >= 4 }
            try await server.startServer()
            log.mark()
            try await Wait.until("20 writes committed after the server came back") { log.successesSinceMark >= 20 }
            writers.cancel()
            await writers.value

            for (serial, error) in log.failures {
                let failure = try #require(error as? LedgerError, "\(serial): \(error)")
                #expect(failure.code == .unavailable, "\(serial): \(failure.message)")
                #expect(failure.message.contains(configuration.redactedURL), "\(failure.message)")
            }
            // A write whose COMMIT was cut off may or may not have landed; every one reported as recorded is there.
            let recorded = Set(try await ledger.allIssuances().map(\.serial))
            #expect(Set(log.successes).isSubset(of: recorded))
            #expect(try await ledger.verifyChain().problems.isEmpty)
            await ledger.close()
        }
    }

    @Test("A group commit longer than answerTimeout whose every write is answered in time commits: the bound is per write")
    func longGroupCommit() async throws {
        let server = try await PostgreSQLServer.shared
        var configuration = try postgresConfiguration(server, database: try await server.createDatabase())
        configuration.answerTimeout = .seconds(3)
        let ledger = try await PostgresLedger.open(configuration, checkpointSigner: nil, logger: testLogger)
        // Each write takes a second on the server; the first one's flush runs while the other four queue, and
        // those four (four seconds) then commit in one transaction.
        let outcomes = await concurrently(5) { index in
            try await ledger.write("slow write \(index)") { connection in
                _ = try await ledger.rows("SELECT count(*) FROM (SELECT pg_sleep(1)) AS slept", on: connection)
            }
        }
        #expect(outcomes.allSatisfy { $0.succeeded }, "\(outcomes.failures)")
        #expect(ledger.groupCommitCount <= 3, "the slow writes were committed in few transactions, so one was long")
        await ledger.close()
    }

    @Test("A group transaction takes at most 32 writes, so a busy replica holds the chain lock only briefly")
    func groupCommitLimit() async throws {
        try await withLedger(.postgres) { store in
            let ledger = try #require(store as? PostgresLedger)
            // A first write holds the flush while 40 more queue behind it.
            let first = try await HeldFlush(of: ledger)
            let queued = Task { await concurrently(40) { index in try await ledger.record(.fixture(serial: String(format: "0d%02x", index))) } }
            try await Wait.until("40 writes wait behind the first") { ledger.pendingWriteCount == 40 }
            try await first.release()
            let outcomes = await queued.value
            #expect(outcomes.allSatisfy { $0.succeeded }, "\(outcomes.failures)")
            #expect(ledger.groupCommitCount == 3, "one transaction for the first write, then 32 and 8")
            #expect(try await ledger.allIssuances().count == 40)
        }
    }

    @Test("A write rolled back after it appended to the chain (its token used, then a duplicate serial) leaves the rest of its group transaction on an intact chain")
    func rolledBackAppendInGroup() async throws {
        try await withLedger(.postgres) { store in
            let ledger = try #require(store as? PostgresLedger)
            try await ledger.record(.fixture(serial: "0e01"))
            let token = JoinTokenRecord.fixture(id: "7e01", maxUses: 1)
            try await ledger.createToken(token)
            // A first write holds the flush while three queue behind it, so they share one transaction: the second
            // uses the token (an event) and is then refused for its duplicate serial, which undoes that event.
            let first = try await HeldFlush(of: ledger)
            let commitsBefore = ledger.groupCommitCount
            async let before: Void = ledger.record(.fixture(serial: "0e02"))
            try await Wait.until("the first queued write waits") { ledger.pendingWriteCount == 1 }
            let duplicate = Task { try await ledger.record(.fixture(serial: "0e01"), consuming: token.use(at: at(60))) }
            try await Wait.until("the duplicate waits") { ledger.pendingWriteCount == 2 }
            async let after: Void = ledger.record(.fixture(serial: "0e03"))
            try await Wait.until("all three wait") { ledger.pendingWriteCount == 3 }
            try await first.release()
            try await before
            let refused = await #expect(throws: LedgerError.self) { try await duplicate.value }
            #expect(refused?.code == .duplicateSerial)
            try await after
            #expect(ledger.groupCommitCount == commitsBefore + 2, "the first write, then the three in one transaction")
            #expect(try await ledger.token(id: token.id)?.uses == 0, "the refused write's token use was undone")
            let report = try await ledger.verifyChain()
            #expect(report.problems.isEmpty, "\(report.problems)")
            #expect(report.eventCount == 4, "three issuances and the token's creation")
        }
    }

    @Test("A lost connection: a read says nothing was changed, a write that it may have been recorded")
    func lostConnectionMessages() {
        let read = PostgresLedger.lost(operation: "read certificate 0c01", location: "postgres://meshca@db:5432/meshca", writing: false)
        #expect(read.code == .unavailable)
        #expect(read.message.contains("Nothing was handed out or changed") && !read.message.contains("write"), "\(read.message)")
        let write = PostgresLedger.lost(operation: "record certificate 0c01", location: "postgres://meshca@db:5432/meshca", writing: true)
        #expect(write.message.contains("the write may not have been recorded"), "\(write.message)")
        #expect(write.message.contains("postgres://meshca@db:5432/meshca") && write.message.contains("retry"))
    }

    @Test("A server lost under reads: every reader keeps getting answers, the row or .unavailable, and none waits for ever")
    func serverLostUnderReads() async throws {
        try await withPrivateServer { server, configuration in
            let ledger = try await PostgresLedger.open(configuration, checkpointSigner: nil, logger: testLogger)
            try await ledger.record(.fixture(serial: "0c01"))
            let log = ReadLog(readers: 4)
            let readers = Task {
                await withTaskGroup(of: Void.self) { group in
                    for reader in 0..<4 {
                        group.addTask {
                            while !Task.isCancelled {
                                do {
                                    _ = try await ledger.issuance(serial: "0c01")
                                    log.answered(reader, failure: nil)
                                } catch {
                                    log.answered(reader, failure: error)
                                    await Task.yield()
                                }
                            }
                        }
                    }
                }
            }
            try await Wait.until("every reader read the row before the server stops") { log.counts.allSatisfy { $0 >= 5 } }
            try await server.stop()
            // A read whose query was sent as the connection closed must still end (postgres-nio may never answer it).
            let atStop = log.counts
            try await Wait.until("every reader answered twice more after the server stopped (\(log.counts) from \(atStop))") {
                zip(log.counts, atStop).allSatisfy { $0 >= $1 + 2 }
            }
            try await server.startServer()
            let atStart = log.counts
            try await Wait.until("every reader answered after the server came back") { zip(log.counts, atStart).allSatisfy { $0 > $1 } }
            readers.cancel()
            await readers.value
            for failure in log.failures {
                #expect(failure.code == .unavailable, "\(failure.message)")
                // A read changed nothing: its message must not send the operator looking for a half-done write.
                #expect(!failure.message.contains("write"), "\(failure.message)")
            }
            #expect(try await ledger.issuance(serial: "0c01") != nil)
            await ledger.close()
        }
    }

    /// Runs `body` with a PostgreSQL server of its own (the test stops it, so it must not be the shared one) and the
    /// configuration of a fresh, already migrated database on it with a 2 s connect timeout; removes the server
    /// afterwards, first letting it run again if the test had stopped its processes (SIGSTOP).
    ///
    /// The migration runs first with the default connect timeout: on a busy machine it can take longer than the 2 s
    /// the outage under test is given, and that is not what these tests are about.
    func withPrivateServer(
        _ body: (PostgreSQLServer, PostgresLedgerConfiguration) async throws -> Void
    ) async throws {
        let server = try await PostgreSQLServer.start()
        do {
            var configuration = try postgresConfiguration(server, database: try await server.createDatabase())
            try await PostgresLedger.open(configuration, checkpointSigner: nil, logger: testLogger).close()
            configuration.connectTimeout = .seconds(2)
            try await body(server, configuration)
        } catch {
            try? server.signalAll(SIGCONT)
            await server.remove()
            throw error
        }
        await server.remove()
    }

    @Test("Password authentication: the password from a file logs in; a wrong one is refused as .cannotOpen")
    func passwordAuthentication() async throws {
        let server = try await PostgreSQLServer.shared
        let database = try await server.createDatabase()
        try await TemporaryDirectory.with("password") { directory in
            try directory.write("password", server.password + "\n")
            try directory.write("wrong", "not the password\n")
            let url = server.url(database: database, user: server.passwordUser)
            let good = try PostgresLedgerConfiguration(url: url, passwordFile: directory.file("password"), environment: [:])
            let ledger = try await PostgresLedger.open(good, checkpointSigner: nil, logger: testLogger)
            try await ledger.record(.fixture(serial: "0a01"))
            await ledger.close()

            let wrong = try PostgresLedgerConfiguration(url: url, passwordFile: directory.file("wrong"), environment: [:])
            let error = try await #require(throws: LedgerError.self) {
                _ = try await PostgresLedger.open(wrong, checkpointSigner: nil, logger: testLogger)
            }
            #expect(error.code == .cannotOpen)
            #expect(!error.message.contains("not the password"))
        }
    }
}

/// What the writers of `serverLostUnderLoad` saw, in order.
private final class OutageLog: Sendable {
    private let state = Mutex((successes: [String](), failures: [(String, any Error)](), markedSuccesses: 0, markedFailures: 0))

    func succeeded(_ serial: String) { state.withLock { $0.successes.append(serial) } }
    func failed(_ serial: String, _ error: any Error) { state.withLock { $0.failures.append((serial, error)) } }
    /// Starts counting anew for `successesSinceMark` and `failuresSinceMark`.
    func mark() { state.withLock { $0.markedSuccesses = $0.successes.count; $0.markedFailures = $0.failures.count } }

    var successes: [String] { state.withLock { $0.successes } }
    var failures: [(String, any Error)] { state.withLock { $0.failures } }
    var successesSinceMark: Int { state.withLock { $0.successes.count - $0.markedSuccesses } }
    var failuresSinceMark: [(String, any Error)] { state.withLock { Array($0.failures.dropFirst($0.markedFailures)) } }
}

/// What each reader of `serverLostUnderReads` got: how many answers, and the errors among them.
private final class ReadLog: Sendable {
    private let state: Mutex<(counts: [Int], failures: [LedgerError])>

    init(readers: Int) { state = Mutex((counts: [Int](repeating: 0, count: readers), failures: [])) }

    /// Counts an answer of `reader`; an error that is no LedgerError is kept as one with code `.other`, so the test
    /// fails showing it.
    func answered(_ reader: Int, failure: (any Error)?) {
        let failure = failure.map { $0 as? LedgerError ?? LedgerError(code: .other, message: "not a LedgerError: \($0)") }
        state.withLock { state in
            state.counts[reader] += 1
            if let failure { state.failures.append(failure) }
        }
    }

    var counts: [Int] { state.withLock { $0.counts } }
    var failures: [LedgerError] { state.withLock { $0.failures } }
}

/// A group-commit write that keeps its ledger's flush busy, inside the group transaction, until ``release()``:
/// writes made meanwhile queue behind it and share the next transaction.
struct HeldFlush {
    private let write: Task<Void, any Error>
    private let gate: AsyncStream<Void>.Continuation

    /// Starts the write and returns once its commit has begun.
    init(of ledger: PostgresLedger) async throws {
        let (opened, gate) = AsyncStream<Void>.makeStream()
        let started = Atomic(false)
        write = Task {
            try await ledger.write("hold the flush") { _ in
                started.store(true, ordering: .relaxed)
                for await _ in opened {}
            }
        }
        self.gate = gate
        try await Wait.until("the write holding the flush is being committed") { started.load(ordering: .relaxed) }
    }

    /// Lets the write finish and waits until it has committed.
    func release() async throws {
        gate.finish()
        try await write.value
    }
}

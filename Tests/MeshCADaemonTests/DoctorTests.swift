import Foundation
import MeshCACore
import MeshCADaemon
import MeshCALedger
import MeshCATestSupport
import SwiftASN1
import Testing
import X509

/// A CA state directory made "in the past", so its certificates expire at known moments around `now`.
struct DoctorFixture {
    let dir: TemporaryDirectory
    let state: StateDirectory
    let ca: CAState
    let ledger: SQLiteLedger
    /// The moment every check is run at.
    let now = Date()

    /// A CA created `age` before `now` whose root lives `rootTTL`.
    init(age: Duration = .seconds(2 * 86_400), rootTTL: Duration = .seconds(87_600 * 3600)) throws {
        dir = try TemporaryDirectory("doctor")
        state = StateDirectory(path: dir.file("state"))
        ca = try CAState.create(
            in: state, options: .init(rootTTL: rootTTL), now: now.addingTimeInterval(-Self.seconds(age)))
        ledger = try SQLiteLedger(path: state.ledgerPath)
    }

    var authority: CertificateAuthority { CertificateAuthority(trustDomain: ca.trustDomain, signer: ca.signer) }

    /// Issues and records a workload certificate for `sa`, signed `ago` before `now`, living `ttl`.
    @discardableResult
    func issue(_ sa: String, ago: Duration, ttl: Duration = .seconds(86_400)) async throws -> Certificate {
        let id = try SPIFFEID(trustDomain: ca.trustDomain, namespace: "default", serviceAccount: sa)
        let csr = try WorkloadCSR.pem(WorkloadCSR.make(for: id, key: KeyType.ecP256.generate()))
        let service = IssuanceService(authority: authority, ledger: ledger)
        return try await service.issue(
            IssuanceRequest(csrPEM: csr, identity: id, requestedTTL: ttl),
            requester: Requester(name: "local:test(uid 1)", authMethod: "local"),
            at: now.addingTimeInterval(-Self.seconds(ago))
        ).certificate
    }

    /// Issues and records a serving certificate as the daemon does, `ago` before `now`.
    @discardableResult
    func serve(ago: Duration, ttl: Duration = .seconds(7 * 86_400)) async throws -> Certificate {
        try await ServingIdentity(authority: authority, ledger: ledger, names: ["meshca.test"], ttl: ttl)
            .issue(at: now.addingTimeInterval(-Self.seconds(ago))).leaf
    }

    func examine(at offset: Duration = .zero, window: Duration = Doctor.defaultWindow) async -> DoctorReport {
        await Doctor(directory: state, window: window).examine(
            now: now.addingTimeInterval(Self.seconds(offset)), ledger: ledger)
    }

    static func seconds(_ duration: Duration) -> TimeInterval { TimeInterval(duration.components.seconds) }

    func remove() { dir.remove() }
}

extension DoctorReport {
    func findings(_ check: String) -> [Finding] { findings.filter { $0.check == check } }
    func finding(_ check: String) throws -> Finding { try #require(findings(check).first, "no \(check) finding") }
}

@Suite("meshca doctor's checks", .timeLimit(.minutes(2)))
struct DoctorTests {
    @Test("A fresh CA with a fresh ledger passes every check")
    func healthy() async throws {
        let fixture = try DoctorFixture()
        defer { fixture.remove() }
        try await fixture.issue("web", ago: .seconds(3600))
        let report = await fixture.examine()
        #expect(report.status == .ok, "\(report.findings.map(\.message))")
        #expect(report.status.exitCode == 0)
        let checks = Set(report.findings.map(\.check))
        #expect(checks == ["state", "root", "serving-certificate", "database", "ledger-chain", "identities"])
        let root = try report.finding("root")
        #expect(root.message.contains("also the signing CA"))
        #expect(root.certificate?.fingerprint == fixture.ca.signer.certificate.sha256Fingerprint)
        #expect(try report.finding("database").message.contains("passes quick_check, schema version"))
        #expect(try report.finding("serving-certificate").message.contains("has not run"))
    }

    @Test(
        "A root expiring inside the window is a warning naming the date and `meshca root prepare`; expired is a failure"
    )
    func rootExpiry() async throws {
        // Created a day ago with a 10-day root: 9 days left.
        let fixture = try DoctorFixture(age: .seconds(86_400), rootTTL: .seconds(10 * 86_400))
        defer { fixture.remove() }
        let notAfter = fixture.ca.signer.certificate.notValidAfter

        let within = await fixture.examine()
        let root = try within.finding("root")
        #expect(root.status == .warning)
        #expect(root.message.contains(notAfter.formatted(.iso8601)), "\(root.message)")
        #expect(root.message.contains("in 8d23h") || root.message.contains("in 9d"), "\(root.message)")
        #expect(root.message.contains("meshca root prepare"))
        #expect(within.status == .warning)
        #expect(within.status.exitCode == 1)

        #expect(await fixture.examine(window: .seconds(7 * 86_400)).status == .ok)

        let expired = await fixture.examine(at: .seconds(10 * 86_400))
        #expect(try expired.finding("root").status == .failure)
        #expect(try expired.finding("root").message.contains("expired at \(notAfter.formatted(.iso8601))"))
        #expect(try expired.finding("root").message.contains("Make a new root"))
        #expect(expired.status.exitCode == 2)

        let early = await fixture.examine(at: .seconds(-2 * 86_400))
        #expect(try early.finding("root").status == .failure)
        #expect(try early.finding("root").message.contains("not valid until"))
    }

    @Test("next/ and previous/ roots of a rotation are checked too; the previous one points at `meshca root retire`")
    func rotationRoots() async throws {
        let fixture = try DoctorFixture()
        defer { fixture.remove() }
        let old = try TestPKI(trustDomain: fixture.ca.trustDomain.name, createdAt: fixture.now, rootTTL: .seconds(5 * 86_400)).root
        try FileManager.default.createDirectory(
            atPath: fixture.state.path + "/previous", withIntermediateDirectories: true)
        try old.pem.write(toFile: fixture.state.path + "/previous/ca-cert.pem", atomically: true, encoding: .utf8)
        let report = await fixture.examine()
        let roots = report.findings("root")
        #expect(roots.count == 2)
        let previous = try #require(roots.first { $0.certificate?.fingerprint == old.sha256Fingerprint })
        #expect(previous.status == .warning)
        #expect(previous.message.contains("previous/ca-cert.pem"))
        #expect(previous.message.contains("meshca root retire"))
    }

    @Test("A plug-in CA's intermediate expiring inside the window says to re-plug cacerts")
    func pluginIntermediate() async throws {
        let dir = try TemporaryDirectory("doctor-plugin")
        defer { dir.remove() }
        try TestPKI(createdAt: Date(), rootTTL: .seconds(365 * 86_400), intermediateTTL: .seconds(10 * 86_400))
            .writeCacerts(to: dir.file("cacerts"))
        let state = StateDirectory(path: dir.file("state"))
        _ = try await CAState.importPlugin(
            from: dir.file("cacerts"), into: state, trustDomain: TrustDomain("cluster.local"), now: Date())
        _ = try SQLiteLedger(path: state.ledgerPath)

        let report = await Doctor(directory: state).examine(now: Date())
        let signing = try report.finding("signing-ca")
        #expect(signing.status == .warning)
        #expect(signing.message.contains("re-plug the cacerts files"))
        #expect(try report.finding("root").status == .ok)
        #expect(report.findings("intermediate").isEmpty, "cert-chain.pem holds only the signing CA and the root")
    }

    @Test("An identity whose renewal is overdue is listed with its serial; a renewed or fresh one is not")
    func identities() async throws {
        let fixture = try DoctorFixture(age: .seconds(10 * 86_400))
        defer { fixture.remove() }
        let stale = try await fixture.issue("stale", ago: .seconds(20 * 3600))  // 4h of 24h left, nothing newer
        try await fixture.issue("renewed", ago: .seconds(20 * 3600))
        try await fixture.issue("renewed", ago: .seconds(8 * 3600))  // 16h of 24h left
        try await fixture.issue("fresh", ago: .seconds(3600))
        try await fixture.serve(ago: .seconds(6 * 86_400 + 3600))  // serving certificates have their own check

        let report = await fixture.examine()
        let finding = try report.finding("identities")
        #expect(finding.status == .warning)
        #expect(finding.message.contains("1 identity has"))
        #expect(report.identitiesTotal == 1)
        let listed = try #require(report.identities.first)
        #expect(listed.spiffeID == "spiffe://cluster.local/ns/default/sa/stale")
        #expect(listed.serial == stale.serialHex)
        #expect(
            listed.notAfter == Date(timeIntervalSince1970: stale.notValidAfter.timeIntervalSince1970.rounded(.down)))

        // Expired recently: still listed. Expired longer than the window ago: dropped.
        #expect(await fixture.examine(at: .seconds(86_400)).identitiesTotal >= 1)
        #expect(await fixture.examine(at: .seconds(40 * 86_400)).identitiesTotal == 0)
    }

    @Test("The list of identities is capped, and the total still counts them all")
    func identityCap() async throws {
        let fixture = try DoctorFixture()
        defer { fixture.remove() }
        for index in 0..<5 { try await fixture.issue("sa\(index)", ago: .seconds(20 * 3600)) }
        var doctor = Doctor(directory: fixture.state)
        doctor.identityLimit = 2
        let report = await doctor.examine(now: fixture.now, ledger: fixture.ledger)
        #expect(report.identities.count == 2)
        #expect(report.identitiesTotal == 5)
    }

    @Test(
        "The serving certificate: fresh is ok, an overdue renewal a warning, expired a warning until the window passes")
    func serving() async throws {
        let fixture = try DoctorFixture(age: .seconds(10 * 86_400))
        defer { fixture.remove() }
        try await fixture.serve(ago: .seconds(6 * 86_400))  // 1d of 7d left: the daemon should have renewed at 3.5d
        let overdue = try await fixture.examine().finding("serving-certificate")
        #expect(overdue.status == .warning)
        #expect(overdue.message.contains("is meshca serve running?"))
        #expect(overdue.certificate?.role == "serving")

        let fresh = try await fixture.serve(ago: .zero)
        let ok = try await fixture.examine().finding("serving-certificate")
        #expect(ok.status == .ok)
        #expect(ok.certificate?.fingerprint == fresh.sha256Fingerprint)

        let stopped = try await fixture.examine(at: .seconds(8 * 86_400)).finding("serving-certificate")
        #expect(stopped.status == .warning)
        #expect(stopped.message.contains("meshca serve is not running"))
        let retired = try await fixture.examine(at: .seconds(40 * 86_400)).finding("serving-certificate")
        #expect(retired.status == .ok)
    }

    @Test("A ledger row edited with sqlite3 is a failure of ledger-chain, as `meshca audit verify` reports it")
    func tampered() async throws {
        let fixture = try DoctorFixture()
        defer { fixture.remove() }
        let certificate = try await fixture.issue("web", ago: .seconds(3600))
        let edit = try await Command.run(
            "sqlite3", [fixture.state.ledgerPath, "UPDATE issuances SET not_after = not_after + 86400"])
        #expect(edit.status == 0, "\(edit.stderr)")
        let report = await fixture.examine()
        let chain = try report.finding("ledger-chain")
        #expect(chain.status == .failure)
        #expect(chain.message.contains(certificate.serialHex))
        #expect(chain.message.contains("meshca audit verify"))
        #expect(report.status.exitCode == 2)
    }

    @Test("A corrupt ledger file is a failure carrying the ledger's own message; a missing one is not created")
    func corruptLedger() async throws {
        let fixture = try DoctorFixture()
        defer { fixture.remove() }
        try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: fixture.state.ledgerPath))
        try? FileManager.default.removeItem(atPath: fixture.state.ledgerPath + "-wal")
        try? FileManager.default.removeItem(atPath: fixture.state.ledgerPath + "-shm")
        let corrupt = await Doctor(directory: fixture.state).examine(now: fixture.now)
        let database = try corrupt.finding("database")
        #expect(database.status == .failure)
        #expect(database.message.contains("is not a meshca ledger or is corrupt"), "\(database.message)")
        #expect(corrupt.status == .failure)

        try FileManager.default.removeItem(atPath: fixture.state.ledgerPath)
        let missing = await Doctor(directory: fixture.state).examine(now: fixture.now)
        #expect(try missing.finding("database").message.contains("There is no ledger"))
        #expect(!FileManager.default.fileExists(atPath: fixture.state.ledgerPath))
    }

    @Test("A ledger another process keeps locked is a failure with the ledger's locked message")
    func lockedLedger() async throws {
        let dir = try TemporaryDirectory("doctor-locked")
        defer { dir.remove() }
        let state = StateDirectory(path: dir.file("state"))
        _ = try CAState.create(in: state, options: .init(), now: Date())
        _ = try SQLiteLedger(path: state.ledgerPath)  // created, migrated and closed again
        // An sqlite3 shell in exclusive locking mode holds the file until its input ends.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        holder.arguments = ["sqlite3", state.ledgerPath]
        let input = Pipe()
        let output = Pipe()
        holder.standardInput = input
        holder.standardOutput = output
        holder.standardError = FileHandle.nullDevice
        try holder.run()
        defer {
            try? input.fileHandleForWriting.close()
            holder.waitUntilExit()
        }
        input.fileHandleForWriting.write(
            Data("PRAGMA locking_mode=EXCLUSIVE;\nBEGIN EXCLUSIVE;\nSELECT 'locked';\n".utf8))
        var seen = ""
        while !seen.contains("locked") {
            let data = output.fileHandleForReading.availableData
            if data.isEmpty { break }
            seen += String(decoding: data, as: UTF8.self)
        }
        #expect(seen.contains("locked"), "sqlite3 said: \(seen)")
        var doctor = Doctor(directory: state)
        doctor.ledgerBusyTimeout = .milliseconds(200)
        let report = await doctor.examine(now: Date())
        let database = try report.finding("database")
        #expect(database.status == .failure)
        #expect(database.message.contains("is locked by another process"), "\(database.message)")
        #expect(report.status == .failure)
    }

    @Test("A write-ahead log above the limit is a warning that names the cause")
    func largeWAL() async throws {
        let fixture = try DoctorFixture()
        defer { fixture.remove() }
        try await fixture.issue("web", ago: .seconds(3600))  // the open ledger keeps its WAL
        var doctor = Doctor(directory: fixture.state)
        doctor.walWarningBytes = 1
        let database = try await doctor.examine(now: fixture.now, ledger: fixture.ledger).finding("database")
        #expect(database.status == .warning)
        #expect(database.message.contains("long-running reader"), "\(database.message)")
    }

    @Test("No CA in the state directory is a failure of the state check")
    func noCA() async throws {
        let dir = try TemporaryDirectory("doctor-empty")
        defer { dir.remove() }
        let report = await Doctor(directory: StateDirectory(path: dir.file("none"))).examine(now: Date())
        #expect(try report.finding("state").status == .failure)
        #expect(try report.finding("state").message.contains("meshca init"))
        #expect(report.status == .failure)
    }

    @Test("Expiry facts list each role a certificate plays, the serving certificate, and the overdue identities")
    func facts() async throws {
        let fixture = try DoctorFixture()
        defer { fixture.remove() }
        try await fixture.issue("stale", ago: .seconds(20 * 3600))
        let serving = try await fixture.serve(ago: .zero)
        let facts = await Doctor(directory: fixture.state).expiryFacts(now: fixture.now, ledger: fixture.ledger)
        let root = fixture.ca.signer.certificate
        #expect(facts.certificates.map(\.role).sorted() == ["root", "serving", "signing"])
        #expect(facts.certificates.first { $0.role == "root" }?.fingerprint == root.sha256Fingerprint)
        #expect(facts.certificates.first { $0.role == "serving" }?.fingerprint == serving.sha256Fingerprint)
        #expect(facts.expiringIdentities == 1)
    }
}

import Foundation
import MeshCACore
import MeshCALedger
import MeshCAPKCS11
import X509

/// `meshca doctor`'s checks, as a library: CA certificate expiry, the serving certificate, the ledger's hash
/// chain, the database file, and identities whose renewal is overdue.
///
/// The result is a function of the state directory's files, the ledger, `now` and `window`; nothing is
/// written except what opening a ledger always does (migrating an older schema). The daemon exports the same
/// facts as Prometheus gauges through ``expiryFacts(now:ledger:)``, so the gauges and the doctor agree.
public struct Doctor: Sendable {
    /// The default window: 30 days.
    public static let defaultWindow: Duration = .seconds(30 * 86_400)
    /// The requester name the daemon's serving certificates are recorded with (see ``ServingIdentity``).
    public static let servingRequester = "meshca-serve"
    /// The auth method the daemon's serving certificates are recorded with.
    public static let servingAuthMethod = "internal"

    /// The state directory to examine.
    public let directory: StateDirectory
    /// Anything that runs out before `now + window` is a warning.
    public let window: Duration
    /// How many overdue identities a report lists (the total is always counted).
    public var identityLimit: Int = 20
    /// How long opening the ledger waits for another process's lock before the database check fails as locked.
    public var ledgerBusyTimeout: Duration = .seconds(10)
    /// Where the ledger is (`--ledger`); the state directory's `ledger.db` by default.
    public var ledgerLocation: LedgerLocation = .stateDirectory
    /// A write-ahead log larger than this is reported as a warning. SQLite folds the log back into the database
    /// every 1000 pages (4 MiB) unless a reader holds an old snapshot, so 64 MiB means checkpoints are starved.
    public var walWarningBytes: Int64 = 64 << 20
    /// Told (events read, events in the ledger) while the ledger's chain is verified, for a progress display.
    public var progress: (@Sendable (_ done: Int64, _ total: Int64) -> Void)? = nil

    /// A doctor for `directory` with `window`.
    public init(directory: StateDirectory, window: Duration = Doctor.defaultWindow) {
        self.directory = directory
        self.window = window
    }

    /// Runs every check as of `now`. Uses `ledger` when given (the daemon's own), else opens the state
    /// directory's `ledger.db` (never creating one). Never throws: whatever cannot be read is a finding.
    public func examine(now: Date, ledger: (any LedgerStore)? = nil) async -> DoctorReport {
        var findings = stateFindings()
        let certificates = caCertificates()
        findings += certificateFindings(certificates, now: now)
        var identities: [ExpiringIdentity] = []
        var total = 0
        switch await openLedger(ledger) {
        case .failed(let finding):
            findings.append(finding)
        case .opened(let ledger):
            findings.append(await servingFinding(ledger: ledger, now: now).finding)
            findings.append(await databaseFinding(ledger))
            findings.append(await chainFinding(ledger))
            do {
                (identities, total) = try await ledger.expiringIdentities(
                    now: now, within: window, limit: identityLimit)
                findings.append(identityFinding(total: total))
            } catch {
                findings.append(
                    .init(check: "identities", status: .failure, message: "Could not list identities: \(error)"))
            }
        }
        return DoctorReport(
            now: now, window: window, directory: directory.path, findings: findings, identities: identities,
            identitiesTotal: total)
    }

    /// The expiry facts alone (no chain or database check), cheap enough to refresh every minute: every CA
    /// certificate, the newest serving certificate, and the number of identities with an overdue renewal.
    public func expiryFacts(now: Date, ledger: (any LedgerStore)?) async -> ExpiryFacts {
        var facts = ExpiryFacts(certificates: caCertificates().flatMap(\.roles), expiringIdentities: nil)
        guard case .opened(let ledger) = await openLedger(ledger) else { return facts }
        if let serving = await servingFinding(ledger: ledger, now: now).fact { facts.certificates.append(serving) }
        facts.expiringIdentities = try? await ledger.expiringIdentities(now: now, within: window, limit: 0).total
        return facts
    }

    /// `state`: the CA loads (files present, parseable, key matching), plus its warnings (a loose key mode), and where
    /// each CA key lives (a file, or a key in an HSM with how the token protects it). Never shows key material.
    private func stateFindings() -> [DoctorReport.Finding] {
        do {
            let state = try CAState.load(from: directory)
            let keys = keyFindings(state)
            guard state.warnings.isEmpty else {
                // Where the keys live is still said when a key is in an HSM (a file key's path is in the warning).
                let places: [DoctorReport.Finding] =
                    keys.summary.contains("in an HSM") ? [.init(check: "state", status: .ok, message: keys.summary)] : []
                return state.warnings.map { .init(check: "state", status: .warning, message: $0) } + places + keys.problems
            }
            return [
                .init(
                    check: "state", status: .ok,
                    message:
                        "the CA in \(directory.path) loads (trust domain \(state.trustDomain.name); the key matches ca-cert.pem); "
                        + keys.summary
                )
            ] + keys.problems
        } catch {
            return [.init(check: "state", status: .failure, message: "\(error)")]
        }
    }

    /// Where the signing key and a rotation's next and previous root keys live, and what is wrong with an HSM key
    /// that is extractable or not sensitive.
    private func keyFindings(_ state: CAState) -> (summary: String, problems: [DoctorReport.Finding]) {
        var lines: [String] = []
        var problems: [DoctorReport.Finding] = []
        let keys: [(String, String)] = [
            ("signing key", directory.caKeyPath), ("next root key", directory.nextRootKeyPath), ("previous root key", directory.previousRootKeyPath),
        ]
        for (role, path) in keys {
            guard let location = try? CAKeyFile.location(path) else { continue }
            switch location {
            case .file(let file):
                lines.append("\(role) in the file \(file)")
            case .pkcs11(let uri, _):
                do {
                    let protection = try PKCS11Keys.open(uri).protection()
                    lines.append("\(role) in an HSM, \(uri) (\(protection.summary))")
                    if protection.extractable || !protection.sensitive || protection.privateValueReadable {
                        problems.append(
                            .init(
                                check: "state", status: .warning,
                                message: "the \(role) \(uri) can leave its token (\(protection.summary)): whoever holds the PIN can "
                                    + "copy it. Make a new key with `meshca root prepare --key URI` (generated inside the token, "
                                    + "sensitive and not extractable) and rotate to it."))
                    }
                } catch {
                    lines.append("\(role) in an HSM, \(uri) (unreachable)")
                    problems.append(.init(check: "state", status: .failure, message: "the \(role) \(uri) cannot be used: \(error.message)"))
                }
            }
        }
        return (lines.joined(separator: "; "), problems)
    }

    private enum LedgerOpening {
        case opened(any LedgerStore)
        case failed(DoctorReport.Finding)
    }

    private func openLedger(_ ledger: (any LedgerStore)?) async -> LedgerOpening {
        if let ledger { return .opened(ledger) }
        guard ledgerLocation.exists(in: directory) else {
            return .failed(
                .init(
                    check: "database", status: .failure,
                    message: "There is no ledger at \(directory.ledgerPath), so nothing issued here can be audited "
                        + "and the ledger checks did not run. Restore ledger.db from a backup, or check --state-dir."))
        }
        do {
            var options = LedgerLocation.Options()
            options.busyTimeout = ledgerBusyTimeout
            return .opened(try await ledgerLocation.open(in: directory, options: options))
        } catch {
            return .failed(.init(check: "database", status: .failure, message: "\(error)"))
        }
    }

    private func databaseFinding(_ ledger: any LedgerStore) async -> DoctorReport.Finding {
        let health: LedgerHealth
        do {
            health = try await ledger.health()
        } catch {
            return .init(check: "database", status: .failure, message: "\(error)")
        }
        guard health.isIntact else {
            return .init(
                check: "database", status: .failure,
                message: "\(ledger.location) is damaged: its consistency check reports "
                    + health.quickCheck.prefix(5).joined(separator: "; ")
                    + ". \(ledger.evidenceAdvice.capitalizedFirst), stop meshca, and restore the ledger from "
                    + "the last backup that `meshca audit verify` accepts.")
        }
        let sizes = "\(Self.mebibytes(health.databaseBytes)), WAL \(Self.mebibytes(health.walBytes))"
        if health.walBytes > walWarningBytes {
            return .init(
                check: "database", status: .warning,
                message: "\(ledger.location)-wal has grown to \(Self.mebibytes(health.walBytes)) (the database is "
                    + "\(Self.mebibytes(health.databaseBytes))): a long-running reader (an sqlite3 shell, a backup "
                    + "tool) keeps SQLite from folding the log back. End it; the next write checkpoints the log.")
        }
        if health.schemaVersion != health.latestSchemaVersion {
            return .init(
                check: "database", status: .warning,
                message: "\(ledger.location) is at schema version \(health.schemaVersion), but this meshca writes "
                    + "version \(health.latestSchemaVersion). Reopen it with this meshca (any command migrates it).")
        }
        return .init(
            check: "database", status: .ok,
            message: ledger is SQLiteLedger
                ? "ledger.db passes quick_check, schema version \(health.schemaVersion), \(sizes)"
                : "\(ledger.location) answers, schema version \(health.schemaVersion), "
                    + Self.mebibytes(health.databaseBytes))
    }

    private func chainFinding(_ ledger: any LedgerStore) async -> DoctorReport.Finding {
        do {
            let key = try FileCheckpointSigner.existingPublicKey(
                at: FileCheckpointSigner.path(besideLedgerAt: directory.ledgerPath))
            let report = try await ledger.verifyChain(publicKey: key, progress: progress)
            guard let first = report.firstProblem else {
                return .init(
                    check: "ledger-chain", status: .ok,
                    message:
                        "ledger intact: \(report.eventCount) events, \(report.checkpoints.count) checkpoint(s) verified"
                )
            }
            return .init(
                check: "ledger-chain", status: .failure,
                message: "The ledger was changed outside meshca: \(report.problems.count) problem(s); the first: "
                    + "\(first.message) Run `meshca audit verify` for the full list, \(ledger.evidenceAdvice) as "
                    + "evidence, and see \"Ledger verification\" in docs/operations.md.")
        } catch {
            return .init(
                check: "ledger-chain", status: .failure, message: "Could not verify the ledger's chain: \(error)")
        }
    }

    private func identityFinding(total: Int) -> DoctorReport.Finding {
        let window = HumanDuration.format(self.window)
        guard total > 0 else {
            return .init(
                check: "identities", status: .ok,
                message: "no identity's newest certificate runs out within \(window) with its renewal overdue")
        }
        return .init(
            check: "identities", status: .warning,
            message: "\(total) identit\(total == 1 ? "y has" : "ies have") a newest certificate that expires within "
                + "\(window) (or expired in the last \(window)) with less than a third of its lifetime left and no "
                + "renewal recorded. Their agents are not renewing: check that each workload's agent runs and can "
                + "reach the CA (`meshca audit rejections` shows refused requests), or renew by hand with "
                + "`meshca issue`. A retired workload drops off the list \(window) after its certificate expired.")
    }

    static func mebibytes(_ bytes: Int64) -> String {
        bytes < 1 << 20 ? "\(bytes / 1024) KiB" : "\(bytes >> 20) MiB"
    }
}

extension String {
    /// The string with its first character uppercased.
    var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
}

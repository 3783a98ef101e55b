import ArgumentParser
import Foundation
import MeshCADaemon

/// `meshca doctor`: is anything about to expire, or broken?
struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check CA certificate expiry, the serving certificate, the ledger and overdue renewals.",
        discussion: """
            Checks every root (root-cert.pem, and next/ and previous/ during a root rotation), the signing CA \
            (ca-cert.pem) and cert-chain.pem for expiry; the daemon's newest serving certificate; the ledger's hash \
            chain (as `meshca audit verify`); the database file (SQLite quick_check, schema version, WAL size); and \
            identities whose newest certificate runs out within the window with its renewal overdue. Exit status: \
            0 when everything is fine, 1 when something runs out within the window (a warning), 2 when something is \
            expired, not yet valid, tampered with, corrupt or unreadable; 64 for a usage error. Run it from cron or \
            a systemd timer (see "Expiry checks" in docs/operations.md).
            """
    )

    @OptionGroup var state: StateOptions
    @OptionGroup var ledger: LedgerOptions

    @Option(
        help: ArgumentHelp(
            "Warn about anything that runs out within this duration (e.g. 30d, 72h).", valueName: "duration"))
    var failWithin: String = "30d"

    @Option(
        help: ArgumentHelp(
            "List at most N identities with overdue renewals (the total is always given).", valueName: "n"))
    var maxIdentities: Int = 20

    @Flag(help: "Print JSON (one object: status, exit_code, findings, identities; see docs/reference/json.md).")
    var json = false

    func validate() throws {
        guard maxIdentities >= 0 else {
            throw ValidationError("--max-identities must be 0 or more; got \(maxIdentities).")
        }
    }

    @OptionGroup var progress: ProgressOptions

    func run() async throws {
        var doctor = Doctor(directory: state.directory, window: try parseDuration(failWithin, flag: "--fail-within"))
        doctor.identityLimit = maxIdentities
        doctor.ledgerLocation = try ledger.location()
        let report = await doctor.examine(now: Date(), quiet: progress.quiet)
        if json {
            print(try DoctorJSON.encode(report))
        } else {
            print(Self.text(report), terminator: "")
        }
        if report.status != .ok { throw ExitCode(report.status.exitCode) }
    }

    /// The human report: one line per finding, marked `ok`, `WARN` or `FAIL`, then the overdue identities.
    static func text(_ report: DoctorReport) -> String {
        var lines = [
            "meshca doctor: \(report.directory), window \(CommandText.duration(report.window)), \(report.now.rfc3339)"
        ]
        for finding in report.findings {
            let mark =
                switch finding.status {
                case .ok: "ok    "
                case .warning: "WARN  "
                case .failure: "FAIL  "
                }
            lines.append(mark + "\(finding.check): \(finding.message)")
            if finding.check == "identities" {
                for identity in report.overdueIdentities {
                    let left = identity.notAfter.timeIntervalSince(report.now)
                    let when =
                        left >= 0
                        ? "expires \(identity.notAfter.rfc3339) (in \(CommandText.duration(.seconds(Int64(left)))))"
                        : "expired \(identity.notAfter.rfc3339) (\(CommandText.duration(.seconds(Int64(-left)))) ago)"
                    lines.append("        \(identity.spiffeID)  serial \(identity.serial)  \(when)")
                }
                if report.identitiesTotal > report.identities.count {
                    lines.append(
                        "        ... and \(report.identitiesTotal - report.identities.count) more (--max-identities N lists more)"
                    )
                }
            }
        }
        lines.append("status: \(report.status.rawValue) (exit \(report.status.exitCode))")
        return lines.map { $0 + "\n" }.joined()
    }
}

/// The stable JSON shape of `meshca doctor --json`. Field names are snake_case and never renamed; new fields
/// may be added. Times are RFC 3339 UTC strings; absent values are null.
enum DoctorJSON {
    static func encode(_ report: DoctorReport) throws -> String {
        func certificate(_ fact: CertificateFact?) -> Any {
            guard let fact else { return NSNull() }
            return [
                "role": fact.role, "source": fact.source, "fingerprint": fact.fingerprint, "subject": fact.subject,
                "not_before": fact.notBefore.rfc3339, "not_after": fact.notAfter.rfc3339,
            ] as [String: Any]
        }
        let object: [String: Any] = [
            "status": report.status.rawValue,
            "exit_code": Int(report.status.exitCode),
            "checked_at": report.now.rfc3339,
            "state_dir": report.directory,
            "window_seconds": Int(report.window.components.seconds),
            "findings": report.findings.map { finding in
                [
                    "check": finding.check, "status": finding.status.rawValue, "message": finding.message,
                    "certificate": certificate(finding.certificate),
                ] as [String: Any]
            },
            "identities": report.overdueIdentities.map { identity in
                [
                    "spiffe_id": identity.spiffeID, "serial": identity.serial, "issued_at": identity.issuedAt.rfc3339,
                    "not_after": identity.notAfter.rfc3339, "expired": identity.notAfter < report.now,
                ] as [String: Any]
            },
            "identities_total": report.identitiesTotal,
        ]
        return try JSONOutput.render(object: object)
    }
}

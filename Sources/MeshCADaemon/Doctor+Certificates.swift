import Foundation
import MeshCACore
import MeshCALedger
import X509

/// The certificate checks: every CA certificate in the state directory, and the daemon's serving certificate.
extension Doctor {
    /// One CA certificate and every role it plays (a self-signed CA's root is also its signing CA).
    struct CACertificate {
        let certificate: Certificate
        var roles: [CertificateFact]
    }

    /// The files holding CA certificates, with the role of the certificates in them. `next/` and `previous/`
    /// hold the incoming and outgoing root while a root rotation (`meshca root prepare|activate|retire`) is in
    /// progress.
    var certificateFiles: [(path: String, role: String)] {
        [
            (directory.bundlePath, "root"), (directory.nextRootCertificatePath, "root"),
            (directory.previousRootCertificatePath, "root"), (directory.caCertificatePath, "signing"),
            (directory.chainPath, "intermediate"),
        ]
    }

    /// Every distinct CA certificate in the state directory, in file order. Unreadable files are left to the
    /// `state` check (``CAState/load(from:)`` names them) or, for `next/` and `previous/`, skipped.
    func caCertificates() -> [CACertificate] {
        var found: [CACertificate] = []
        var roots = Set<String>()
        var signing = Set<String>()
        for (path, role) in certificateFiles {
            guard let data = FileManager.default.contents(atPath: path),
                let certificates = try? Certificate.parseAll(pem: String(decoding: data, as: UTF8.self))
            else { continue }
            for certificate in certificates {
                let fingerprint = certificate.sha256Fingerprint
                // cert-chain.pem runs from the signing CA up to the root; only what lies between is an intermediate.
                if role == "intermediate", roots.contains(fingerprint) || signing.contains(fingerprint) { continue }
                if role == "root" { roots.insert(fingerprint) }
                if role == "signing" { signing.insert(fingerprint) }
                let fact = CertificateFact(
                    role: role, source: path, fingerprint: fingerprint, subject: certificate.subject.description,
                    notBefore: certificate.notValidBefore, notAfter: certificate.notValidAfter)
                if let index = found.firstIndex(where: { $0.certificate == certificate }) {
                    if !found[index].roles.contains(where: { $0.role == role }) { found[index].roles.append(fact) }
                } else {
                    found.append(CACertificate(certificate: certificate, roles: [fact]))
                }
            }
        }
        return found
    }

    /// One finding per CA certificate: not yet valid, expired, expiring within the window, or fine.
    func certificateFindings(_ certificates: [CACertificate], now: Date) -> [DoctorReport.Finding] {
        let rootFingerprints = Set(
            certificates.filter { $0.roles.contains { $0.role == "root" } }.map { $0.roles[0].fingerprint })
        let isPlugin = certificates.contains { ca in
            ca.roles.contains { $0.role == "signing" } && !rootFingerprints.contains(ca.roles[0].fingerprint)
        }
        return certificates.map { ca in
            let roles = ca.roles.map(\.role)
            let primary = ca.roles[0]
            let check = roles.contains("root") ? "root" : roles.contains("signing") ? "signing-ca" : "intermediate"
            let files = Set(ca.roles.map { relativeName($0.source) }).sorted()
            var name =
                "\(check == "signing-ca" ? "signing CA" : check) \(primary.subject.isEmpty ? "(no subject)" : primary.subject) "
                + "(sha256 \(primary.fingerprint.prefix(16)), \(files.joined(separator: ", "))"
            if check == "root" && roles.contains("signing") { name += ", also the signing CA" }
            name += ")"
            let (status, message) = Self.judge(
                name: name, notBefore: primary.notBefore, notAfter: primary.notAfter, now: now, window: window)
            let expired = now > primary.notAfter
            let fix: String
            if status == .ok || now < primary.notBefore {
                fix = ""  // fine, or a clock problem the message already names
            } else if isPlugin {
                fix =
                    "This is a plug-in CA: get a renewed intermediate (and root, if it is the root that runs out) from "
                    + "the PKI that issued it, re-plug the cacerts files (ca-cert.pem, ca-key.pem, cert-chain.pem, "
                    + "root-cert.pem) into \(directory.path), and restart meshca serve."
            } else if files.contains("previous/ca-cert.pem") {
                fix =
                    "It is the previous root of a rotation: once every workload has renewed under the new root, run "
                    + "`meshca root retire`."
            } else if expired {
                fix =
                    "Make a new root (`meshca root prepare`, then `meshca root activate`) and have every workload "
                    + "renew; until then nothing this CA issues verifies."
            } else {
                fix =
                    "Rotate the root before then: `meshca root prepare` stages the next root so workloads trust both, "
                    + "then `meshca root activate`, and `meshca root retire` once every workload has renewed."
            }
            return .init(
                check: check, status: status, message: fix.isEmpty ? message : message + " " + fix,
                certificate: primary)
        }
    }

    /// The status of a validity period at `now`, and a sentence naming the exact date and the time left.
    static func judge(name: String, notBefore: Date, notAfter: Date, now: Date, window: Duration) -> (
        DoctorReport.Status, String
    ) {
        let left = notAfter.timeIntervalSince(now)
        if now < notBefore {
            return (
                .failure,
                "The \(name) is not valid until \(notBefore.formatted(.iso8601)), \(span(notBefore.timeIntervalSince(now))) "
                    + "from now: nothing it signed verifies yet. Check this machine's clock (NTP)."
            )
        }
        if left < 0 {
            return (
                .failure,
                "The \(name) expired at \(notAfter.formatted(.iso8601)), \(span(-left)) ago: certificates chaining to it no longer verify."
            )
        }
        if left <= TimeInterval(window.components.seconds) {
            return (
                .warning,
                "The \(name) expires at \(notAfter.formatted(.iso8601)), in \(span(left)), within the \(HumanDuration.format(window)) window."
            )
        }
        return (.ok, "\(name) valid until \(notAfter.formatted(.iso8601)) (\(span(left)) left)")
    }

    /// `path` relative to the state directory: `root-cert.pem`, `next/ca-cert.pem`.
    func relativeName(_ path: String) -> String {
        path.hasPrefix(directory.path + "/") ? String(path.dropFirst(directory.path.count + 1)) : path
    }

    /// A time span as `2d3h`, `5h30m`, `45s`.
    static func span(_ seconds: TimeInterval) -> String {
        HumanDuration.format(.seconds(Int64(seconds.rounded(.down))))
    }

    /// `serving-certificate`: the newest serving certificate in the ledger, and whether the daemon renews it.
    ///
    /// The daemon issues one when it starts and renews it at half its lifetime, so a serving certificate with
    /// less than a third of its lifetime left means the renewal is overdue. An expired one means the daemon is
    /// not running; that is a warning, not a failure (nothing in the state is broken, and `meshca serve` issues
    /// a fresh one when it starts), and it stops being reported once it has been expired for the whole window.
    func servingFinding(ledger: any LedgerStore, now: Date) async -> (
        finding: DoctorReport.Finding, fact: CertificateFact?
    ) {
        let record: IssuanceRecord?
        do {
            record = try await ledger.newestCertificateWithoutSPIFFEID(
                requester: Self.servingRequester, authMethod: Self.servingAuthMethod)
        } catch {
            return (
                .init(check: "serving-certificate", status: .failure, message: "Could not read the ledger: \(error)"),
                nil
            )
        }
        guard let record else {
            return (
                .init(
                    check: "serving-certificate", status: .ok,
                    message: "no serving certificate recorded: meshca serve has not run with this state directory"),
                nil
            )
        }
        let fact = CertificateFact(
            role: "serving", source: "ledger", fingerprint: Hex.sha256(record.certificateDER),
            subject: record.sans.joined(separator: ","), notBefore: record.notBefore, notAfter: record.notAfter)
        let left = record.notAfter.timeIntervalSince(now)
        let lifetime = record.notAfter.timeIntervalSince(record.issuedAt)
        let name = "daemon's serving certificate \(record.serial) (\(record.sans.joined(separator: ", ")))"
        let windowSeconds = TimeInterval(window.components.seconds)
        let status: DoctorReport.Status
        let message: String
        if left < 0 && -left > windowSeconds {
            status = .ok
            message =
                "meshca serve has not run since \(record.notAfter.formatted(.iso8601)) (its last \(name) expired \(Self.span(-left)) ago)"
        } else if left < 0 {
            status = .warning
            message =
                "The \(name) expired at \(record.notAfter.formatted(.iso8601)), \(Self.span(-left)) ago, and no "
                + "newer one was recorded: meshca serve is not running. Start it if it should be (it issues a fresh "
                + "serving certificate at start); if this state directory no longer runs a daemon, this stops being "
                + "reported \(HumanDuration.format(window)) after the expiry."
        } else if left * 3 < lifetime, left <= windowSeconds {
            status = .warning
            message =
                "The \(name) expires at \(record.notAfter.formatted(.iso8601)), in \(Self.span(left)), and was "
                + "not renewed at half its lifetime as the daemon does: is meshca serve running? Its log says "
                + "\"could not renew the serving certificate\" when renewal fails; restarting it issues a fresh one."
        } else {
            status = .ok
            message = "\(name) valid until \(record.notAfter.formatted(.iso8601)) (\(Self.span(left)) left)"
        }
        return (.init(check: "serving-certificate", status: status, message: message, certificate: fact), fact)
    }
}

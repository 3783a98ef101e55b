import Foundation
import MeshCALedger

/// What ``Doctor`` found: one finding per thing checked, plus the expiry facts the daemon also exports as
/// Prometheus gauges.
public struct DoctorReport: Sendable {
    /// How one finding (and the whole report) stands. Ordered: `ok < warning < failure`.
    public enum Status: String, Sendable, Comparable, CaseIterable {
        /// Nothing to do.
        case ok
        /// Something runs out within the window (or a renewal is overdue); act before it does.
        case warning
        /// Something is expired, not yet valid, tampered with, corrupt or unreadable; act now.
        case failure

        /// The exit status of `meshca doctor` for a report in this state: 0, 1 or 2.
        public var exitCode: Int32 {
            switch self {
            case .ok: 0
            case .warning: 1
            case .failure: 2
            }
        }

        public static func < (lhs: Status, rhs: Status) -> Bool {
            allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
        }
    }

    /// One check's result.
    public struct Finding: Sendable {
        /// The check, a stable kebab-case name: `root`, `signing-ca`, `intermediate`, `serving-certificate`,
        /// `ledger-chain`, `database`, `identities`, `state`.
        public let check: String
        /// How it stands.
        public let status: Status
        /// What was found and, unless `status` is ok, what to do.
        public let message: String
        /// The certificate the finding is about, when it is about one.
        public let certificate: CertificateFact?

        /// Creates a finding.
        public init(check: String, status: Status, message: String, certificate: CertificateFact? = nil) {
            self.check = check
            self.status = status
            self.message = message
            self.certificate = certificate
        }
    }

    /// When the report was made.
    public let now: Date
    /// The window: anything running out before `now + window` is a warning.
    public let window: Duration
    /// The state directory examined.
    public let directory: String
    /// Every finding, in the order the checks ran.
    public let findings: [Finding]
    /// Identities whose renewal is overdue (at most the doctor's `identityLimit`), soonest expiry first.
    public let identities: [ExpiringIdentity]
    /// How many identities are overdue in all (may exceed `identities.count`).
    public let identitiesTotal: Int

    /// Creates a report.
    public init(
        now: Date, window: Duration, directory: String, findings: [Finding], identities: [ExpiringIdentity],
        identitiesTotal: Int
    ) {
        self.now = now
        self.window = window
        self.directory = directory
        self.findings = findings
        self.identities = identities
        self.identitiesTotal = identitiesTotal
    }

    /// The worst status of any finding (ok when there are none).
    public var status: Status { findings.map(\.status).max() ?? .ok }
}

/// One certificate's expiry, as reported by ``Doctor`` and exported by ``CAMetrics/publish(_:)``.
public struct CertificateFact: Sendable, Equatable {
    /// Its role: `root`, `intermediate`, `signing` or `serving`.
    public let role: String
    /// Where it was read from (a path), or `ledger` for the serving certificate.
    public let source: String
    /// Lowercase hex SHA-256 of its DER.
    public let fingerprint: String
    /// Its subject, as text.
    public let subject: String
    /// The start of its validity.
    public let notBefore: Date
    /// The end of its validity.
    public let notAfter: Date

    /// Creates a fact.
    public init(role: String, source: String, fingerprint: String, subject: String, notBefore: Date, notAfter: Date) {
        self.role = role
        self.source = source
        self.fingerprint = fingerprint
        self.subject = subject
        self.notBefore = notBefore
        self.notAfter = notAfter
    }
}

/// The expiry facts of a CA at one moment: what ``CAMetrics/publish(_:)`` exports and ``Doctor`` judges.
public struct ExpiryFacts: Sendable {
    /// Every CA certificate found (roots, the signing CA, intermediates) and the newest serving certificate,
    /// one entry per role a certificate plays (a self-signed CA's root is also its signing CA).
    public var certificates: [CertificateFact]
    /// How many identities have an overdue renewal within the window (see
    /// `LedgerStore.expiringIdentities`); nil when the ledger could not be read.
    public var expiringIdentities: Int?

    /// Creates facts.
    public init(certificates: [CertificateFact], expiringIdentities: Int?) {
        self.certificates = certificates
        self.expiringIdentities = expiringIdentities
    }
}

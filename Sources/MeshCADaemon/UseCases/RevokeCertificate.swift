import Foundation
import MeshCACore
import MeshCAIO
import MeshCALedger
import X509

/// A CRL the CA signed and wrote to `crl.pem` in the state directory.
public struct PublishedCRL: Sendable {
    /// Its cRLNumber.
    public let number: Int64
    /// How many certificates it lists.
    public let entries: Int
    public let thisUpdate: Date
    public let nextUpdate: Date
    /// The file it was written to (`crl.pem` in the state directory).
    public let path: String
    /// The CRL as one PEM block, ending in a newline.
    public let pem: String

    init(_ crl: CertificateRevocationList, path: String) {
        number = crl.number
        entries = crl.entries.count
        thisUpdate = crl.thisUpdate
        nextUpdate = crl.nextUpdate
        self.path = path
        pem = crl.pem
    }
}

/// `meshca revoke`: records a revocation in the ledger, then re-signs the CRLs in the state directory.
public struct RevokeCertificate: Sendable {
    /// What was revoked and the CRLs written.
    public struct Revoked: Sendable {
        public let serial: String
        /// Its SPIFFE ID; empty for a CA serving certificate or intermediate.
        public let spiffeID: String
        /// The SPIFFE ID, or what kind of certificate it is when it has none.
        public let identity: String
        /// The SHA-256 of the CA certificate that issued it.
        public let issuerFingerprint: String
        /// The RFC 5280 CRLReason name.
        public let reason: String
        public let at: Date
        /// The CRLs now in `crl.pem` (the signing CA's, and during a rotation the old root's).
        public let crls: [PublishedCRL]
        /// False when the certificate's issuer is a CA whose key meshca no longer holds, so no CRL can list it
        /// (renewals with it are refused all the same).
        public let listed: Bool
    }

    public let directory: StateDirectory
    /// Where the ledger is (`--ledger`).
    public let ledger: LedgerLocation

    public init(directory: StateDirectory, ledger: LedgerLocation) {
        self.directory = directory
        self.ledger = ledger
    }

    /// The RFC 5280 CRLReason names `run` takes.
    public static var reasonNames: [String] { RevocationReason.allCases.map(\.rawValue) }

    /// Checks a `--reason`; throws ``CAError`` `invalid-argument` for a name that is not a CRLReason.
    public static func checkReason(_ text: String) throws {
        do {
            _ = try RevocationReason(parsing: text)
        } catch let error as IssuanceError {
            throw CommandInput.invalidArgument(error.message)
        }
    }

    /// Whether `text` reads as a serial number (hex, any case, colons allowed).
    public static func isSerialNumber(_ text: String) -> Bool {
        SerialNumberText.normalize(text) != nil
    }

    /// Revokes the certificate with `serial` (hex, any case, colons allowed) for `reason` (a CRLReason name) as
    /// of `now`.
    ///
    /// - Throws: ``DaemonError`` `unknown-serial` when the ledger has no such certificate, `already-revoked`
    ///   when it was revoked before (nothing changes: revocations are final).
    public func run(serial: String, reason: String, now: Date) async throws -> Revoked {
        let reason = try RevocationReason(parsing: reason)
        return try await ledger.withExistingLedger(in: directory) { ledger in
            let ca = try CAState.load(from: directory)
            switch try await ledger.revoke(serial: serial, reason: reason.rawValue, at: now) {
            case .unknownSerial:
                throw DaemonError(
                    .unknownSerial,
                    "No certificate with serial \(serial.escapedForLog) in the ledger at \(directory.ledgerPath); nothing was revoked. "
                        + "Find the serial with `meshca audit list` (e.g. `meshca audit list --sa NAME --ns NAMESPACE`).")
            case .alreadyRevoked(let record):
                throw DaemonError(
                    .alreadyRevoked,
                    "Certificate \(record.serial) (\(Self.identity(of: record))) was already revoked at "
                        + "\(record.revokedAt?.formatted(.iso8601) ?? "an unknown time") (reason: \(record.revocationReason ?? "unspecified")); "
                        + "nothing changed. Revocations are final, so its time and reason stay as first recorded.")
            case .revoked(let record):
                let crls = try await CRLPublisher(directory: directory, ledger: ledger).publishAll(for: ca.signer, at: now)
                let listed = crls.contains { $0.entries.contains { Hex.encode($0.serialNumber.bytes) == record.serial } }
                return Revoked(
                    serial: record.serial, spiffeID: record.spiffeID, identity: Self.identity(of: record),
                    issuerFingerprint: record.issuerFingerprint, reason: reason.rawValue, at: now,
                    crls: crls.map { PublishedCRL($0, path: directory.crlPath) }, listed: listed)
            }
        }
    }

    /// The record's SPIFFE ID, or what kind of certificate it is when it has none.
    static func identity(of record: IssuanceRecord) -> String {
        record.spiffeID.isEmpty ? "no SPIFFE ID: a CA serving certificate or intermediate" : record.spiffeID
    }
}

/// `meshca crl`: signs fresh CRLs of the CA in a state directory now and writes them to its `crl.pem`.
public struct PublishCRL: Sendable {
    public let directory: StateDirectory
    /// Where the ledger is (`--ledger`).
    public let ledger: LedgerLocation
    /// Another file to write the PEM to, if any.
    public var out: String?

    public init(directory: StateDirectory, ledger: LedgerLocation) {
        self.directory = directory
        self.ledger = ledger
    }

    /// The CRLs signed as of `now`: the signing CA's, and during a root rotation's overlap the old root's after it.
    public func run(now: Date) async throws -> [PublishedCRL] {
        let ca = try CAState.load(from: directory)
        let crls = try await ledger.withExistingLedger(in: directory) {
            try await CRLPublisher(directory: directory, ledger: $0).publishAll(for: ca.signer, at: now)
        }
        if let out { try AtomicFile.write(crls.map(\.pem).joined(), to: FilePaths.absolute(out), mode: 0o644) }
        return crls.map { PublishedCRL($0, path: directory.crlPath) }
    }
}

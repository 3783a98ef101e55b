import Foundation
import MeshCACore
import MeshCAIO
import MeshCALedger
import X509

/// `meshca revoke`: records a revocation in the ledger, then re-signs the CRLs in the state directory.
public struct RevokeCertificate: Sendable {
    /// What was revoked and the CRLs written.
    public struct Revoked: Sendable {
        public let record: IssuanceRecord
        public let reason: RevocationReason
        public let at: Date
        /// The CRLs now in `crl.pem` (the signing CA's, and during a rotation the old root's).
        public let crls: [CertificateRevocationList]
        /// False when the certificate's issuer is a CA whose key meshca no longer holds, so no CRL can list it
        /// (renewals with it are refused all the same).
        public let listed: Bool
    }

    public let directory: StateDirectory
    public let ledger: any LedgerStore

    public init(directory: StateDirectory, ledger: any LedgerStore) {
        self.directory = directory
        self.ledger = ledger
    }

    /// Revokes the certificate with `serial` (hex, any case, colons allowed) for `reason` as of `now`.
    ///
    /// - Throws: ``DaemonError`` `unknown-serial` when the ledger has no such certificate, `already-revoked`
    ///   when it was revoked before (nothing changes: revocations are final).
    public func run(serial: String, reason: RevocationReason, now: Date) async throws -> Revoked {
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
            return Revoked(record: record, reason: reason, at: now, crls: crls, listed: listed)
        }
    }

    /// The record's SPIFFE ID, or what kind of certificate it is when it has none.
    public static func identity(of record: IssuanceRecord) -> String {
        record.spiffeID.isEmpty ? "no SPIFFE ID: a CA serving certificate or intermediate" : record.spiffeID
    }
}

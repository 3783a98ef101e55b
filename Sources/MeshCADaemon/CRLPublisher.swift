import Foundation
import MeshCACore
import MeshCAIO
import MeshCALedger
import SwiftASN1
import X509

/// Signs the CRL of a CA from the ledger and writes it to the state directory's `crl.pem`.
///
/// The CRL is a function of (signing identity, ledger): it lists every unexpired certificate the ledger records
/// as issued by that CA (by fingerprint) and revoked. So it can be called for more than one CA, e.g. during a
/// root rotation; the state directory's `crl.pem` holds the one for the CA that signs now.
///
/// cRLNumber: `max(previous + 1, thisUpdate in Unix seconds)`, where previous is the number of the `crl.pem`
/// already in the directory, read and replaced under the directory lock. The `meshca revoke` CLI and the daemon
/// both write the file, so the number keeps increasing across both processes, and it stays monotonic even when
/// the file is deleted (the clock has moved on) or the clock steps back (the file remembers).
public struct CRLPublisher: Sendable {
    /// How long a CRL is valid: its `nextUpdate` is this long after `thisUpdate`.
    public static let validity: Duration = .seconds(24 * 3600)
    /// How often `meshca serve` signs a fresh CRL even when nothing was revoked, well before `nextUpdate`.
    public static let refreshInterval: Duration = .seconds(12 * 3600)

    /// The directory whose `crl.pem` is written.
    public let directory: StateDirectory
    /// Where revocations are recorded.
    public let ledger: any IssuanceLedger
    /// Whether `crl.pem` is written. False for a read-only state directory (a Kubernetes Secret shared by
    /// replicas): the CRLs are then only signed and returned (the daemon serves them at `/crl`), numbered by the
    /// clock alone.
    public let writesFile: Bool

    /// A publisher for the CA in `directory`, reading `ledger`; `writesFile` false signs without writing `crl.pem`.
    public init(directory: StateDirectory, ledger: any IssuanceLedger, writesFile: Bool = true) {
        self.directory = directory
        self.ledger = ledger
        self.writesFile = writesFile
    }

    /// The CRL entries for `signer` as of `now`: its revoked, unexpired certificates from the ledger.
    public func entries(for signer: SigningIdentity, at now: Date) async throws -> [CertificateRevocationList.Entry] {
        let revoked = try await ledger.revokedCertificates(
            issuerFingerprint: signer.certificate.sha256Fingerprint, notExpiredAt: now)
        return revoked.compactMap { record in
            // The ledger only stores serials that are hex (it refuses others), so this drops nothing.
            guard let serial = Certificate.SerialNumber(hex: record.serial) else { return nil }
            return .init(
                serialNumber: serial, revocationDate: record.revokedAt,
                reason: record.reason.flatMap(RevocationReason.init(rawValue:)) ?? .unspecified)
        }
    }

    /// Signs the CRL of `signer` as of `now` (valid for ``validity``) and replaces `crl.pem` with it (atomically,
    /// mode 0644); returns it. During a root rotation's overlap (after `meshca root activate`, before `retire`)
    /// `crl.pem` also holds the old root's CRL, signed with its key in `previous/`; see ``publishAll(for:at:)``.
    ///
    /// Throws `DaemonError` when the file cannot be written and `IssuanceError` when the CA cannot sign.
    @discardableResult
    public func publish(for signer: SigningIdentity, at now: Date) async throws -> CertificateRevocationList {
        try await publishAll(for: signer, at: now)[0]
    }

    /// Signs the CRL of `signer` and, while a rotated-out root still has its key in `previous/`, that root's CRL
    /// too (so a certificate it issued and that was revoked is listed by the CA that issued it); writes them all
    /// to `crl.pem`, `signer`'s first, and returns them in that order. Both carry the same cRLNumber.
    public func publishAll(for signer: SigningIdentity, at now: Date) async throws -> [CertificateRevocationList] {
        let directory = self.directory
        let previous = try await StateDirectory.offCooperativePool { Self.previousRoot(in: directory, besides: signer) }
        var lists: [(SigningIdentity, [CertificateRevocationList.Entry])] = [(signer, try await entries(for: signer, at: now))]
        if let previous { lists.append((previous, try await entries(for: previous, at: now))) }
        let signed = lists
        let validity = TimeInterval(Self.validity.components.seconds)
        guard writesFile else {
            let number = Int64(now.timeIntervalSince1970.rounded(.down))
            return try signed.map { issuer, entries in
                try CertificateRevocationList.sign(
                    entries: entries, issuer: issuer, number: number, thisUpdate: now, nextUpdate: now.addingTimeInterval(validity))
            }
        }
        // Numbered, signed and written under the directory lock, so a concurrent `meshca revoke` and the daemon
        // never write the same number, nor a lower one after a higher.
        return try await StateDirectory.offCooperativePool {
            try directory.withLock {
                let number = max(
                    (Self.currentNumber(in: directory) ?? -1) + 1, Int64(now.timeIntervalSince1970.rounded(.down)))
                let crls = try signed.map { issuer, entries in
                    try CertificateRevocationList.sign(
                        entries: entries, issuer: issuer, number: number, thisUpdate: now, nextUpdate: now.addingTimeInterval(validity))
                }
                try AtomicFile.write(crls.map(\.pem).joined(), to: directory.crlPath, mode: 0o644)
                return crls
            }
        }
    }

    /// The rotated-out root kept in `previous/` with its key (between `meshca root activate` and `retire`), when
    /// it is not `signer` itself; nil otherwise or when its files do not load.
    static func previousRoot(in directory: StateDirectory, besides signer: SigningIdentity) -> SigningIdentity? {
        guard let certificate = StateDirectory.certificate(at: directory.previousRootCertificatePath),
            certificate != signer.certificate,
            let key = (try? CAKeyFile.load(directory.previousRootKeyPath))?.key
        else { return nil }
        return try? SigningIdentity(certificate: certificate, privateKey: key, bundle: [certificate])
    }

    /// The cRLNumber of the `crl.pem` in `directory`, or nil when there is none or it cannot be read.
    static func currentNumber(in directory: StateDirectory) -> Int64? {
        guard let data = FileManager.default.contents(atPath: directory.crlPath) else { return nil }
        return (try? CertificateRevocationList(pemEncoded: String(decoding: data, as: UTF8.self)))?.number
    }
}

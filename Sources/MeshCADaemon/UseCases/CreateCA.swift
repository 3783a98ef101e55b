import Foundation
import MeshCACore
import MeshCAIO
import MeshCALedger
import X509

/// `meshca init`: creates a CA in a state directory (a self-signed root, or a plug-in CA imported from Istio's
/// `cacerts` layout), its ledger and the key that signs the ledger's checkpoints.
public struct CreateCA: Sendable {
    /// A CA certificate as `meshca init` shows it.
    public struct CertificateSummary: Sendable {
        public let subject: String
        public let sha256: String
        /// nil for a key type meshca does not accept.
        public let keyType: String?
        public let notAfter: Date

        init(_ certificate: Certificate) {
            subject = "\(certificate.subject)"
            sha256 = certificate.sha256Fingerprint
            keyType = KeyType.of(certificate.publicKey)
            notAfter = certificate.notValidAfter
        }
    }

    /// The CA created.
    public struct Created: Sendable {
        public let trustDomain: String
        public let stateDir: String
        /// The signing CA: the new root, or the imported plug-in CA.
        public let ca: CertificateSummary
        /// Intermediates above the signing CA.
        public let intermediates: Int
        public let roots: [CertificateSummary]
        /// Where the signing key lives ("file PATH" or "HSM pkcs11:...").
        public let keyLocation: String?
        /// The plug-in CA's directory, absolute, when one was imported.
        public let importedFrom: String?
        /// The state directory's `root-cert.pem` and `ledger.db` paths.
        public let bundlePath: String
        public let ledgerPath: String
        /// Where the ledger is: `ledgerPath`, or the PostgreSQL URL.
        public let ledger: String
    }

    public let directory: StateDirectory
    public let options: CAState.Options
    /// A directory in Istio's `cacerts` layout to import instead of creating a root.
    public var pluginCA: String?
    /// Where the ledger is (`--ledger`).
    public var ledger: LedgerLocation = .stateDirectory

    public init(directory: StateDirectory, options: CAState.Options) {
        self.directory = directory
        self.options = options
    }

    /// Creates the CA as of `now`. A PostgreSQL ledger is opened (its schema applied) first, so no CA files are
    /// left behind when it cannot be reached.
    public func run(now: Date) async throws -> Created {
        if case .postgres = ledger {
            try await ledger.withLedger(in: directory) { _ in }
        }
        let ca: CAState
        var importedFrom: String?
        if let pluginCA {
            let source = FilePaths.absolute(pluginCA)
            ca = try await CAState.importPlugin(from: source, into: directory, trustDomain: options.trustDomain, hsmKey: options.hsmKey, now: now)
            importedFrom = source
        } else {
            ca = try CAState.create(in: directory, options: options, now: now)
        }
        // The ledger (a PostgreSQL one was opened above) and the key that signs its checkpoints, so a copy of the
        // directory (a Kubernetes Secret that several replicas mount read-only) has everything the daemon reads.
        if ledger == .stateDirectory { _ = try SQLiteLedger(path: directory.ledgerPath) }
        _ = try FileCheckpointSigner(besideLedgerAt: directory.ledgerPath)
        return Created(
            trustDomain: ca.trustDomain.name, stateDir: directory.path, ca: CertificateSummary(ca.signer.certificate),
            intermediates: ca.signer.intermediates.count, roots: ca.signer.bundle.map(CertificateSummary.init),
            keyLocation: ca.keyLocation?.description, importedFrom: importedFrom, bundlePath: directory.bundlePath,
            ledgerPath: directory.ledgerPath, ledger: ledger == .stateDirectory ? directory.ledgerPath : ledger.description)
    }
}

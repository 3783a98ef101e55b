import Foundation
import MeshCACore
import MeshCAIO
import MeshCALedger
import MeshCAPKCS11
import X509

/// `meshca intermediate create`: an intermediate CA signed by the CA in a state directory, recorded in its ledger
/// before anything is written, then written in Istio's `cacerts` layout (`ca-cert.pem`, `ca-key.pem` 0600,
/// `cert-chain.pem`, `root-cert.pem`). With an HSM key, `ca-key.pkcs11` (its PKCS#11 URI) replaces `ca-key.pem`.
public struct IntermediateCreate: Sendable {
    /// What was created.
    public struct Created: Sendable {
        public let subject: String
        public let serial: String
        public let notAfter: Date
        /// The directory holding the four files.
        public let directory: String
        /// `ca-key.pem`, or `ca-key.pkcs11` for a key in an HSM.
        public let keyFile: String
        /// The key's PKCS#11 URI when it lives in an HSM.
        public let hsmKey: String?
    }

    public let directory: StateDirectory
    public let commonName: String
    public let ttl: Duration
    public let keyType: KeyType
    /// Where the intermediate's key lives: generated in memory and written to `ca-key.pem` when nil, else this
    /// key in a hardware security module (generated inside the token when it holds none).
    public let hsmKey: PKCS11URI?
    /// Where the four files go (created when missing).
    public let out: String
    public let requester: Requester
    /// Where the ledger is (`--ledger`); the state directory's `ledger.db` by default.
    public var ledger: LedgerLocation = .stateDirectory

    public init(
        directory: StateDirectory, commonName: String, ttl: Duration, keyType: KeyType, hsmKey: PKCS11URI? = nil, out: String,
        requester: Requester
    ) {
        self.directory = directory
        self.commonName = commonName
        self.ttl = ttl
        self.keyType = keyType
        self.hsmKey = hsmKey
        self.out = out
        self.requester = requester
    }

    /// Creates the intermediate as of `now`; `notice` gets a line for each thing the operator should know.
    public func run(now: Date, notice: (String) -> Void) async throws -> Created {
        let ca = try CAState.forCommand(in: directory, now: now, notice: notice)
        let authority = CertificateAuthority(trustDomain: ca.trustDomain, signer: ca.signer)
        let (key, hsm) = try CAState.makeKey(keyType, hsm: hsmKey)
        guard key.publicKey != ca.signer.certificate.publicKey else {
            throw IssuanceError(
                .invalidSigner, "--key names the key of this CA itself; an intermediate needs its own key (another object= label).")
        }
        let certificate = try authority.issueIntermediate(publicKey: key.publicKey, commonName: commonName, ttl: ttl, at: now)
        let output = FilePaths.absolute(out)
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        // Like every certificate that leaves the CA, the intermediate is recorded before it is written out.
        try await ledger.withLedger(in: directory) {
            try await $0.record(
                IssuanceRecord(
                    certificate: certificate, trustDomain: ca.trustDomain, issuedAt: now, requestedTTL: ttl,
                    issuer: ca.signer.certificate, requester: requester))
        }
        let signer = ca.signer
        // A key in an HSM is recorded as its PKCS#11 URI in ca-key.pkcs11 (which `meshca init --plugin-ca` reads).
        try CAKeyFile.write(try CAKeyFile.record(of: key, hsm: hsm), for: output + "/ca-key.pem")
        try AtomicFile.write(certificate.pem, to: output + "/ca-cert.pem", mode: 0o644)
        try AtomicFile.write(
            ([certificate] + signer.chainAboveLeaf + signer.bundle).map(\.pem).joined(), to: output + "/cert-chain.pem", mode: 0o644)
        try AtomicFile.write(signer.bundle.map(\.pem).joined(), to: output + "/root-cert.pem", mode: 0o644)
        return Created(
            subject: "\(certificate.subject)", serial: certificate.serialHex, notAfter: certificate.notValidAfter, directory: output,
            keyFile: hsm == nil ? "ca-key.pem" : "ca-key.pkcs11", hsmKey: hsm.map { $0.uri.description })
    }
}

import Foundation
import MeshCACore
import MeshCAIO
import MeshCALedger
import SwiftASN1
import X509

extension IssuanceService {
    /// The one composition of an issuance path: `state`'s CA under `policy`, recording in `ledger`. The daemon
    /// and `meshca issue` (without `--server`) both issue through it.
    public init(state: CAState, ledger: any IssuanceLedger, policy: IssuancePolicy = .standard, retryWindow: Duration = .zero) {
        self.init(
            authority: CertificateAuthority(trustDomain: state.trustDomain, signer: state.signer, policy: policy),
            ledger: ledger, retryWindow: retryWindow)
    }
}

/// What `meshca issue` wrote: the certificate's facts and the three files.
public struct IssuedCredentials: Sendable {
    public let spiffeID: String
    public let serial: String
    public let notBefore: Date
    public let notAfter: Date
    /// The key type's name (`ec-p256`, ...).
    public let keyType: String
    /// The directory holding `cert-chain.pem`, `key.pem` (0600) and `root-cert.pem`.
    public let directory: String
    public var certChainPath: String { "\(directory)/\(CredentialFiles.chainFile)" }
    public var keyPath: String { "\(directory)/\(CredentialFiles.keyFile)" }
    public var rootCertPath: String { "\(directory)/\(CredentialFiles.bundleFile)" }

    /// The facts of `leaf`, issued with a `keyType` key and written to `directory`.
    public init(leaf: Certificate, keyType: KeyType, directory: String) {
        spiffeID = leaf.uriSANs.first ?? ""
        serial = leaf.serialHex
        notBefore = leaf.notValidBefore
        notAfter = leaf.notValidAfter
        self.keyType = keyType.rawValue
        self.directory = directory
    }
}

/// `meshca issue` on the CA host: a fresh key, a CSR, and a certificate from the CA in a state directory, through
/// the same checks, signing and ledger record as a request to the daemon; then Istio's three files.
public struct LocalIssue: Sendable {
    public let directory: StateDirectory
    public let namespace: String
    public let serviceAccount: String
    public let requestedTTL: Duration
    public let keyType: KeyType
    /// Where the three files go (absolute, or relative to the working directory).
    public let out: String
    /// Who asked, as the ledger records it.
    public let requester: Requester
    /// Where the ledger is (`--ledger`); the state directory's `ledger.db` by default.
    public var ledger: LedgerLocation = .stateDirectory

    public init(
        directory: StateDirectory, namespace: String, serviceAccount: String, requestedTTL: Duration, keyType: KeyType,
        out: String, requester: Requester
    ) {
        self.directory = directory
        self.namespace = namespace
        self.serviceAccount = serviceAccount
        self.requestedTTL = requestedTTL
        self.keyType = keyType
        self.out = out
        self.requester = requester
    }

    /// Issues as of `now`. `notice` gets one line for each thing the operator should know (a CA created because
    /// there was none, a warning about the CA files).
    public func run(now: Date, notice: (String) -> Void) async throws -> IssuedCredentials {
        if !directory.hasCA {
            // Refuse before creating a CA: a failed command leaves nothing behind. (With a CA, the refusal is
            // recorded in its ledger like any other.)
            _ = try IssuancePolicy.standard.grantedTTL(forRequested: requestedTTL)
        }
        let ca = try CAState.forCommand(in: directory, now: now, notice: notice)
        let identity = try SPIFFEID(trustDomain: ca.trustDomain, namespace: namespace, serviceAccount: serviceAccount)
        let key = try keyType.generate()
        let issuance = try await ledger.withLedger(in: directory) {
            try await IssuanceService(state: ca, ledger: $0).issue(
                IssuanceRequest(
                    csrPEM: try WorkloadCSR.pem(WorkloadCSR.make(for: identity, key: key)), identity: identity,
                    requestedTTL: requestedTTL),
                requester: requester, at: now)
        }
        let output = FilePaths.absolute(out)
        try CredentialFiles.write(
            to: output, certChainPEM: issuance.certChainPEM, keyPEM: try key.serializeAsPEM().pemString + "\n",
            bundlePEM: issuance.bundlePEM)
        return IssuedCredentials(leaf: issuance.certificate, keyType: keyType, directory: output)
    }
}

import Foundation
import MeshCACore
import MeshCALedger
import X509

/// `meshca token create`: a single- or multi-use join token for one identity. Only the secret's hash is stored;
/// the token carries the SHA-256 of the root the daemon's serving certificate chains to, so its holder can verify
/// the CA it connects to.
public struct CreateJoinToken: Sendable {
    /// The token made, and what it stands for.
    public struct Created: Sendable {
        /// The bearer credential (`mct1.<id>.<secret>`), shown once.
        public let encoded: String
        public let id: String
        public let spiffeID: String
        public let uses: Int
        public let expiresAt: Date
        public let pinnedRootSHA256: String
    }

    public let directory: StateDirectory
    public let namespace: String
    public let serviceAccount: String
    public let ttl: Duration
    public let uses: Int
    public let requester: Requester
    /// Where the ledger is (`--ledger`); the state directory's `ledger.db` by default.
    public var ledger: LedgerLocation = .stateDirectory

    public init(directory: StateDirectory, namespace: String, serviceAccount: String, ttl: Duration, uses: Int, requester: Requester) {
        self.directory = directory
        self.namespace = namespace
        self.serviceAccount = serviceAccount
        self.ttl = ttl
        self.uses = uses
        self.requester = requester
    }

    /// Creates the token as of `now`; `notice` gets a line for each thing the operator should know.
    public func run(now: Date, notice: (String) -> Void) async throws -> Created {
        let ca = try CAState.forCommand(in: directory, now: now, notice: notice)
        let identity = try SPIFFEID(trustDomain: ca.trustDomain, namespace: namespace, serviceAccount: serviceAccount)
        // During a root rotation the bundle holds two roots; the token pins the one that signs.
        let root = ca.signer.anchor.sha256Fingerprint
        let token = JoinToken.generate(rootFingerprint: root)
        let expires = now.addingTimeInterval(TimeInterval(ttl.components.seconds))
        try await ledger.withLedger(in: directory) {
            try await $0.createToken(
                JoinTokenRecord(
                    id: token.id, secretSHA256: token.secretSHA256, namespace: namespace, serviceAccount: serviceAccount,
                    createdAt: now, expiresAt: expires, maxUses: uses, createdBy: requester.name, pinnedRootSHA256: root))
        }
        return Created(encoded: token.encoded, id: token.id, spiffeID: identity.uri, uses: uses, expiresAt: expires, pinnedRootSHA256: root)
    }
}

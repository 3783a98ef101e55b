import Foundation
import MeshCALedger

/// `meshca token list` and `meshca token revoke`: the join tokens in the ledger of the CA in a state directory.
public struct JoinTokens: Sendable {
    /// One token as the ledger holds it (never its secret).
    public struct Summary: Sendable {
        public let id: String
        public let namespace: String
        public let serviceAccount: String
        public let createdAt: Date
        public let expiresAt: Date
        public let uses: Int
        public let maxUses: Int
        /// `active`, `expired`, `used-up` or `revoked`, as of the time asked.
        public let state: String
        public let createdBy: String
        /// The root the token pins; nil for a token made before tokens carried one.
        public let pinnedRootSHA256: String?
    }

    public let directory: StateDirectory
    /// Where the ledger is (`--ledger`).
    public let ledger: LedgerLocation

    public init(directory: StateDirectory, ledger: LedgerLocation) {
        self.directory = directory
        self.ledger = ledger
    }

    /// Every token, with its state as of `now`.
    public func list(now: Date) async throws -> [Summary] {
        try await ledger.withExistingLedger(in: directory) { try await $0.tokens() }.map {
            Summary(
                id: $0.id, namespace: $0.namespace, serviceAccount: $0.serviceAccount, createdAt: $0.createdAt,
                expiresAt: $0.expiresAt, uses: $0.uses, maxUses: $0.maxUses, state: $0.state(at: now).rawValue,
                createdBy: $0.createdBy, pinnedRootSHA256: $0.pinnedRootSHA256)
        }
    }

    /// Revokes the active token with `id` (hex, either case) as of `now`.
    /// - Throws: ``CAError`` `unknown-token` when there is no such active token.
    public func revoke(id: String, now: Date) async throws {
        guard try await ledger.withExistingLedger(in: directory, { try await $0.revokeToken(id: id.lowercased(), at: now) }) else {
            throw CAError(.unknownToken, "No active token with id \(id). See `meshca token list`.")
        }
    }
}

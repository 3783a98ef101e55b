import Foundation
import MeshCAIO
import MeshCALedger
import Synchronization

/// An ``IssuanceLedger`` held in memory, for tests of what sits around the ledger (the issuance service, the
/// caller authenticator, the serving certificate's renewal) that need a ledger but are not testing it. It keeps
/// the contract the ledger tests check on SQLite: a duplicate serial and a spent, expired, revoked or unknown
/// token are refused and change nothing; a revocation happens once; queries filter and order as documented.
/// It has no hash chain and no durability; tests of those use `SQLiteLedger`.
public final class MemoryLedger: IssuanceLedger {
    private struct State {
        var issuances: [IssuanceRecord] = []
        var rejections: [RejectionRecord] = []
        var tokens: [JoinTokenRecord] = []
        /// The number of events appended (issuances, revocations), and the event numbers of revocations.
        var events: Int64 = 0
        var revocationEvents: [Int64] = []
    }

    private let state = Mutex(State())

    /// An empty ledger.
    public init() {}

    /// Every issuance recorded, oldest first.
    public var allIssuances: [IssuanceRecord] { state.withLock { $0.issuances } }

    public func record(_ issuance: IssuanceRecord, consuming token: TokenUse?) async throws {
        try state.withLock { state in
            guard !state.issuances.contains(where: { $0.serial == issuance.serial }) else {
                throw LedgerError(code: .duplicateSerial, message: "serial \(issuance.serial) is already recorded")
            }
            if let token {
                guard let index = state.tokens.firstIndex(where: { $0.id == token.id && $0.secretSHA256 == token.secretSHA256 }) else {
                    throw LedgerError(code: .tokenRejected, message: "unknown join token or wrong secret")
                }
                let record = state.tokens[index]
                if record.revokedAt != nil { throw LedgerError(code: .tokenRejected, message: "the join token was revoked") }
                if record.expiresAt <= token.at { throw LedgerError(code: .tokenRejected, message: "the join token expired") }
                if record.uses >= record.maxUses { throw LedgerError(code: .tokenRejected, message: "the join token is used up") }
                state.tokens[index].uses += 1
                state.tokens[index].lastUsedAt = token.at
            }
            state.issuances.append(issuance)
            state.events += 1
        }
    }

    public func record(_ rejection: RejectionRecord) async throws {
        state.withLock { state in
            var rejection = rejection
            rejection.id = Int64(state.rejections.count + 1)
            state.rejections.append(rejection)
        }
    }

    public func issuances(matching query: IssuanceQuery) async throws -> [IssuanceRecord] {
        let all = state.withLock { $0.issuances }
        let matching = all.filter { record in
            if let namespace = query.namespace, record.namespace != namespace { return false }
            if let serviceAccount = query.serviceAccount, record.serviceAccount != serviceAccount { return false }
            if let prefix = query.serialPrefix, !record.serial.hasPrefix(prefix.lowercased()) { return false }
            if let since = query.issuedSince, record.issuedAt < since { return false }
            if let within = query.expiringWithin {
                guard record.notAfter > query.now, record.notAfter <= query.now.addingTimeInterval(within.seconds) else { return false }
            }
            if let status = query.status, record.status(at: query.now) != status { return false }
            return true
        }
        .sorted { ($0.issuedAt, $0.serial) < ($1.issuedAt, $1.serial) }
        guard let limit = query.limit else { return matching }
        return Array(matching.suffix(max(0, limit)))
    }

    public func rejections(since: Date?, limit: Int?) async throws -> [RejectionRecord] {
        let all = state.withLock { $0.rejections }.filter { since == nil || $0.occurredAt >= since! }
        guard let limit else { return all }
        return Array(all.suffix(max(0, limit)))
    }

    public func createToken(_ token: JoinTokenRecord) async throws {
        try state.withLock { state in
            guard !state.tokens.contains(where: { $0.id == token.id }) else {
                throw LedgerError(code: .duplicateToken, message: "join token \(token.id) is already recorded")
            }
            guard token.maxUses >= 1 else { throw LedgerError(code: .other, message: "maxUses must be at least 1") }
            state.tokens.append(token)
        }
    }

    public func token(id: String) async throws -> JoinTokenRecord? {
        state.withLock { $0.tokens.first { $0.id == id } }
    }

    public func tokens() async throws -> [JoinTokenRecord] {
        state.withLock { $0.tokens }
    }

    public func revokeToken(id: String, at: Date) async throws -> Bool {
        state.withLock { state in
            guard let index = state.tokens.firstIndex(where: { $0.id == id }), state.tokens[index].revokedAt == nil else { return false }
            state.tokens[index].revokedAt = at
            return true
        }
    }

    public func revoke(serial: String, reason: String, at: Date) async throws -> RevocationOutcome {
        guard let serial = SerialNumberText.normalize(serial) else {
            throw LedgerError(code: .other, message: "\(serial) is not a serial number")
        }
        return state.withLock { state in
            guard let index = state.issuances.firstIndex(where: { $0.serial == serial }) else { return .unknownSerial }
            if state.issuances[index].revokedAt != nil { return .alreadyRevoked(state.issuances[index]) }
            state.issuances[index].revokedAt = Date(timeIntervalSince1970: at.timeIntervalSince1970.rounded(.down))
            state.issuances[index].revocationReason = reason
            state.events += 1
            state.revocationEvents.append(state.events)
            return .revoked(state.issuances[index])
        }
    }

    public func issuance(serial: String) async throws -> IssuanceRecord? {
        guard let serial = SerialNumberText.normalize(serial) else { return nil }
        return state.withLock { $0.issuances.first { $0.serial == serial } }
    }

    public func newestIssuance(requester: String, publicKeySHA256: String, issuedSince since: Date) async throws -> IssuanceRecord? {
        state.withLock { state in
            state.issuances.last {
                $0.requester == requester && $0.publicKeySHA256 == publicKeySHA256 && $0.issuedAt >= since
            }
        }
    }

    public func revokedCertificates(issuerFingerprint: String, notExpiredAt now: Date) async throws -> [RevokedCertificate] {
        state.withLock { state in
            state.issuances
                .filter { $0.issuerFingerprint == issuerFingerprint && $0.revokedAt != nil && $0.notAfter > now }
                .sorted { $0.revokedAt! < $1.revokedAt! }
                .map {
                    RevokedCertificate(
                        serial: $0.serial, spiffeID: $0.spiffeID, revokedAt: $0.revokedAt!, reason: $0.revocationReason,
                        notAfter: $0.notAfter)
                }
        }
    }

    public func revocations(after seq: Int64) async throws -> (head: Int64, revokedSince: Bool) {
        state.withLock { state in (state.events, state.revocationEvents.contains { $0 > seq }) }
    }
}

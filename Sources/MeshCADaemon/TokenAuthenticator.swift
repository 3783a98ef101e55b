import Foundation
import MeshCACore
import MeshCALedger

/// Authenticates `authorization: Bearer mct1.…` join tokens against the hashes in the ledger.
///
/// The check here (known id, matching secret, not expired, revoked or used up) decides whether to
/// sign at all; the use itself is consumed atomically with the issuance record, so concurrent requests
/// with a single-use token get exactly one certificate.
public struct TokenAuthenticator: Sendable {
    private let ledger: any IssuanceLedger
    private let trustDomain: TrustDomain

    /// Checks tokens stored in `ledger`, issuing identities in `trustDomain`.
    public init(ledger: any IssuanceLedger, trustDomain: TrustDomain) {
        self.ledger = ledger
        self.trustDomain = trustDomain
    }

    /// The caller a token stands for, as of `now`.
    ///
    /// A used-up token is refused unless `isRepeat` says this request repeats the one that used it last (see
    /// ``RepeatedRequests``): that caller is returned with the token use still attached, so the ledger refuses
    /// any new issuance with it and only the earlier certificate can be the answer.
    public func authenticate(
        _ credential: String, at now: Date, isRepeat: (AuthenticatedCaller) async -> Bool = { _ in false }
    ) async throws -> AuthenticatedCaller {
        func fail(_ message: String) -> AuthenticationFailure { AuthenticationFailure(method: "token", message) }
        let token: JoinToken
        do {
            token = try JoinToken(parsing: credential)
        } catch let error as IssuanceError {
            throw fail(error.message)
        }
        guard let record = try await ledger.token(id: token.id),
            ConstantTime.equal(record.secretSHA256, token.secretSHA256)
        else {
            throw fail("Join token \(token) is not known to this CA (wrong CA, or a mistyped token). Create one with `meshca token create` on the CA host.")
        }
        let identity = try SPIFFEID(trustDomain: trustDomain, namespace: record.namespace, serviceAccount: record.serviceAccount)
        let caller = AuthenticatedCaller(
            identity: identity,
            requester: Requester(name: "token:\(record.id)", authMethod: "token"),
            tokenUse: TokenUse(id: record.id, secretSHA256: record.secretSHA256, at: now)
        )
        switch record.state(at: now) {
        case .active:
            return caller
        case .expired:
            throw fail("Join token \(token) expired at \(record.expiresAt.formatted(.iso8601)). Create a new one with `meshca token create`.")
        case .usedUp:
            if await isRepeat(caller) { return caller }
            throw fail("Join token \(token) has been used \(record.uses) of \(record.maxUses) times. Create a new one with `meshca token create` (or `--uses N`).")
        case .revoked:
            throw fail("Join token \(token) was revoked. Create a new one with `meshca token create`.")
        }
    }
}

/// Comparison whose time does not depend on where two secrets' digests first differ.
enum ConstantTime {
    static func equal(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }
}

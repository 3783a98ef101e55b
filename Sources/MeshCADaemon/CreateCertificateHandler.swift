import Foundation
import GRPCCore
import Logging
import MeshCACore
import MeshCAIO
import MeshCALedger
import MeshCATransport
import X509

/// The daemon's answer to `CreateCertificate`: authenticate, rate-limit, refuse what meshca does not
/// support, then issue through ``IssuanceService`` and return Istio's chain. A network address that fails to
/// authenticate more often than `auth-failure-limit` allows is refused before authentication.
///
/// Every refusal is recorded in the ledger with the peer and the auth method, counted in the metrics,
/// and turned into the gRPC status Istio's agent expects (see ``rpcError(for:)``).
///
/// `ImpersonatedIdentity` (Istio's ambient mode: ztunnel asks for the pods on its node) is honoured only for a
/// caller whose service account is in `trusted-node-accounts`, and only for a well-formed workload SPIFFE ID of
/// this trust domain; the certificate is then issued for that identity and the ledger's requester names the
/// caller (`node:<caller's SPIFFE ID> (<credential>)`). Every other use is refused as istiod refuses it:
/// UNAUTHENTICATED, "request impersonation authentication failure", with the detail in the ledger and the log.
public struct CreateCertificateHandler: CertificateSigner {
    private let service: IssuanceService
    private let authenticator: CallerAuthenticator
    private let rateLimiter: RateLimiter?
    private let failedAuthentications: RateLimiter?
    private let trustedNodeAccounts: Set<String>
    private let dnsSANs: DNSSANPolicy
    private let metrics: CAMetrics
    private let logger: Logger
    private let now: @Sendable () -> Date

    /// Joins the pieces of the daemon. `failedAuthentications` limits, per network address (IP), how many
    /// failed authentications are answered and recorded; past it, requests from there are refused unread with
    /// RESOURCE_EXHAUSTED and without a ledger write (nil: no limit). `trustedNodeAccounts` (`namespace/name`) may
    /// send `ImpersonatedIdentity`; `dnsSANs` says who may ask for DNS SANs. Each request is issued and recorded as of
    /// `now()`.
    public init(
        service: IssuanceService, authenticator: CallerAuthenticator, rateLimiter: RateLimiter?,
        failedAuthentications: RateLimiter? = nil, trustedNodeAccounts: [String] = [], dnsSANs: DNSSANPolicy = DNSSANPolicy(),
        metrics: CAMetrics, logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.now = now
        self.trustedNodeAccounts = Set(trustedNodeAccounts)
        self.dnsSANs = dnsSANs
        self.service = service
        self.authenticator = authenticator
        self.rateLimiter = rateLimiter
        self.failedAuthentications = failedAuthentications
        self.metrics = metrics
        self.logger = logger
    }

    /// The peer's address without its port ("ipv4:10.0.0.7:51000" → "ipv4:10.0.0.7"): the key of the
    /// failed-authentication limit, so a client cannot escape it by opening new connections.
    static func peerHost(_ peer: String) -> String {
        guard let colon = peer.lastIndex(of: ":"), peer[peer.index(after: colon)...].allSatisfy(\.isNumber) else { return peer }
        return String(peer[..<colon])
    }

    public func createCertificate(_ call: CertificateCall) async throws -> [String] {
        let started = ContinuousClock.now
        let now = self.now()
        metrics.csrReceived()
        do {
            var caller = try await authenticate(call, at: now)
            if let impersonated = call.metadata["ImpersonatedIdentity"], !impersonated.isEmpty {
                caller = try await onBehalf(of: impersonated, by: caller, call: call, at: now)
            }
            if let rateLimiter, !rateLimiter.allow(caller.identity.uri, at: now) {
                try await refuse(
                    call, caller: caller, at: now,
                    CAError(.rateLimited, "Too many certificate requests for \(caller.identity.uri); slow down and retry later (--rate-limit).")
                )
            }
            if let signer = call.metadata["CertSigner"], !signer.isEmpty {
                try await refuse(
                    call, caller: caller, at: now,
                    CAError(.unknownSigner, "meshca has no signer named \"\(signer.escapedForLog)\"; unset ISTIO_META_CERT_SIGNER to use the CA's default signer.")
                )
            }
            let issuance = try await service.issue(
                IssuanceRequest(
                    csrPEM: call.csrPEM, identity: caller.identity, requestedTTL: call.requestedTTL,
                    allowedDNSNames: dnsSANs.patterns(for: caller.identity, in: service.authority.trustDomain)),
                requester: caller.requester,
                peer: call.remotePeer.escapedForLog,
                consuming: caller.tokenUse,
                at: now
            )
            metrics.issued(duration: ContinuousClock.now - started)
            logger.info(
                "issued",
                metadata: [
                    "spiffe_id": "\(caller.identity.uri.escapedForLog)", "serial": "\(issuance.certificate.serialHex)",
                    "auth": "\(caller.requester.authMethod)", "peer": "\(call.remotePeer.escapedForLog)",
                    "not_after": "\(issuance.certificate.notValidAfter.formatted(.iso8601))",
                ]
            )
            return service.authority.istioCertChain(for: issuance)
        } catch let error as RPCError {
            throw error
        } catch {
            let mapped = rpcError(for: error)
            record(error, mapped, call: call)
            throw mapped
        }
    }

    private func authenticate(_ call: CertificateCall, at now: Date) async throws -> AuthenticatedCaller {
        // A peer that keeps failing is turned away before its credential costs a JWT check, a ledger read and a
        // rejection row with an fsync: guessing tokens or flooding the ledger stays cheap for the CA.
        let peer = Self.peerHost(call.remotePeer)
        if let failedAuthentications, !failedAuthentications.hasCapacity(peer, at: now) {
            metrics.authenticationFailed()
            metrics.rejected(reason: CAError.Code.authRateLimited)
            throw rpcError(
                for: CAError(
                    .authRateLimited,
                    "Too many failed authentications from \(peer) (more than the auth-failure-limit of "
                        + "\(failedAuthentications.limit)); requests from it are refused for now. Fix the client's credential "
                        + "(see `meshca audit rejections`), then retry later."))
        }
        do {
            return try await authenticator.authenticate(call, at: now)
        } catch let failure as AuthenticationFailure {
            _ = failedAuthentications?.allow(peer, at: now)
            metrics.authenticationFailed()
            if failure.noIdentity { metrics.identityExtractionFailed() }
            metrics.rejected(reason: failure.code)
            try? await service.ledger.record(
                RejectionRecord(
                    occurredAt: now, requester: "unauthenticated", authMethod: failure.method, requestedIdentity: "",
                    reasonCode: failure.code.rawValue, message: failure.message, peer: call.remotePeer.escapedForLog
                )
            )
            logger.notice(
                "authentication failed",
                metadata: ["peer": "\(call.remotePeer.escapedForLog)", "method": "\(failure.method)", "reason": "\(failure.message.escapedForLog)"])
            throw rpcError(for: failure)
        }
    }

    /// istiod's answer to every impersonation it does not allow, opaque on purpose (the detail is in the ledger).
    static let impersonationRefused = "request impersonation authentication failure"

    /// The caller that asks on behalf of `impersonated` (ztunnel for a pod on its node), when its service account is
    /// a trusted node account and `impersonated` is exactly `spiffe://<this trust domain>/ns/<ns>/sa/<sa>`: the
    /// identity becomes the impersonated one, the requester names the caller. Otherwise the request is recorded as
    /// an `impersonation` rejection saying why, and refused with istiod's status and message.
    private func onBehalf(of impersonated: String, by caller: AuthenticatedCaller, call: CertificateCall, at now: Date) async throws
        -> AuthenticatedCaller
    {
        let trustDomain = service.authority.trustDomain
        let account = caller.identity.workload.map { "\($0.namespace)/\($0.serviceAccount)" }
        let why: String
        if trustedNodeAccounts.isEmpty {
            why = "this CA trusts no node accounts (start meshca serve with --trusted-node-accounts NAMESPACE/SA to allow ztunnel)"
        } else if caller.identity.trustDomain != trustDomain || account.map({ !trustedNodeAccounts.contains($0) }) ?? true {
            let listed = trustedNodeAccounts.sorted().joined(separator: ", ")
            why = "the caller \(caller.identity.uri.escapedForLog) is not one of the trusted node accounts (\(listed))"
        } else if let identity = try? SPIFFEID(parsing: impersonated), identity.uri == impersonated,
            identity.trustDomain == trustDomain, identity.workload != nil
        {
            let requester = Requester(name: "node:\(caller.identity.uri) (\(caller.requester.name))", authMethod: caller.requester.authMethod)
            return AuthenticatedCaller(identity: identity, requester: requester, tokenUse: caller.tokenUse)
        } else {
            why = "\(impersonated.escapedForLog) is not a workload SPIFFE ID of trust domain \(trustDomain.name) "
                + "(spiffe://\(trustDomain.name)/ns/NAMESPACE/sa/SERVICE-ACCOUNT)"
        }
        logger.notice(
            "refused an impersonation",
            metadata: [
                "peer": "\(call.remotePeer.escapedForLog)", "caller": "\(caller.identity.uri.escapedForLog)",
                "impersonated": "\(impersonated.escapedForLog)", "reason": "\(why)",
            ])
        metrics.rejected(reason: CAError.Code.impersonation)
        try? await service.ledger.record(
            RejectionRecord(
                occurredAt: now, requester: caller.requester.name, authMethod: caller.requester.authMethod,
                requestedIdentity: impersonated.escapedForLog, reasonCode: CAError.Code.impersonation.rawValue,
                message: "Refused to issue for \(impersonated.escapedForLog) on behalf of \(caller.identity.uri.escapedForLog): \(why).",
                peer: call.remotePeer.escapedForLog
            )
        )
        throw rpcError(for: CAError(.impersonation, Self.impersonationRefused))
    }

    /// Records a refusal decided here (not by the core) and throws it as its gRPC status.
    private func refuse(_ call: CertificateCall, caller: AuthenticatedCaller, at now: Date, _ refusal: CAError) async throws -> Never {
        metrics.rejected(reason: refusal.code)
        try? await service.ledger.record(
            RejectionRecord(
                occurredAt: now, requester: caller.requester.name, authMethod: caller.requester.authMethod,
                requestedIdentity: caller.identity.uri.escapedForLog, reasonCode: refusal.code.rawValue,
                message: refusal.message.escapedForLog, peer: call.remotePeer.escapedForLog
            )
        )
        throw rpcError(for: refusal)
    }

    /// Counts and logs an error from the issuance path (the core and service already recorded it).
    private func record(_ error: any Error, _ mapped: RPCError, call: CertificateCall) {
        switch error {
        case let refusal as IssuanceError:
            metrics.rejected(reason: refusal.code)
            if mapped.code == .internalError || mapped.code == .unavailable { metrics.signingFailed(error: refusal.code.rawValue) }
            logger.notice(
                "refused",
                metadata: ["peer": "\(call.remotePeer.escapedForLog)", "reason": "\(refusal.code)", "message": "\(refusal.message.escapedForLog)"])
        case let failure as AuthenticationFailure:
            metrics.authenticationFailed()
            metrics.rejected(reason: failure.code)
        default:
            metrics.signingFailed(error: (error as? DaemonError)?.code.rawValue ?? "internal")
            logger.error("issuance failed", metadata: ["peer": "\(call.remotePeer.escapedForLog)", "error": "\(String(describing: error).escapedForLog)"])
        }
    }
}

/// The one place meshca's errors become gRPC statuses, chosen so Istio's agent retries only what can
/// succeed on retry (it retries INTERNAL and UNAVAILABLE, never INVALID_ARGUMENT or UNAUTHENTICATED).
func rpcError(for error: any Error) -> RPCError {
    switch error {
    case let refusal as IssuanceError:
        switch refusal.code {
        case .identityMismatch, .foreignTrustDomain:
            return RPCError(code: .permissionDenied, message: refusal.message)
        case .signerNotValid, .invalidSigner, .signingFailed:
            return RPCError(code: .internalError, message: "CSR signing error: " + refusal.message)
        case .signerUnavailable:
            // The key's HSM is unreachable or failing: nothing was issued, and a retry may succeed once it is back.
            return RPCError(code: .unavailable, message: "The CA cannot sign right now (its key's hardware security module is unavailable), so nothing was issued; retry shortly.")
        case .invalidToken:
            return RPCError(code: .unauthenticated, message: refusal.message)
        default:
            return RPCError(code: .invalidArgument, message: refusal.message)
        }
    case let failure as AuthenticationFailure:
        return RPCError(code: failure.code.rpcCode ?? .unauthenticated, message: failure.message)
    case let refusal as CAError:
        guard let code = refusal.code.rpcCode else { return RPCError(code: .internalError, message: "internal error") }
        return RPCError(code: code, message: refusal.message)
    case let failure as DaemonError where failure.code == .notRecorded:
        return RPCError(code: .unavailable, message: "The CA could not record the certificate in its ledger, so none was issued; retry shortly.")
    case let failure as LedgerError where failure.isTransient:
        // The ledger could not be read or written right now (a busy or lost database): nothing was issued, and a
        // retry, perhaps through another replica, may succeed. The database is named; where it is (host, user) stays
        // in the daemon's log.
        let ledger = failure.database.map { "its ledger (\($0))" } ?? "its ledger"
        return RPCError(code: .unavailable, message: "The CA cannot use \(ledger) right now, so nothing was issued; retry shortly.")
    default:
        return RPCError(code: .internalError, message: "internal error")
    }
}

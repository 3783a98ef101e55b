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
public struct CreateCertificateHandler: CertificateSigner {
    private let service: IssuanceService
    private let authenticator: CallerAuthenticator
    private let rateLimiter: RateLimiter?
    private let failedAuthentications: RateLimiter?
    private let metrics: CAMetrics
    private let logger: Logger
    private let now: @Sendable () -> Date

    /// Joins the pieces of the daemon. `failedAuthentications` limits, per network address (IP), how many
    /// failed authentications are answered and recorded; past it, requests from there are refused unread with
    /// RESOURCE_EXHAUSTED and without a ledger write (nil: no limit). Each request is issued and recorded as of
    /// `now()`.
    public init(
        service: IssuanceService, authenticator: CallerAuthenticator, rateLimiter: RateLimiter?,
        failedAuthentications: RateLimiter? = nil, metrics: CAMetrics, logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.now = now
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
            let caller = try await authenticate(call, at: now)
            if let rateLimiter, !rateLimiter.allow(caller.identity.uri, at: now) {
                try await refuse(
                    call, caller: caller, at: now, reason: "rate-limited",
                    RPCError(code: .resourceExhausted, message: "Too many certificate requests for \(caller.identity.uri); slow down and retry later (--rate-limit).")
                )
            }
            if let signer = call.metadata["CertSigner"], !signer.isEmpty {
                try await refuse(
                    call, caller: caller, at: now, reason: "unknown-signer",
                    RPCError(code: .invalidArgument, message: "meshca has no signer named \"\(signer.escapedForLog)\"; unset ISTIO_META_CERT_SIGNER to use the CA's default signer.")
                )
            }
            if let impersonated = call.metadata["ImpersonatedIdentity"], !impersonated.isEmpty {
                try await refuse(
                    call, caller: caller, at: now, reason: "impersonation",
                    RPCError(code: .unauthenticated, message: "meshca does not issue on behalf of another identity (ImpersonatedIdentity \(impersonated.escapedForLog)); run meshca agent beside each workload instead.")
                )
            }
            let issuance = try await service.issue(
                IssuanceRequest(csrPEM: call.csrPEM, identity: caller.identity, requestedTTL: call.requestedTTL),
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
            metrics.rejected(reason: "auth-rate-limited")
            throw RPCError(
                code: .resourceExhausted,
                message: "Too many failed authentications from \(peer) (more than the auth-failure-limit of "
                    + "\(failedAuthentications.limit)); requests from it are refused for now. Fix the client's credential "
                    + "(see `meshca audit rejections`), then retry later.")
        }
        do {
            return try await authenticator.authenticate(call, at: now)
        } catch let failure as AuthenticationFailure {
            _ = failedAuthentications?.allow(peer, at: now)
            metrics.authenticationFailed()
            if failure.noIdentity { metrics.identityExtractionFailed() }
            metrics.rejected(reason: "unauthenticated")
            try? await service.ledger.record(
                RejectionRecord(
                    occurredAt: now, requester: "unauthenticated", authMethod: failure.method, requestedIdentity: "",
                    reasonCode: "unauthenticated", message: failure.message, peer: call.remotePeer.escapedForLog
                )
            )
            logger.notice(
                "authentication failed",
                metadata: ["peer": "\(call.remotePeer.escapedForLog)", "method": "\(failure.method)", "reason": "\(failure.message.escapedForLog)"])
            throw RPCError(code: .unauthenticated, message: failure.message)
        }
    }

    /// Records a refusal decided here (not by the core) and throws it.
    private func refuse(_ call: CertificateCall, caller: AuthenticatedCaller, at now: Date, reason: String, _ error: RPCError) async throws -> Never {
        metrics.rejected(reason: reason)
        try? await service.ledger.record(
            RejectionRecord(
                occurredAt: now, requester: caller.requester.name, authMethod: caller.requester.authMethod,
                requestedIdentity: caller.identity.uri.escapedForLog, reasonCode: reason, message: error.message.escapedForLog,
                peer: call.remotePeer.escapedForLog
            )
        )
        throw error
    }

    /// Counts and logs an error from the issuance path (the core and service already recorded it).
    private func record(_ error: any Error, _ mapped: RPCError, call: CertificateCall) {
        switch error {
        case let refusal as IssuanceError:
            metrics.rejected(reason: refusal.code.rawValue)
            if mapped.code == .internalError { metrics.signingFailed(error: refusal.code.rawValue) }
            logger.notice(
                "refused",
                metadata: ["peer": "\(call.remotePeer.escapedForLog)", "reason": "\(refusal.code)", "message": "\(refusal.message.escapedForLog)"])
        case is AuthenticationFailure:
            metrics.authenticationFailed()
            metrics.rejected(reason: "token-rejected")
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
        case .invalidToken:
            return RPCError(code: .unauthenticated, message: refusal.message)
        default:
            return RPCError(code: .invalidArgument, message: refusal.message)
        }
    case let failure as AuthenticationFailure:
        return RPCError(code: .unauthenticated, message: failure.message)
    case let failure as DaemonError where failure.code == .notRecorded:
        return RPCError(code: .unavailable, message: "The CA could not record the certificate in its ledger, so none was issued; retry shortly.")
    default:
        return RPCError(code: .internalError, message: "internal error")
    }
}

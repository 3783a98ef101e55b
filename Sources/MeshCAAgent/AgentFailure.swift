#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import GRPCCore
import MeshCACore
import MeshCAIO
import MeshCATransport
import X509

/// The explanation of any failure of a renewal round, for the status and the log.
enum AgentFailure {
    /// The reason code of a failed round, from the error: the gRPC status, a write error, the CA's answer.
    static func reason(_ error: any Error, held: Certificate?, at now: Date) -> AgentFailureReason {
        switch error {
        case let failure as AgentError: return failure.failureReason
        case is CAUnreachableError: return .caUnreachable
        case let rpc as RPCError:
            switch rpc.code {
            case .unavailable, .deadlineExceeded: return .caUnreachable
            case .unauthenticated where held.map { now >= $0.notValidAfter } ?? true: return .bootstrapRefused
            default: return .refused
            }
        case let failure as DaemonError where failure.code == .writeFailed: return .writeFailed
        case is IssuanceError: return .invalidAnswer
        case is CAClientError: return .configuration
        default: return .other
        }
    }

    /// A status message for `error`: what happened and, where the operator must act, what to do.
    static func explain(_ error: any Error, held: Certificate?, bootstrap: AgentConfiguration.Bootstrap, at now: Date) -> (message: String, expired: Bool) {
        let expired = held.map { now >= $0.notValidAfter } ?? false
        let bootstrapping = held == nil || expired
        var message: String
        switch error {
        case let unreachable as CAUnreachableError:
            let trust = "the roots the agent trusts (--root-cert, the current bundle, or the token's pinned root)"
            message =
                "The CA is unreachable. \(unreachable.summary(separator: "; ")). \(unreachable.advice(trust: trust)) "
                + "Files are kept; retrying with backoff."
        case let rpc as RPCError:
            switch rpc.code {
            case .unavailable, .deadlineExceeded:
                message = "The CA is unreachable (\(rpc.code): \(rpc.message)). Files are kept; retrying with backoff."
            case .unauthenticated where bootstrapping:
                let credential: String
                switch bootstrap {
                case .token, .tokenFile: credential = "Create a new join token on the CA host (meshca token create --sa NAME) and restart the agent with it"
                case .jwtFile: credential = "Check that the service-account token file is fresh and that the CA accepts its issuer and audience"
                }
                message = "The CA refused the bootstrap credential: \(rpc.message) \(credential)."
            default:
                message = "The CA refused the request (\(rpc.code)): \(rpc.message)"
            }
        default:
            message = "\(error)"
        }
        if expired, let held {
            message = "The certificate expired at \(held.notValidAfter.formatted(.iso8601)) while it could not be renewed. " + message
        }
        return (message, expired)
    }
}

/// Why a renewal round failed: a closed set, the `reason` label of `meshca_agent_renewal_failures_total`.
public enum AgentFailureReason: String, CaseIterable, Sendable, Codable {
    /// The CA did not answer at any of its addresses (connection refused, TLS failure, deadline): `UNAVAILABLE`,
    /// `DEADLINE_EXCEEDED`.
    case caUnreachable = "ca-unreachable"
    /// The CA refused the renewal (any other gRPC status, e.g. `PERMISSION_DENIED`, `UNAUTHENTICATED` over mTLS).
    case refused
    /// The CA refused the join token or JWT (at bootstrap, or after refusing the current certificate).
    case bootstrapRefused = "bootstrap-refused"
    /// The CA answered with something unusable: another key or identity, no pinned root, an unreadable chain.
    case invalidAnswer = "invalid-answer"
    /// The new files could not be written to --out.
    case writeFailed = "write-failed"
    /// A local setting could not be used: --root-cert, --token-file or --jwt-file unreadable, a bad --ca.
    case configuration
    /// Anything else.
    case other
}

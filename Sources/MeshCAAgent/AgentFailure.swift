#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import GRPCCore
import MeshCACore
import X509

/// An agent-side problem, and the explanation of any failure for the status and the log.
struct AgentFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }

    /// A status message for `error`: what happened and, where the operator must act, what to do.
    static func explain(_ error: any Error, held: Certificate?, bootstrap: AgentConfiguration.Bootstrap, at now: Date) -> (message: String, expired: Bool) {
        let expired = held.map { now >= $0.notValidAfter } ?? false
        let bootstrapping = held == nil || expired
        var message: String
        switch error {
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

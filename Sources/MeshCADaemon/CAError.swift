import GRPCCore
@_exported import MeshCAErrors

/// Why the daemon refused a request before or beside the CA's own rules, could not use its settings, or a use case
/// of `meshca` could not do what it was asked (a flag value, a remote CA, a ledger lookup).
///
/// The refusal codes are the reason codes of the ledger's rejection rows, of `meshca_rejections_total` and of
/// `meshca audit`; their raw values are stored in existing ledgers and never change. The CA's own rules refuse with
/// `IssuanceError`, and problems with files and the state directory are `DaemonError`.
public typealias CAError = CodedFailure<CAErrorCode>

/// The closed list of reasons for a ``CAError``; each `rawValue` is a stable kebab-case name.
public enum CAErrorCode: String, ErrorCode {
    /// The caller's credential (join token, JWT or client certificate) was not accepted.
    case unauthenticated = "unauthenticated"
    /// The caller asked for a certificate on behalf of another identity and may not.
    case impersonation = "impersonation"
    /// The join token could no longer be used when its use was recorded (a concurrent request took its last use).
    case tokenRejected = "token-rejected"
    /// A repeat of an answered request got the same certificate again (recorded, not refused).
    case repeatedRequest = "repeated-request"
    /// The identity asked for more certificates than `rate-limit` allows.
    case rateLimited = "rate-limited"
    /// The peer failed to authenticate more often than `auth-failure-limit` allows.
    case authRateLimited = "auth-rate-limited"
    /// The request names a signer (`CertSigner`) this CA does not have.
    case unknownSigner = "unknown-signer"
    /// An `allow-dns-sans` item is not usable (``DNSSANPolicy/PolicyProblem``).
    case invalidDNSSANRule = "invalid-dns-san-rule"
    /// A ConfigMap or namespace name that Kubernetes would refuse.
    case invalidKubernetesName = "invalid-kubernetes-name"
    /// The JWT signing keys could not be fetched from `jwks-url`.
    case jwtKeysUnavailable = "jwt-keys-unavailable"
    /// A backup's ledger does not verify (``StateBackup/VerificationFailure``).
    case backupUnverified = "backup-unverified"
    /// A flag or argument value a command cannot use (the command shows it as a usage error).
    case invalidArgument = "invalid-argument"
    /// `meshca version --server` could not read a running daemon's build from its monitoring endpoint.
    case versionUnavailable = "version-unavailable"
    /// A remote CA answered `meshca issue --server` with a refusal.
    case remoteRefusal = "remote-refusal"
    /// No address of a remote CA answered `meshca issue --server`.
    case caUnreachable = "ca-unreachable"
    /// A serial prefix matches more than one certificate in the ledger.
    case ambiguousSerial = "ambiguous-serial"
    /// No active join token has the id given.
    case unknownToken = "unknown-token"
}


extension CAErrorCode {
    /// The gRPC status a request refused for this reason ends with (Istio's agent retries only INTERNAL and
    /// UNAVAILABLE, so none of these is retried at once); nil for a code that is not a refusal.
    var rpcCode: RPCError.Code? {
        switch self {
        case .unauthenticated, .impersonation, .tokenRejected: .unauthenticated
        case .rateLimited, .authRateLimited: .resourceExhausted
        case .unknownSigner: .invalidArgument
        case .repeatedRequest, .invalidDNSSANRule, .invalidKubernetesName,
            .jwtKeysUnavailable, .backupUnverified, .invalidArgument, .versionUnavailable, .remoteRefusal, .caUnreachable,
            .ambiguousSerial, .unknownToken:
            nil
        }
    }
}
